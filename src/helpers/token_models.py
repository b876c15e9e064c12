"""Small networks over BPE tokens: the article's BiLSTM (chapter 2) and a CNN (chapter 4).

Both read the ids of the byte-level BPE tokenizer (:mod:`helpers.bpe`) and return two raw
logits; both are built, trained, saved and loaded by the same functions, named by
:data:`NETWORKS`. :func:`train_token_model` trains either with any loss: cross-entropy for a
baseline or a no-teacher twin, a distillation loss (:mod:`helpers.losses`) for a student.

A run's settings travel as two frozen, validated objects, handed whole to
:func:`train_token_model`: a :class:`NetworkSpec` (which network, what size) and a
:class:`TrainSettings` (the schedule: epoch cap, stopping rule, batches, learning rate, maximum
length, seed). The chapters' budgets (:mod:`helpers.budgets`) build them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader

from .batching import EncodedDataset, logits_to_proba, make_loader, predict_logits, text_logits
from .config import SEED, BookConfig, get_config
from .data import Splits
from .encoding import encode_texts, load_tokenizer, pad_token_id, save_tokenizer
from .evaluation import evaluate
from .losses import LossFn, cross_entropy_loss
from .provenance import artifact_key, modules_fingerprint, split_fingerprint
from .settings import NetworkSpec, TrainSettings
from .training import History, fit, set_seed

logger = logging.getLogger(__name__)

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
        # Kept so that save_token_model can rebuild the same module.
        self.hparams = {
            "vocab_size": vocab_size, "pad_id": pad_id, "embedding_dim": embedding_dim,
            "hidden_size": hidden_size, "num_classes": num_classes, "dropout": dropout,
        }
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        # Packing makes the LSTM stop at each text's real end: the backward direction
        # starts at the last real token rather than at padding, so logits do not depend on
        # how much padding the batch needed. An empty text still gets one (padding) step.
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        embedded = self.embedding(input_ids)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        # hidden: (2, batch, hidden_size), forward direction's last state then backward's.
        features = torch.cat([hidden[-2], hidden[-1]], dim=1)
        return self.classifier(self.dropout(features))


class CNNClassifier(nn.Module):
    """Kim (2014): embedding -> 1-D convolutions of several widths -> ReLU -> max over time ->
    linear.

    Each width slides a window over the tokens and every filter answers "is my pattern somewhere
    in the text?" through the max over positions. There is no recurrence, so an epoch costs a
    fraction of the BiLSTM's on a CPU. Padding never reaches the result: the embeddings of padding
    positions are zeroed and only windows that start on a real token enter the max, so a text's
    logits do not depend on the batch it is in. Returns raw logits, like every model here.
    """

    def __init__(self, vocab_size: int, pad_id: int = 0, embedding_dim: int = 128,
                 num_filters: int = 128, widths: tuple[int, ...] = (3, 4, 5),
                 num_classes: int = 2, dropout: float = 0.3) -> None:
        super().__init__()
        # Kept so that save_token_model can rebuild the same module.
        self.hparams = dict(vocab_size=vocab_size, pad_id=pad_id, embedding_dim=embedding_dim,
                            num_filters=num_filters, widths=list(widths),
                            num_classes=num_classes, dropout=dropout)
        self.widths = tuple(widths)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, num_filters, w) for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_filters * len(widths), num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embedding(input_ids) * attention_mask.unsqueeze(-1)  # padding -> zero vectors
        # Zeros after the text, so that a text shorter than a window still fills one window.
        x = F.pad(x.transpose(1, 2), (0, max(self.widths) - 1))      # (batch, emb, length + w - 1)
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        features = []
        for conv in self.convs:
            h = F.relu(conv(x))                                        # (batch, filters, windows)
            starts = torch.arange(h.size(2), device=h.device)
            real = starts.unsqueeze(0) < lengths.unsqueeze(1)          # windows starting on a token
            # After ReLU every value is >= 0, so zeros at the other windows never win the max.
            features.append(h.masked_fill(~real.unsqueeze(1), 0.0).amax(dim=2))
        return self.classifier(self.dropout(torch.cat(features, dim=1)))


NETWORKS = {"bilstm": BiLSTMClassifier, "cnn": CNNClassifier}


ARTICLE_BILSTM = NetworkSpec("bilstm")
"""The source article's BiLSTM (300-dimensional embeddings, 256 units each way): chapter 2's."""


def save_token_model(
    model: nn.Module, tokenizer: Tokenizer, folder: str | Path, meta: dict[str, Any]
) -> Path:
    """Save ``model.pt`` (weights), ``config.json`` (network, architecture, ``meta``) and
    ``tokenizer.json``."""
    network = next((name for name, cls in NETWORKS.items() if isinstance(model, cls)), None)
    if network is None:
        raise TypeError(f"{type(model).__name__} is not one of {list(NETWORKS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, folder / "model.pt")
    config = {"network": network, "architecture": model.hparams, "meta": meta}
    (folder / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1),
                                        encoding="utf-8")
    save_tokenizer(tokenizer, folder / "tokenizer.json")
    return folder


def load_token_model(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Tokenizer, dict[str, Any]]:
    """Load what :func:`save_token_model` saved; the model comes back in eval mode."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    model = NETWORKS[config.get("network", "bilstm")](**config["architecture"])
    state = torch.load(folder / "model.pt", map_location=device, weights_only=True)
    model.load_state_dict(state)
    model.to(device).eval()
    return model, load_tokenizer(folder / "tokenizer.json"), config["meta"]


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


