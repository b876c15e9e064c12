"""The BiLSTM classifier: the baseline of chapter 2 and the student of chapter 4.

Both chapters train the same architecture on the same tokenizer and loaders through
:func:`train_bilstm`; only the loss differs (cross-entropy here, a distillation loss there).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader

from .batching import EncodedDataset, logits_to_proba, make_loader, predict_logits
from .bpe import load_bpe_tokenizer, save_bpe_tokenizer
from .budgets import bilstm_epochs
from .config import SEED, BookConfig, get_config
from .data import Splits
from .encoding import choose_max_length, encode_texts, pad_token_id, token_lengths
from .evaluation import evaluate
from .losses import LossFn, cross_entropy_loss
from .training import History, fit, set_seed

SPLIT_NAMES = ("train", "valid", "test")


class BiLSTMClassifier(nn.Module):
    """Embedding -> bidirectional LSTM over packed sequences -> last hidden states -> linear.

    ``forward`` returns raw logits of shape ``(batch, num_classes)``: no sigmoid or softmax, since
    the loss (cross-entropy or a distillation loss) applies log-softmax itself.
    """

    def __init__(
        self,
        vocab_size: int,
        pad_id: int = 0,
        embedding_dim: int = 300,
        hidden_size: int = 256,
        num_classes: int = 2,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        # Kept so that save_bilstm can rebuild the same module.
        self.hparams = {
            "vocab_size": vocab_size, "pad_id": pad_id, "embedding_dim": embedding_dim,
            "hidden_size": hidden_size, "num_classes": num_classes, "dropout": dropout,
        }
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Packing makes the LSTM stop at each text's real end: the backward direction starts at the
        # last real token rather than at padding, so logits do not depend on how much padding the
        # batch needed. An empty text still gets one (padding) step.
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        embedded = self.embedding(input_ids)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        # hidden: (2, batch, hidden_size), forward direction's last state then backward's.
        features = torch.cat([hidden[-2], hidden[-1]], dim=1)
        return self.classifier(self.dropout(features))


def save_bilstm(
    model: BiLSTMClassifier, tokenizer: Tokenizer, folder: str | Path, meta: dict[str, Any]
) -> Path:
    """Save ``model.pt`` (weights), ``config.json`` (architecture, ``meta``), ``tokenizer.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, folder / "model.pt")
    config = {"architecture": model.hparams, "meta": meta}
    (folder / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1),
                                        encoding="utf-8")
    save_bpe_tokenizer(tokenizer, folder / "tokenizer.json")
    return folder


def load_bilstm(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[BiLSTMClassifier, Tokenizer, dict[str, Any]]:
    """Load what :func:`save_bilstm` saved; the model comes back in eval mode."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model = BiLSTMClassifier(**config["architecture"])
    state = torch.load(folder / "model.pt", map_location=device, weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return model, load_bpe_tokenizer(folder / "tokenizer.json"), config["meta"]


def _split_extras(
    extras: Mapping[str, Any] | None, split: str
) -> dict[str, np.ndarray] | None:
    """The extras of one split: a mapping value is per split, a bare array is for training only."""
    if not extras:
        return None
    chosen = {}
    for name, value in extras.items():
        if isinstance(value, Mapping):
            unknown = set(value) - set(SPLIT_NAMES)
            if unknown:
                raise ValueError(f"extras[{name!r}] has unknown split(s) {sorted(unknown)}")
            if split in value:
                chosen[name] = np.asarray(value[split])
        elif split == "train":
            chosen[name] = np.asarray(value)
    return chosen or None


def make_bilstm_loaders(
    tokenizer: Tokenizer,
    splits: Splits,
    max_length: int,
    batch_size: int = 64,
    extras: Mapping[str, Any] | None = None,
    seed: int = SEED,
) -> dict[str, DataLoader]:
    """Loaders for ``train`` (shuffled), ``valid`` and ``test`` (sorted by length).

    ``extras`` adds per-text arrays to the batches, in each split's row order, e.g.
    ``{"teacher_logits": {"train": train_logits}}`` (name -> split -> array). A bare array,
    ``{"teacher_logits": train_logits}``, is taken as the training split's. A loss function then
    finds ``batch["teacher_logits"]`` next to ``batch["labels"]``.
    """
    pad = pad_token_id(tokenizer)
    loaders = {}
    for name, frame in splits.items():
        ids = encode_texts(tokenizer, frame["text"].tolist(), max_length)
        dataset = EncodedDataset(ids, frame["label"].to_numpy(), _split_extras(extras, name))
        loaders[name] = make_loader(dataset, batch_size, shuffle=name == "train", pad_id=pad,
                                    seed=seed)
    return loaders


def bilstm_folder(config: BookConfig | None = None, name: str = "bilstm") -> Path:
    """Where :func:`train_bilstm` saves the model called ``name``."""
    return (config or get_config()).artifact(name, "model")


def train_bilstm(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    loss_fn: LossFn = cross_entropy_loss,
    extras: Mapping[str, Any] | None = None,
    name: str = "bilstm",
    epochs: int | None = None,
    max_length: int | None = None,
    batch_size: int = 64,
    lr: float = 2e-3,
    patience: int = 2,
    seed: int = SEED,
    device: str | torch.device | None = None,
    **model_kwargs: Any,
) -> tuple[BiLSTMClassifier, History, dict[str, float], float]:
    """Train a fresh BiLSTM with the shared :func:`helpers.training.fit`, test it, save it.

    Returns the model (best validation epoch's weights), its history, the test metrics of
    :func:`helpers.evaluation.evaluate` and the training time in seconds. ``max_length`` defaults
    to :func:`helpers.encoding.choose_max_length` of the training split; ``epochs`` to
    :func:`helpers.budgets.bilstm_epochs`.
    ``loss_fn`` and ``extras`` are passed on, so a distillation chapter only swaps the loss and
    adds ``{"teacher_logits": ...}`` (see :func:`make_bilstm_loaders`). The model is saved with
    :func:`save_bilstm` under :func:`bilstm_folder` ``(config, name)``.
    """
    train_texts = splits.train["text"].tolist()
    if max_length is None:
        max_length = choose_max_length(token_lengths(tokenizer, train_texts))
    epochs = epochs or bilstm_epochs(config)
    loaders = make_bilstm_loaders(tokenizer, splits, max_length, batch_size, extras, seed)
    set_seed(seed)  # the same initial weights for every run with the same seed
    model = BiLSTMClassifier(tokenizer.get_vocab_size(), pad_id=pad_token_id(tokenizer),
                             **model_kwargs)
    history = fit(
        model, loaders["train"], loaders["valid"], splits.valid["label"].to_numpy(),
        epochs=epochs, lr=lr, loss_fn=loss_fn, patience=patience, device=device, seed=seed,
        desc=name,
    )
    proba = logits_to_proba(predict_logits(model, loaders["test"]))
    metrics = evaluate(splits.test["label"].to_numpy(), proba)
    meta = {
        "name": name, "max_length": max_length, "batch_size": batch_size, "lr": lr,
        "epochs": epochs, "epochs_run": len(history.epochs), "best_epoch": history.best_epoch,
        "train_seconds": history.seconds, "test_metrics": metrics, "small": config.small,
    }
    save_bilstm(model, tokenizer, bilstm_folder(config, name), meta)
    return model, history, metrics, history.seconds
