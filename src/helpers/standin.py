"""The offline stand-in teacher, and the notice that goes with every figure it touches.

Readers load ``cointegrated/rubert-tiny`` from the Hugging Face hub (the default ``BOOK_TEACHER``).
Offline, a randomly initialised model of exactly rubert-tiny's shape, saved with the real
tokenizer, stands in for it so that every code path runs (:func:`make_standin_teacher`). A stand-in
is marked in its config (``book_standin=True``); the mark survives saving, loading and fine-tuning,
every results row that depends on it says so (``standin``), and each chapter prints
:data:`STANDIN_NOTICE` once.

Command line (used by CI)::

    python -m helpers.standin --tokenizer DIR --out DIR
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .checkpoints import quiet_transformers
from .config import SEED, BookConfig
from .errors import OutputPathError, UserError, add_debug_flag, check_writable_dir, run_command

STANDIN_ATTR = "book_standin"
WEIGHTS_FILE = "model.safetensors"
# Wrapped: a page shows printed lines as they are, and a long line runs off the text column.
STANDIN_NOTICE = textwrap.fill(
    "WARNING: STAND-IN TEACHER. This teacher is NOT rubert-tiny: it is a randomly "
    "initialised model of rubert-tiny's shape, used because the Hugging Face hub could not "
    "be reached. It runs every step of the code, but its scores, and the scores of every "
    "student distilled from it, are meaningless. Set BOOK_TEACHER to the real "
    "cointegrated/rubert-tiny (hub id or local folder) for real numbers.", width=90)
MARKER = "† "


def is_standin(model_or_config: Any) -> bool:
    """Whether a model (or its config) is the offline stand-in rather than the real teacher."""
    config = getattr(model_or_config, "config", model_or_config)
    return bool(getattr(config, STANDIN_ATTR, False))


def standin_warning(model: Any) -> str:
    """A loud notice to print next to figures when the teacher is a stand-in; else ``""``."""
    return STANDIN_NOTICE if is_standin(model) else ""


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
            raise OutputPathError(f"{out} holds a model that is not a stand-in; not replacing "
                                  "it: choose another folder")
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


def teacher_fields(config: BookConfig, model: Any) -> dict[str, Any]:
    """The ``teacher`` and ``standin`` fields of :func:`helpers.results.record_result` for a model
    that learned from ``model`` (the teacher, or its config)."""
    return {"teacher": config.teacher, "standin": is_standin(model)}


def teacher_row_name(config: BookConfig, model: Any) -> str:
    """The results row name of the fine-tuned teacher: the last part of its hub id or its folder's
    name (``cointegrated/rubert-tiny`` -> ``"rubert-tiny teacher"``), or ``"stand-in teacher"``
    for the offline stand-in, which is no named model."""
    if is_standin(model):
        return "stand-in teacher"
    return f"{Path(str(config.teacher).rstrip('/').rstrip(chr(92))).name} teacher"


def standin_notice(frame: pd.DataFrame) -> str:
    """:data:`STANDIN_NOTICE` and the names of the rows of ``frame`` (results rows, or a table
    indexed by model) that depend on a stand-in teacher; ``""`` when none does."""
    names = standin_models(frame)
    if not names:
        return ""
    rows = textwrap.fill(f"Rows that depend on it, marked {MARKER.strip()} in the tables below: "
                         f"{', '.join(names)}.", width=90)
    return f"{STANDIN_NOTICE}\n{rows}"


def standin_models(frame: pd.DataFrame) -> list[str]:
    """Names of the rows of ``frame`` (results rows, or a table indexed by model) that depend on
    a stand-in teacher."""
    if "standin" not in frame.columns:
        return []
    flagged = frame["standin"].map(lambda v: v is True or v == 1.0)
    names = frame["model"] if "model" in frame.columns else frame.index.to_series()
    return [str(name) for name in names[flagged]]


def mark_standin(frame: pd.DataFrame, models: Iterable[str]) -> pd.DataFrame:
    """A copy of ``frame`` for display whose row labels naming one of ``models`` start with
    :data:`MARKER` (a variant such as "X [ONNX int8]" or a step "A → X" names X too), so that each
    row of a table says whether a stand-in teacher stands behind it (at the start, where a long
    label cut short by pandas still shows it); the notice itself is printed once per chapter."""
    models = [m for m in models if m]

    def label(value: Any) -> Any:
        text = str(value)
        return MARKER + text if any(m in text for m in models) else value

    return frame.rename(index=label)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.standin --tokenizer DIR --out DIR``; a mistake in the arguments is one
    line on standard error and exit status 2 (``--debug``: the traceback)."""
    return run_command(_main, argv, prog="python -m helpers.standin")


def _main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.standin",
        description="Save a randomly initialised rubert-tiny-shaped model (offline use).")
    parser.add_argument("--tokenizer", required=True, type=Path,
                        help="folder with the real tokenizer and the model config")
    parser.add_argument("--out", required=True, type=Path, help="folder to save the stand-in to")
    parser.add_argument("--seed", type=int, default=SEED)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not (args.tokenizer / "config.json").is_file():
        raise UserError(f"{args.tokenizer} has no config.json: --tokenizer must name a folder with "
                        "the real tokenizer's files and the model's config.json")
    check_writable_dir(args.out)
    out = make_standin_teacher(args.tokenizer, args.out, seed=args.seed)
    print(f"Stand-in teacher (random weights, meaningless scores) in {out}")


if __name__ == "__main__":
    sys.exit(main())
