"""The teacher: rubert-tiny fine-tuned for toxicity, and its outputs computed once and cached.

:func:`finetune_teacher` fine-tunes ``BOOK_TEACHER`` (loaded by
:func:`helpers.checkpoints.load_teacher_classifier`) with the shared training loop and saves it;
:func:`get_teacher` reuses the saved one. :func:`cached_teacher_logits` computes the teacher's
logits of a list of texts once, in length-bucketed batches, and keeps them on disk under a key of
the weights, tokenizer, max length and texts, so that every student reads them instead of running
the teacher again. :func:`crossfit_teacher_logits` gives each training text the logits of a
teacher that never saw it (k folds), the alternative to the in-sample logits that chapter 4
compares.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .batching import EncodedDataset, make_loader, text_logits
from .budgets import crossfit_folds, teacher_epochs
from .checkpoints import load_teacher_classifier, quiet_transformers
from .config import SEED, BookConfig, get_config
from .data import Splits
from .encoding import encode_texts, max_length_for
from .provenance import artifact_key, split_fingerprint
from .standin import is_standin
from .training import History, fit, pick_device, set_seed

logger = logging.getLogger(__name__)

INFO_FILE = "teacher_info.json"


# --------------------------------------------------------------------------- fine-tuning


def teacher_dir(config: BookConfig | None = None) -> Path:
    """Folder of the fine-tuned teacher (model, tokenizer and :data:`INFO_FILE`)."""
    return (config or get_config()).artifact("teacher")


def load_teacher_info(config: BookConfig | None = None) -> dict[str, Any] | None:
    """What :func:`finetune_teacher` saved next to the model, or ``None`` if nothing yet."""
    path = teacher_dir(config) / INFO_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def teacher_max_length(config: BookConfig | None = None) -> int:
    """The max length the saved teacher was fine-tuned with (use it for its inference too)."""
    info = load_teacher_info(config)
    if info is None:
        raise FileNotFoundError(
            f"No fine-tuned teacher in {teacher_dir(config)}; run get_teacher(config, splits) "
            "(or notebook 03) first."
        )
    return int(info["max_length"])


LR = 5e-5
BATCH_SIZE = 32


def teacher_key(config: BookConfig, splits: Splits, epochs: int, lr: float,
                batch_size: int) -> str:
    """What a fine-tuned teacher depends on: its source, the training and validation texts with
    their labels, and the hyper-parameters. A saved teacher is reused only under the same key."""
    return artifact_key(source=config.teacher, train=split_fingerprint(splits.train),
                        valid=split_fingerprint(splits.valid), epochs=epochs, lr=lr,
                        batch_size=batch_size, seed=SEED)


def _finetune(config: BookConfig, train: pd.DataFrame, valid: pd.DataFrame, *, epochs: int,
              lr: float, batch_size: int, max_length: int | None, patience: int,
              desc: str) -> tuple[Any, nn.Module, History, int]:
    """Fine-tune a fresh copy of ``config.teacher`` on ``train``, stopping on ``valid``."""
    # Seeded before the new classification head is built: its initial weights, and so the whole
    # fine-tuned teacher and every cached logit, repeat from run to run.
    set_seed(SEED)
    tokenizer, model = load_teacher_classifier(config.teacher)
    if max_length is None:
        max_length = max_length_for(tokenizer, train["text"])
    pad_id = tokenizer.pad_token_id
    train_data = EncodedDataset(encode_texts(tokenizer, train["text"], max_length), train["label"])
    valid_data = EncodedDataset(encode_texts(tokenizer, valid["text"], max_length))
    history = fit(
        model,
        make_loader(train_data, batch_size, shuffle=True, pad_id=pad_id),
        make_loader(valid_data, 2 * batch_size, shuffle=False, pad_id=pad_id),
        valid["label"].to_numpy(),
        epochs=epochs, lr=lr, warmup_ratio=0.1, max_grad_norm=1.0, patience=patience,
        desc=desc,
    )
    model.eval()
    return tokenizer, model, history, max_length


def finetune_teacher(
    config: BookConfig,
    splits: Splits,
    *,
    epochs: int | None = None,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    max_length: int | None = None,
    patience: int = 2,
) -> tuple[Any, nn.Module, History]:
    """Fine-tune ``config.teacher`` on the training split and save it to :func:`teacher_dir`.

    ``max_length`` defaults to :func:`helpers.encoding.max_length_for` the training texts;
    ``epochs`` to :func:`helpers.budgets.teacher_epochs`. Training is the shared
    :func:`helpers.training.fit` (AdamW, 10 % linear warm-up then linear decay, gradient clipping
    at 1, early stopping on validation F1 keeping the best epoch).
    """
    epochs = teacher_epochs(config) if epochs is None else epochs
    tokenizer, model, history, max_length = _finetune(
        config, splits.train, splits.valid, epochs=epochs, lr=lr, batch_size=batch_size,
        max_length=max_length, patience=patience, desc="teacher")
    out = teacher_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    info = {
        "source": config.teacher, "standin": is_standin(model), "max_length": max_length,
        "key": teacher_key(config, splits, epochs, lr, batch_size),
        "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "train_seconds": history.seconds, "best_epoch": history.best_epoch,
        "history": history.epochs,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return tokenizer, model, history


def get_teacher(config: BookConfig | None, splits: Splits) -> tuple[Any, nn.Module]:
    """The fine-tuned teacher: loaded from :func:`teacher_dir`, else fine-tuned now.

    A saved teacher is reused only if it was fine-tuned from the same ``BOOK_TEACHER`` on the same
    labelled training and validation texts with the same hyper-parameters (:func:`teacher_key`):
    after ``BOOK_DATA`` changes, a teacher that trained on what are now test texts is never
    reused.
    """
    config = config or get_config()
    info = load_teacher_info(config)
    key = teacher_key(config, splits, teacher_epochs(config), LR, BATCH_SIZE)
    if info is not None and info.get("key") == key:
        tokenizer, model = load_teacher_classifier(str(teacher_dir(config)))
        logger.info("Loaded the fine-tuned teacher from %s.", teacher_dir(config))
    else:
        tokenizer, model, _ = finetune_teacher(config, splits)
    model.eval()
    return tokenizer, model


# --------------------------------------------------------------------------- cached logits


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of every tensor of the model's state dict (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(f"{type(tokenizer).__name__}|{vocab}".encode()).hexdigest()


def logits_cache_key(
    model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int
) -> str:
    """Cache key of a teacher's logits: its weights, tokenizer, max length and the texts."""
    digest = hashlib.sha256()
    for part in (weights_fingerprint(model), _tokenizer_fingerprint(tokenizer), str(max_length),
                 str(len(texts))):
        digest.update(part.encode() + b"\0")
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def cached_teacher_logits(
    model: nn.Module, tokenizer: Any, texts: list[str], cache_dir: Path, max_length: int,
    batch_size: int = 64,
) -> np.ndarray:
    """The teacher's logits of ``texts``, shape ``(n, num_labels)``, float32, cached on disk.

    The cache file is named by :func:`logits_cache_key`, so another model (or the same one after
    more training), another tokenizer, another max length or other texts are computed afresh;
    the same inputs are read back from disk without running the model.
    """
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{logits_cache_key(model, tokenizer, texts, max_length)}.npy"
    if path.is_file():
        logger.debug("teacher logits of %d texts: read from the cache %s", len(texts), path.name)
        return np.load(path)
    if len(texts) == 0:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    device = pick_device()
    model.to(device).eval()
    start = time.perf_counter()
    logits = text_logits(model, tokenizer, texts, max_length, batch_size, device, progress=True)
    logger.debug("teacher logits of %d texts: computed in %.1f s", len(texts),
                 time.perf_counter() - start)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename, so an interrupted run never leaves a truncated cache file.
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npy.part", delete=False) as tmp:
        np.save(tmp, logits)
    os.replace(tmp.name, path)
    return logits


