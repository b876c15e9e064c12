"""The teacher: rubert-tiny, fine-tuned for toxicity, and its cached outputs.

Readers load ``cointegrated/rubert-tiny`` from the Hugging Face hub (the default ``BOOK_TEACHER``).
Offline, a randomly initialised model of exactly rubert-tiny's shape, saved with the real
tokenizer, stands in for it so that every code path runs (:func:`make_standin_teacher`). A stand-in
is marked in its config (``book_standin=True``), the mark survives saving, loading and fine-tuning,
and notebooks print :func:`standin_warning` next to every figure that depends on it.

Command line (used by CI)::

    python -m helpers.teacher make-standin --tokenizer DIR --out DIR
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import SEED, BookConfig, get_config
from .data import Splits
from .tokenization import choose_max_length as choose_length_from
from .training import EncodedDataset, History, fit, make_loader, pick_device, predict_logits

STANDIN_ATTR = "book_standin"
INFO_FILE = "teacher_info.json"
WEIGHTS_FILE = "model.safetensors"
LENGTH_PERCENTILE = 95
MAX_LENGTH_CAP = 512  # rubert-tiny's position embeddings stop at 512
LABELS = {0: "normal", 1: "toxic"}
# Three epochs over the ~10k training texts: about 1.5 minutes each on a free 2-core CPU.
EPOCHS = 3


class TeacherUnavailableError(RuntimeError):
    """The teacher could not be loaded; the message says why and what to do."""


def _unavailable(name_or_path: str, error: Exception) -> TeacherUnavailableError:
    """A :class:`TeacherUnavailableError` that tells the reader how to get a teacher."""
    looks_local = Path(name_or_path).expanduser().exists() or name_or_path.startswith(("/", "."))
    where = (f"the folder {name_or_path!r} holds no usable model (config, weights, tokenizer)"
             if looks_local else
             f"the Hugging Face hub could not be reached for {name_or_path!r} (or it has no such "
             "model) and it is not in the local cache")
    return TeacherUnavailableError(
        f"Cannot load the teacher {name_or_path!r}: {where} ({type(error).__name__}: {error}).\n"
        "What to do:\n"
        "  * set BOOK_TEACHER to a local folder with the model, e.g. one downloaded on a machine "
        "with internet access by `huggingface-cli download cointegrated/rubert-tiny "
        "--local-dir DIR`; or\n"
        "  * to run the code without the real model, make an offline stand-in with "
        "`python -m helpers.teacher make-standin --tokenizer DIR --out DIR` and set "
        "BOOK_TEACHER=DIR. A stand-in has random weights: every number it gives is meaningless."
    )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar for one call, then restore them.

    Loading a pre-training checkpoint as a classifier reports the new classification head and
    the unused pre-training heads; the notebooks say so in prose instead.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------- the stand-in


def is_standin(model_or_config: Any) -> bool:
    """Whether a model (or its config) is the offline stand-in rather than the real teacher."""
    config = getattr(model_or_config, "config", model_or_config)
    return bool(getattr(config, STANDIN_ATTR, False))


def standin_warning(model: Any) -> str:
    """A loud notice to print next to figures when the teacher is a stand-in; else ``""``."""
    if not is_standin(model):
        return ""
    return (
        "WARNING: STAND-IN TEACHER. This teacher is NOT rubert-tiny: it is a randomly "
        "initialised model of rubert-tiny's shape, used because the Hugging Face hub could not "
        "be reached. It runs every step of the code, but its scores, and the scores of every "
        "student distilled from it, are meaningless. Set BOOK_TEACHER to the real "
        "cointegrated/rubert-tiny (hub id or local folder) for real numbers."
    )


def make_standin_teacher(tokenizer_dir: str | Path, out_dir: str | Path, seed: int = SEED) -> Path:
    """Save a randomly initialised ``BertForPreTraining`` of the tokenizer's config to ``out_dir``.

    ``tokenizer_dir`` holds the real tokenizer and the model config (no weights). The model is
    marked ``book_standin=True`` in its config. Nothing is done when ``out_dir`` already holds a
    stand-in; a real model there is never overwritten.
    """
    from transformers import AutoConfig, AutoTokenizer, BertForPreTraining

    out = Path(out_dir)
    if (out / "config.json").is_file():
        existing = AutoConfig.from_pretrained(out)
        if not is_standin(existing):
            raise FileExistsError(f"{out} holds a model that is not a stand-in; not replacing it.")
        if (out / WEIGHTS_FILE).is_file() and (out / "tokenizer_config.json").is_file():
            return out
    config = AutoConfig.from_pretrained(tokenizer_dir)
    setattr(config, STANDIN_ATTR, True)
    # fork_rng: seed the initialisation without changing the caller's random state.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertForPreTraining(config)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- loading


def load_teacher_classifier(name_or_path: str, num_labels: int = 2) -> tuple[Any, nn.Module]:
    """Tokenizer and sequence classifier from a hub id or folder.

    From a pre-training checkpoint (rubert-tiny, the stand-in) the classification head is new and
    randomly initialised: it is learned by :func:`finetune_teacher`.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            names = ({"id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}}
                     if num_labels == len(LABELS) else {})
            model = AutoModelForSequenceClassification.from_pretrained(
                name_or_path, num_labels=num_labels, **names
            )
    except (OSError, ValueError) as error:
        raise _unavailable(name_or_path, error) from error
    return tokenizer, model


def load_teacher_mlm(name_or_path: str) -> tuple[Any, nn.Module]:
    """Tokenizer and masked-language model (token distributions) from a hub id or folder."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForMaskedLM.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise _unavailable(name_or_path, error) from error
    return tokenizer, model


# --------------------------------------------------------------------------- tokens and lengths


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int | None) -> list[list[int]]:
    """Token ids of each text with [CLS]/[SEP], cut to ``max_length`` (no padding)."""
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=max_length is not None,
                        max_length=max_length)
    return encoded["input_ids"]


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Number of tokens of each text, special tokens included, without truncation."""
    return np.array([len(ids) for ids in encode_texts(tokenizer, texts, None)])


def choose_max_length(
    tokenizer: Any, texts: Sequence[str], percentile: float = LENGTH_PERCENTILE,
    cap: int = MAX_LENGTH_CAP,
) -> int:
    """The ``percentile``-th token length of ``texts``, capped at ``cap``.

    Longer texts are cut there. The few very long comments would otherwise set the cost of their
    whole batch, while the start of a comment usually carries its tone.
    """
    return choose_length_from(token_lengths(tokenizer, texts), percentile / 100, cap)


def _dataset(tokenizer: Any, texts: Sequence[str], max_length: int,
             labels: Sequence[int] | None = None) -> EncodedDataset:
    return EncodedDataset(encode_texts(tokenizer, texts, max_length), labels)


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


def default_epochs(config: BookConfig) -> int:
    """Fine-tuning epochs: three on the full data, one in small-data mode."""
    return 1 if config.small else EPOCHS


def finetune_teacher(
    config: BookConfig,
    splits: Splits,
    *,
    epochs: int | None = None,
    lr: float = 5e-5,
    batch_size: int = 32,
    max_length: int | None = None,
    patience: int = 2,
) -> tuple[Any, nn.Module, History]:
    """Fine-tune ``config.teacher`` on the training split and save it to :func:`teacher_dir`.

    ``max_length`` defaults to :func:`choose_max_length` of the training texts; ``epochs`` to
    :func:`default_epochs`. Training is the shared :func:`helpers.training.fit` (AdamW, 10 % linear
    warm-up then linear decay, gradient clipping at 1, early stopping on validation F1 keeping the
    best epoch).
    """
    epochs = default_epochs(config) if epochs is None else epochs
    tokenizer, model = load_teacher_classifier(config.teacher)
    if max_length is None:
        max_length = choose_max_length(tokenizer, splits.train["text"].tolist())
    pad_id = tokenizer.pad_token_id
    train = _dataset(tokenizer, splits.train["text"].tolist(), max_length, splits.train["label"])
    valid = _dataset(tokenizer, splits.valid["text"].tolist(), max_length)
    history = fit(
        model,
        make_loader(train, batch_size, shuffle=True, pad_id=pad_id),
        make_loader(valid, 2 * batch_size, shuffle=False, pad_id=pad_id),
        splits.valid["label"].to_numpy(),
        epochs=epochs, lr=lr, warmup_ratio=0.1, max_grad_norm=1.0, patience=patience,
        desc="teacher",
    )
    out = teacher_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    info = {
        "source": config.teacher, "standin": is_standin(model), "max_length": max_length,
        "epochs": epochs, "lr": lr, "batch_size": batch_size,
        "train_seconds": history.seconds, "best_epoch": history.best_epoch,
        "history": history.epochs,
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    model.eval()
    return tokenizer, model, history


def get_teacher(config: BookConfig | None, splits: Splits) -> tuple[Any, nn.Module]:
    """The fine-tuned teacher: loaded from :func:`teacher_dir`, else fine-tuned now.

    A saved teacher fine-tuned from another ``BOOK_TEACHER`` source is not reused.
    """
    config = config or get_config()
    info = load_teacher_info(config)
    if info is not None and info.get("source") == config.teacher:
        tokenizer, model = load_teacher_classifier(str(teacher_dir(config)))
        print(f"Loaded the fine-tuned teacher from {teacher_dir(config)}.")
    else:
        tokenizer, model, _ = finetune_teacher(config, splits)
    model.eval()
    return tokenizer, model


def teacher_fields(config: BookConfig, model: Any) -> dict[str, Any]:
    """``teacher`` and ``standin`` fields for :func:`helpers.results.record_result`."""
    standin = is_standin(model)
    return {"teacher": f"stand-in (random init): {config.teacher}" if standin else config.teacher,
            "standin": standin}


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


def batched_logits(
    model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int,
    batch_size: int = 64, progress: bool = False,
) -> np.ndarray:
    """Logits of ``texts`` in their order: length-bucketed batches, padded to their longest text."""
    device = pick_device()
    model.to(device).eval()
    loader = make_loader(_dataset(tokenizer, texts, max_length), batch_size, shuffle=False,
                         pad_id=tokenizer.pad_token_id)
    with torch.inference_mode():
        return predict_logits(model, loader, device, progress=progress).astype(np.float32)


def logits_one_at_a_time(
    model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int = MAX_LENGTH_CAP,
    pad_to_max_length: bool = True,
) -> np.ndarray:
    """Logits computed text by text, each padded to ``max_length`` (as in the source article).

    Kept to show what dynamic padding saves; use :func:`batched_logits` for real work.
    """
    device = pick_device()
    model.to(device).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            inputs = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt",
                               padding="max_length" if pad_to_max_length else False)
            inputs = {k: inputs[k].to(device) for k in ("input_ids", "attention_mask")}
            rows.append(model(**inputs).logits.float().cpu().numpy()[0])
    return np.stack(rows).astype(np.float32)


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
        return np.load(path)
    if len(texts) == 0:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    logits = batched_logits(model, tokenizer, texts, max_length, batch_size, progress=True)
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
                  else choose_max_length(tokenizer, splits.train["text"].tolist()))
    cache_dir = config.artifact("teacher_cache")
    result = {}
    for name, frame in splits.items():
        start = time.perf_counter()
        result[name] = cached_teacher_logits(model, tokenizer, frame["text"].tolist(), cache_dir,
                                             max_length)
        print(f"teacher logits {name}: {result[name].shape}, {time.perf_counter() - start:.1f} s")
    return result


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m helpers.teacher make-standin --tokenizer DIR --out DIR``."""
    parser = argparse.ArgumentParser(prog="python -m helpers.teacher", description=__doc__.split(
        "\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    standin = commands.add_parser(
        "make-standin", help="save a randomly initialised rubert-tiny-shaped model (offline use)")
    standin.add_argument("--tokenizer", required=True, type=Path,
                         help="folder with the real tokenizer and the model config")
    standin.add_argument("--out", required=True, type=Path, help="folder to save the stand-in to")
    standin.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    out = make_standin_teacher(args.tokenizer, args.out, seed=args.seed)
    print(f"Stand-in teacher (random weights, meaningless scores) in {out}")


if __name__ == "__main__":
    main()