def make_token_loaders(
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


def token_model_folder(config: BookConfig | None = None, name: str = "bilstm") -> Path:
    """Where :func:`train_token_model` saves the model called ``name``."""
    return (config or get_config()).artifact(name, "model")


@dataclass
class TokenModelRun:
    """A trained token model: the model (best validation epoch's weights), its history, its test
    scores and probabilities, the wall time and where it was saved."""

    model: nn.Module
    history: History
    test: dict[str, float]
    test_proba: np.ndarray
    seconds: float
    folder: Path


def train_token_model(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    schedule: TrainSettings,
    network: NetworkSpec = ARTICLE_BILSTM,
    loss_fn: LossFn = cross_entropy_loss,
    extras: Mapping[str, Any] | None = None,
    name: str = "bilstm",
    device: str | torch.device | None = None,
    embedding_init: np.ndarray | None = None,
    frozen_embedding_epochs: int = 0,
    reuse: bool = False,
) -> TokenModelRun:
    """Train a fresh ``network`` with the shared :func:`helpers.training.fit` on ``schedule``,
    test it, save it.

    ``schedule`` (:class:`TrainSettings`) and ``network`` (:class:`NetworkSpec`) come whole from
    a chapter's budget (:mod:`helpers.budgets`). ``loss_fn`` and ``extras`` are passed on, so a
    distillation chapter only swaps the loss and adds ``{"teacher_logits": ...}`` (see
    :func:`make_token_loaders`). The model is saved with :func:`save_token_model` under
    :func:`token_model_folder` ``(config, name)``.

    ``embedding_init`` (a ``vocab_size x embedding_dim`` matrix, e.g. pretrained word vectors,
    :mod:`helpers.word_vectors`) replaces the random initial embeddings; they stay fixed for the
    first ``frozen_embedding_epochs`` epochs. With ``reuse``, a model saved under ``name`` by a
    run with the very same inputs and settings (its key: the splits, the tokenizer, the initial
    embeddings, the network, the schedule) is loaded instead of trained again; only a
    plain cross-entropy run without ``extras`` (a baseline or a no-teacher twin) can be reused,
    since a distillation loss is not part of the key.
    """
    if not isinstance(schedule, TrainSettings) or not isinstance(network, NetworkSpec):
        raise TypeError("schedule must be a TrainSettings and network a NetworkSpec "
                        "(helpers.budgets builds both)")
    if reuse and (loss_fn is not cross_entropy_loss or extras):
        raise ValueError("reuse=True is only for plain cross-entropy runs without extras: a "
                         "distillation loss is not part of the saved model's key")
    s = schedule
    folder = token_model_folder(config, name)
    key = artifact_key(
        splits={part: split_fingerprint(frame) for part, frame in splits.items()},
        tokenizer=hashlib.sha256(tokenizer.to_str().encode()).hexdigest(),
        embedding=None if embedding_init is None else hashlib.sha256(
            np.ascontiguousarray(embedding_init, dtype=np.float32).tobytes()).hexdigest(),
        network=network.name, model=dict(network.size), max_length=s.max_length,
        batch_size=s.batch_size, lr=s.lr, epochs=s.epochs, patience=s.patience, seed=s.seed,
        frozen=frozen_embedding_epochs, min_improvement=s.min_improvement, code=_training_code(),
    )
    if reuse:
        reused = _reuse_token_model(folder, key, splits, device)
        if reused is not None:
            return reused
    loaders = make_token_loaders(tokenizer, splits, s.max_length, s.batch_size, extras, s.seed)
    set_seed(s.seed)  # the same initial weights for every run with the same seed
    model = network.build(tokenizer.get_vocab_size(), pad_id=pad_token_id(tokenizer))
    if embedding_init is not None:
        _set_embeddings(model, embedding_init)
    history = fit(
        model, loaders["train"], loaders["valid"], splits.valid["label"].to_numpy(),
        epochs=s.epochs, lr=s.lr, loss_fn=loss_fn, patience=s.patience, device=device,
        seed=s.seed, desc=name, frozen=[model.embedding.weight] if frozen_embedding_epochs else (),
        frozen_epochs=frozen_embedding_epochs, min_improvement=s.min_improvement,
    )
    proba = logits_to_proba(predict_logits(model, loaders["test"]))
    metrics = evaluate(splits.test["label"].to_numpy(), proba)
    meta = {
        "name": name, "max_length": s.max_length, "batch_size": s.batch_size, "lr": s.lr,
        "epochs": s.epochs, "epochs_run": len(history.epochs), "best_epoch": history.best_epoch,
        "train_seconds": history.seconds, "test_metrics": metrics, "small": config.small,
        "seed": s.seed, "frozen_embedding_epochs": frozen_embedding_epochs,
        "history": history.epochs, "key": key,
    }
    save_token_model(model, tokenizer, folder, meta)
    return TokenModelRun(model, history, metrics, proba, history.seconds, folder)


def _training_code() -> str:
    """Fingerprint of the code a token model's training runs: this module, the loop, the
    batches, the losses and the encoding."""
    from . import batching, encoding, losses, training

    return modules_fingerprint(sys.modules[__name__], training, batching, losses, encoding)


def _set_embeddings(model: nn.Module, matrix: np.ndarray) -> None:
    """Copy ``matrix`` into the model's embedding table, checking its shape."""
    table = model.embedding.weight
    if tuple(matrix.shape) != tuple(table.shape):
        raise ValueError(f"embedding_init has shape {tuple(matrix.shape)}, the model's embedding "
                         f"{tuple(table.shape)} (vocabulary size x embedding_dim)")
    with torch.no_grad():
        table.copy_(torch.as_tensor(np.asarray(matrix, dtype=np.float32)))


def _reuse_token_model(folder: Path, key: str, splits: Splits,
                       device: str | torch.device | None) -> TokenModelRun | None:
    """The run saved in ``folder`` if its key is ``key`` (re-scored on the test split), else
    ``None``."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    meta = json.loads(config_file.read_text(encoding="utf-8")).get("meta", {})
    if meta.get("key") != key or "history" not in meta:
        logger.info("%s: the saved run was made from other data, settings or code; training it "
                    "again (its folder is replaced)", folder.parent.name)
        return None
    model, tokenizer, meta = load_token_model(folder, device or "cpu")
    history = History(epochs=meta["history"], best_epoch=meta["best_epoch"],
                      seconds=meta["train_seconds"], epochs_cap=meta["epochs"])
    proba = logits_to_proba(text_logits(model, tokenizer, splits.test["text"], meta["max_length"],
                                        meta["batch_size"]))
    metrics = evaluate(splits.test["label"].to_numpy(), proba)
    logger.info("%s: reused the saved run (same data, tokenizer, settings and seed), kept epoch "
                "%d (valid F1 %.4f)", meta["name"], history.best_epoch, history.best_valid_f1)
    return TokenModelRun(model, history, metrics, proba, history.seconds, folder)