def teacher_logits_for_splits(
    config: BookConfig | None,
    splits: Splits,
    tokenizer: Any = None,
    model: nn.Module | None = None,
) -> dict[str, np.ndarray]:
    """Teacher logits of the train, valid and test texts, cached under ``teacher_cache``.

    Without ``tokenizer`` and ``model`` the fine-tuned teacher comes from :func:`get_teacher`.
    """
    config = config or get_config()
    if tokenizer is None or model is None:
        tokenizer, model = get_teacher(config, splits)
    info = load_teacher_info(config)
    max_length = (int(info["max_length"]) if info is not None
                  else max_length_for(tokenizer, splits.train["text"]))
    cache_dir = config.artifact("teacher_cache")
    start = time.perf_counter()
    result = {name: cached_teacher_logits(model, tokenizer, frame["text"].tolist(), cache_dir,
                                          max_length)
              for name, frame in splits.items()}
    logger.info("teacher logits: %s, %.1f s", ", ".join(
        f"{name} {logits.shape}" for name, logits in result.items()), time.perf_counter() - start)
    return result


# --------------------------------------------------------------------------- cross-fitted logits

CROSSFIT_DIR = "teacher_crossfit"


@dataclass
class CrossFit:
    """Out-of-fold teacher logits of the training texts: row ``i`` comes from the teacher
    fine-tuned on every fold but ``folds[i]``; ``fold_info`` holds each fold teacher's kept
    epoch, validation F1 and fine-tuning seconds."""

    logits: np.ndarray
    folds: np.ndarray
    fold_info: list[dict[str, Any]]

    @property
    def seconds(self) -> float:
        """Fine-tuning time of all the fold teachers together."""
        return float(sum(info["seconds"] for info in self.fold_info))


