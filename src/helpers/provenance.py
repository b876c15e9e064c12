"""Where a figure comes from: the data, the split, the teacher and the code that produced it.

Every results row carries :func:`provenance` (added by :func:`helpers.results.record_result`),
so that a table can say which data (sha256, and whether it is the pinned file), which split seed
and which code made each of its rows, beside the teacher fields
(:func:`helpers.standin.teacher_fields`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from .budgets import budget_preset
from .config import SEED, BookConfig
from .data import dataset_sha256, is_pinned_data

PACKAGE = Path(__file__).parent


def code_fingerprint() -> str:
    """sha256 (first 16 hex digits) of the source of every ``helpers`` module: two rows with the
    same fingerprint were produced by the same code."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def modules_fingerprint(*modules: ModuleType) -> str:
    """sha256 (first 16 hex digits) of the source of ``modules``: part of the key of an artifact
    that their code made, so that changed code makes it again instead of reusing it."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def provenance(config: BookConfig, split_seed: int = SEED) -> dict[str, Any]:
    """The data's sha256 and whether it is the pinned file, the split seed, and the code."""
    try:
        sha = dataset_sha256(config)
    except FileNotFoundError:
        sha = None
    return {"data_sha256": sha, "pinned_data": is_pinned_data(config), "split_seed": split_seed,
            "code": code_fingerprint(), "small": config.small}


def describe(config: BookConfig) -> str:
    """One line a notebook prints so the reader sees what it runs on: the data (and whether it is
    the pinned file), the mode and the teacher."""
    mode = "SMALL-DATA MODE (numbers are not meaningful)" if config.small else "full data"
    data = config.data or f"cache {config.data_cache_dir}"
    try:
        pinned = ("pinned file (sha256 verified)" if is_pinned_data(config) else
                  "NOT the pinned file: its figures are marked pinned_data=False")
    except OSError:
        pinned = "not read yet"
    line = (f"Data: {data}, {pinned} | {mode} | teacher: {config.teacher} | "
            f"{budget_preset(config).upper()} budget")
    if config.artifacts_root is not None:
        line += f" | artifacts: {config.artifacts_dir}"
    return line


def texts_fingerprint(texts: Iterable[str]) -> str:
    """sha256 of a sequence of texts, in order: what a model was trained on."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def artifact_key(**parts: Any) -> str:
    """A key for a saved artifact from everything that made it (texts' fingerprints, sources,
    hyper-parameters): an artifact is reused only when its stored key equals the current one."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def split_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a split's labelled texts, in order (a flipped label changes it)."""
    return texts_fingerprint(f"{label}\t{text}" for text, label in
                             zip(frame["text"], frame["label"], strict=True))
