"""The BiLSTM classifier: the baseline of chapter 2 and the student of the distillation chapter.

Both chapters train the same architecture on the same tokenizer and loaders through
:func:`train_bilstm`; only the loss differs (cross-entropy here, a distillation loss there).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader

from .config import SEED, BookConfig, get_config
from .data import Splits
from .evaluation import evaluate
from .tokenization import (
    choose_max_length,
    encode_texts,
    load_bpe_tokenizer,
    pad_id,
    save_bpe_tokenizer,
    token_lengths,
)
from .training import (
    EncodedDataset,
    History,
    LossFn,
    cross_entropy_loss,
    fit,
    length_batches,
    logits_to_proba,
    make_loader,
    predict_logits,
    set_seed,
)

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


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all of them, or only those that require gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


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
    pad = pad_id(tokenizer)
    loaders = {}
    for name, frame in splits.items():
        ids = encode_texts(tokenizer, frame["text"].tolist(), max_length)
        dataset = EncodedDataset(ids, frame["label"].to_numpy(), _split_extras(extras, name))
        loaders[name] = make_loader(dataset, batch_size, shuffle=name == "train", pad_id=pad,
                                    seed=seed)
    return loaders


def padding_summary(lengths: Sequence[int], max_length: int, batch_size: int = 64) -> pd.DataFrame:
    """Token positions the LSTM steps through per epoch, under three ways of padding.

    ``512`` pads every text to BERT's limit; ``max length`` pads every text to the chosen cut;
    ``dynamic + buckets`` pads each batch of similar-length texts only to its longest one.
    """
    cut = np.minimum(np.asarray(lengths), max_length)
    real = int(cut.sum())
    bucketed = sum(len(b) * int(cut[b].max()) for b in length_batches(cut, batch_size, True))
    rows = {
        "pad to 512": len(cut) * 512,
        f"pad to max length ({max_length})": len(cut) * max_length,
        "dynamic padding + length buckets": bucketed,
    }
    frame = pd.DataFrame({"positions": rows})
    frame["share real tokens"] = (real / frame["positions"]).round(3)
    return frame


def sigmoid_before_cross_entropy_demo() -> pd.DataFrame:
    """Loss and gradient of cross-entropy on raw logits vs on sigmoid(logits), one text of class 1.

    Shows the source article's mistake: after a sigmoid the inputs of the loss lie in (0, 1), so
    the loss cannot go below log(1 + e^-1) ~ 0.31 however right the model is, and for a confidently
    wrong model the sigmoid's flat tails shrink the gradient almost to nothing.
    """
    rows = []
    for case, values in [("confidently right", [-4.0, 4.0]), ("unsure", [0.0, 0.0]),
                         ("confidently wrong", [4.0, -4.0])]:
        row: dict[str, Any] = {"case": case, "logits": values}
        for label, transform in [("CE(logits)", lambda z: z),
                                 ("CE(sigmoid(logits))", torch.sigmoid)]:
            logits = torch.tensor([values], requires_grad=True)
            loss = F.cross_entropy(transform(logits), torch.tensor([1]))
            loss.backward()
            row[f"loss {label}"] = round(loss.item(), 4)
            row[f"|grad| {label}"] = round(logits.grad.norm().item(), 4)
        rows.append(row)
    return pd.DataFrame(rows).set_index("case")


def bilstm_predict_proba(
    model: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], max_length: int,
    batch_size: int = 256,
) -> np.ndarray:
    """Probability of the toxic class for each text, in the order given."""
    dataset = EncodedDataset(encode_texts(tokenizer, list(texts), max_length))
    loader = make_loader(dataset, batch_size, shuffle=False, pad_id=pad_id(tokenizer))
    return logits_to_proba(predict_logits(model, loader))


def bilstm_folder(config: BookConfig | None = None, name: str = "bilstm") -> Path:
    """Where :func:`train_bilstm` saves the model called ``name``."""
    return (config or get_config()).artifact(name, "model")


def default_epochs(config: BookConfig) -> int:
    """4 epochs on the full data, 2 in small-data mode.

    With AdamW at 2e-3 the validation F1 of this model peaks within the first few epochs on ~10k
    comments, and an epoch costs about a minute on a 2-core CPU; early stopping (patience 2) still
    guards against overfitting inside the budget.
    """
    return 2 if config.small else 4


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
    to :func:`choose_max_length` of the training split; ``epochs`` to :func:`default_epochs`.
    ``loss_fn`` and ``extras`` are passed on, so a distillation chapter only swaps the loss and
    adds ``{"teacher_logits": ...}`` (see :func:`make_bilstm_loaders`). The model is saved with
    :func:`save_bilstm` under :func:`bilstm_folder` ``(config, name)``.
    """
    train_texts = splits.train["text"].tolist()
    if max_length is None:
        max_length = choose_max_length(token_lengths(tokenizer, train_texts))
    epochs = epochs or default_epochs(config)
    loaders = make_bilstm_loaders(tokenizer, splits, max_length, batch_size, extras, seed)
    set_seed(seed)  # the same initial weights for every run with the same seed
    model = BiLSTMClassifier(tokenizer.get_vocab_size(), pad_id=pad_id(tokenizer), **model_kwargs)
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