def crossfit_key(config: BookConfig, splits: Splits, k: int, max_length: int | None) -> str:
    """What cross-fitted logits depend on: the teacher's key, the number of folds and the max
    length."""
    return artifact_key(teacher=teacher_key(config, splits, teacher_epochs(config), LR,
                                            BATCH_SIZE), k=k, max_length=max_length)


def crossfit_teacher_logits(config: BookConfig | None, splits: Splits,
                            k: int | None = None) -> CrossFit:
    """Cross-fitted (out-of-fold) teacher logits of ``splits.train``, computed once and cached.

    The training texts are cut into ``k`` stratified folds (default
    :func:`helpers.budgets.crossfit_folds`); for each fold a teacher is fine-tuned exactly as
    :func:`finetune_teacher` does (same source, epochs, learning rate, early stopping on the
    validation split) on the other folds, and gives the logits of the fold it never saw. So a
    student matches what the teacher *predicts* of a text, not what it memorised of it. Costs
    ``k - 1`` full fine-tunings; the fold teachers are not kept, only their logits (under
    ``teacher_crossfit/k<k>.npz``, reused while the data, teacher and settings are the same).
    """
    from sklearn.model_selection import StratifiedKFold

    config = config or get_config()
    k = crossfit_folds(config) if k is None else k
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (folds of the training split), got {k!r}")
    info = load_teacher_info(config)
    max_length = int(info["max_length"]) if info is not None else None
    key = crossfit_key(config, splits, k, max_length)
    folder = config.artifact(CROSSFIT_DIR)
    path, meta_path = folder / f"k{k}.npz", folder / f"k{k}.json"
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") == key:
            saved = np.load(path)
            logger.info("cross-fitted teacher logits (%d folds): read from %s", k, path)
            return CrossFit(saved["logits"], saved["folds"], meta["folds"])
    labels = splits.train["label"].to_numpy()
    folds = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held_out] = fold
    logits = np.zeros((len(labels), 2), dtype=np.float32)
    fold_info = []
    for fold in range(k):
        held_out = folds == fold
        tokenizer, model, history, length = _finetune(
            config, splits.train[~held_out], splits.valid, epochs=teacher_epochs(config), lr=LR,
            batch_size=BATCH_SIZE, max_length=max_length, patience=2,
            desc=f"teacher, fold {fold + 1} of {k}")
        logits[held_out] = text_logits(model, tokenizer, splits.train["text"][held_out].tolist(),
                                       length, 2 * BATCH_SIZE, pick_device(), progress=True)
        fold_info.append({"fold": fold + 1, "train_texts": int((~held_out).sum()),
                          "held_out": int(held_out.sum()), "best_epoch": history.best_epoch,
                          "valid_f1": history.best_valid_f1, "seconds": history.seconds})
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz.part", delete=False) as tmp:
        np.savez(tmp, logits=logits, folds=folds)
    os.replace(tmp.name, path)
    meta_path.write_text(json.dumps({"key": key, "k": k, "folds": fold_info}, indent=1),
                         encoding="utf-8")
    return CrossFit(logits, folds, fold_info)
