"""The results file: one row per model, written by each chapter, read by the last one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .config import BookConfig, get_config

COLUMNS = ["model", "chapter", "f1", "macro_f1", "average_precision", "params", "size_mb",
           "train_seconds", "teacher"]


def load_results(config: BookConfig | None = None) -> pd.DataFrame:
    """All recorded rows as a frame (empty, with the standard columns, if none yet)."""
    path = (config or get_config()).results_path
    rows = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype="object")
    return frame[COLUMNS + [c for c in frame.columns if c not in COLUMNS]]


def record_result(
    model: str, chapter: str, metrics: dict[str, float], config: BookConfig | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Add or replace the row of ``model`` in the results file and return it.

    ``metrics`` is what :func:`helpers.evaluation.evaluate` returned on the test split;
    ``extra`` holds the rest (``params``, ``size_mb``, ``train_seconds``, ``teacher``, ...).
    ``kind`` ("sklearn", "bilstm", "transformers", ...) and ``artifact`` (the saved model) let
    :func:`helpers.inference.load_classifier` load the model again; an ``artifact`` path is
    stored relative to the artifacts folder, so the results move with it.
    """
    config = config or get_config()
    if isinstance(extra.get("artifact"), Path):
        extra["artifact"] = extra["artifact"].resolve().relative_to(
            config.artifacts_dir.resolve()).as_posix()
    path = config.results_path
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    row = {"model": model, "chapter": chapter, **metrics, **extra}
    rows = [r for r in rows if r["model"] != model] + [row]
    # Write then rename, so a reader never sees a half-written file.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as tmp:
        json.dump(rows, tmp, ensure_ascii=False, indent=1)
    os.replace(tmp.name, path)
    return row


def size_on_disk_mb(path: str | Path) -> float:
    """Size of a file, or of everything under a folder, in megabytes (10**6 bytes)."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6
