"""The results file: one row per model, written by each chapter, read by the last one.

Every model of the book is recorded by the one function :func:`record_result`, so every row has
the same fields with the same meanings:

``model``, ``chapter``
    the model's name and the number of the chapter that trained it (:mod:`helpers.chapters`);
``kind``, ``artifact``
    how to load it (:data:`KINDS`) and where it is saved, relative to the artifacts folder;
``f1``, ``macro_f1``, ``average_precision`` (and precision, recall, accuracy)
    test-split scores from :func:`helpers.evaluation.evaluate`;
``valid_f1``
    validation F1 of the kept model: every choice between models is made on it, never on test;
``params``, ``size_mb``, ``train_seconds``
    learned numbers, size on disk of the artifact (what a deployment would ship: the model with its
    tokenizer or vectorizer, always measured by :func:`helpers.benchmark.size_on_disk_mb`), and
    wall time of training;
``teacher``, ``standin``
    the teacher the model learned from (its hub id or folder), ``None`` for a model trained without
    one; ``standin`` is true when that teacher is the offline stand-in (:mod:`helpers.standin`);
``data_sha256``, ``pinned_data``, ``split_seed``, ``code``, ``small``
    where the figures come from (:func:`helpers.provenance.provenance`).

Chapter 6 adds measured speed to the rows with :func:`update_row`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .benchmark import size_on_disk_mb
from .chapters import Chapter, chapter_number
from .config import BookConfig, get_config
from .provenance import provenance

KINDS = ("sklearn", "token_model", "transformers", "cls_logreg")
SCORES = ("f1", "macro_f1", "average_precision")
COLUMNS = ["model", "chapter", "kind", "artifact", "f1", "macro_f1", "average_precision",
           "valid_f1", "params", "size_mb", "train_seconds", "teacher", "standin", "data_sha256",
           "pinned_data", "split_seed", "code", "small"]


def field_value(row: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``row[key]``, treating a missing key, ``None`` and pandas' NaN (a column that other rows
    have) alike: all give ``default``."""
    value = row.get(key, default)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _read_rows(config: BookConfig) -> list[dict[str, Any]]:
    path = config.results_path
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _write_rows(config: BookConfig, rows: list[dict[str, Any]]) -> None:
    path = config.results_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees a half-written file.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as tmp:
        json.dump(rows, tmp, ensure_ascii=False, indent=1)
    os.replace(tmp.name, path)


def load_results(config: BookConfig | None = None) -> pd.DataFrame:
    """All recorded rows as a frame (empty, with the standard columns, if none yet)."""
    frame = pd.DataFrame(_read_rows(config or get_config()))
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype="object")
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]


def _plain(value: Any) -> Any:
    """A value json can write: numpy scalars become Python numbers."""
    return value.item() if isinstance(value, np.generic) else value


def record_result(
    config: BookConfig | None,
    model: str,
    chapter: Chapter | str,
    metrics: Mapping[str, float],
    *,
    kind: str,
    artifact: str | Path,
    params: int,
    train_seconds: float,
    valid_f1: float,
    teacher: str | None = None,
    standin: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Add or replace the row of ``model`` in the results file and return it.

    ``metrics`` is what :func:`helpers.evaluation.evaluate` returned on the test split;
    ``artifact`` the saved model (a file or folder under ``config.artifacts_dir``), whose size on
    disk becomes ``size_mb``; ``valid_f1`` its validation F1; ``teacher`` the teacher's source
    (``None``: trained without one) and ``standin`` whether it is the offline stand-in.
    ``extra`` holds hyper-parameters and notes (``alpha``, ``epochs``, ``preprocess``, ...).
    """
    config = config or get_config()
    chapter = chapter_number(chapter, recording=True)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    missing = [m for m in SCORES if m not in metrics]
    if missing:
        raise ValueError(f"metrics lack {missing}: pass what helpers.evaluation.evaluate returned")
    if standin and teacher is None:
        raise ValueError("a row with standin=True must name its teacher")
    path = Path(artifact)
    path = path if path.is_absolute() else config.artifacts_dir / path
    try:
        relative = path.resolve().relative_to(config.artifacts_dir.resolve()).as_posix()
    except ValueError as error:
        raise ValueError(f"the artifact {path} is not under {config.artifacts_dir}") from error
    row = {
        "model": model, "chapter": chapter, "kind": kind, "artifact": relative,
        **{k: _plain(v) for k, v in metrics.items()},
        "params": int(params), "size_mb": round(size_on_disk_mb(path), 3),
        "train_seconds": round(float(train_seconds), 1), "valid_f1": float(valid_f1),
        "teacher": None if teacher is None else str(teacher), "standin": bool(standin),
        **provenance(config),
        **{k: _plain(v) for k, v in extra.items()},
    }
    rows = [r for r in _read_rows(config) if r["model"] != model] + [row]
    _write_rows(config, rows)
    return row


def update_row(config: BookConfig, model: str, **fields: Any) -> dict[str, Any]:
    """Add ``fields`` (e.g. measured speed) to the recorded row of ``model`` and return it."""
    rows = _read_rows(config)
    for row in rows:
        if row["model"] == model:
            row.update({k: _plain(v) for k, v in fields.items()})
            _write_rows(config, rows)
            return row
    raise KeyError(f"No row {model!r} in {config.results_path}")


def forget_chapter(config: BookConfig, chapter: Chapter | str) -> list[str]:
    """Remove every row of ``chapter`` (before it records its models again, so that a model an
    earlier version of the chapter produced does not linger); return their names."""
    chapter = chapter_number(chapter, recording=True)
    rows = _read_rows(config)
    gone = [row["model"] for row in rows if row["chapter"] == chapter]
    _write_rows(config, [row for row in rows if row["chapter"] != chapter])
    return gone


def results_page(config: BookConfig | None = None) -> pd.DataFrame:
    """The results file as the book's results page shows it: one row per model, best F1 first."""
    results = load_results(config)
    columns = [c for c in ["model", "chapter", "f1", "macro_f1", "average_precision", "valid_f1",
                           "params", "size_mb", "latency_ms", "texts_per_s", "train_seconds",
                           "teacher", "standin", "pinned_data"] if c in results.columns]
    return (results[columns].sort_values("f1", ascending=False, na_position="last")
            .set_index("model").round(4))


def rows_table(rows: list[Mapping[str, Any]], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Recorded rows (what :func:`record_result` returned) side by side, rounded for reading:
    scores, parameters, size and training time, plus the ``extra`` fields asked for."""
    columns = ["f1", "macro_f1", "average_precision", "params", "size_mb", "train_seconds",
               *extra]
    frame = pd.DataFrame([{c: field_value(row, c) for c in ["model", *columns]} for row in rows])
    return frame.set_index("model").round(4)
