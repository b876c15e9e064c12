"""Loading Hugging Face checkpoints (hub id or local folder), with errors that say what to do.

The teacher is loaded in two shapes: a sequence classifier to fine-tune
(:func:`load_teacher_classifier`, chapter 3) and a masked-language model whose token distributions
the BERT students learn from (:func:`load_teacher_mlm`, chapter 5). :func:`quiet_transformers`
keeps the library's load report and progress bars out of the notebooks' output where the prose
explains what they would say.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

LABELS = {0: "normal", 1: "toxic"}


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
        "`python -m helpers.standin --tokenizer DIR --out DIR` and set "
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


class MissingHeadError(ValueError):
    """A checkpoint lacks the weights a chapter needs (its masked-language-model head)."""


def load_teacher_mlm(name_or_path: str) -> tuple[Any, nn.Module]:
    """Tokenizer and masked-language model (token distributions) from a hub id or folder.

    The checkpoint must hold the MLM head (``cls.predictions.*``): loaded without it, the head
    would be random and the student would learn noise, so :class:`MissingHeadError` stops here.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model, info = AutoModelForMaskedLM.from_pretrained(name_or_path,
                                                               output_loading_info=True)
    except (OSError, ValueError) as error:
        raise _unavailable(name_or_path, error) from error
    missing = sorted(k for k in info["missing_keys"] if k.startswith("cls.predictions"))
    if missing:
        raise MissingHeadError(
            f"{name_or_path} has no masked-language-model head: {', '.join(missing)} are missing "
            "from the checkpoint (it was saved as an encoder or a classifier). Distilling token "
            "distributions from a random head teaches noise. Use a checkpoint saved with its "
            "pre-training heads, e.g. cointegrated/rubert-tiny from the hub, or the folder that "
            "save_pretrained wrote for a BertForPreTraining or BertForMaskedLM model.")
    return tokenizer, model
