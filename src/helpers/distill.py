"""BERT -> BiLSTM distillation runs (chapter 4): train, choose on validation, tabulate, plot.

Every student is chapter 2's BiLSTM (:func:`helpers.bilstm.train_bilstm`) trained with a
distillation loss of :mod:`helpers.losses` on the teacher's cached logits, so the teacher never
runs inside the student's training loop. Choices between runs (alpha, temperature) are made on
validation F1 only (:func:`best_by_validation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tokenizers import Tokenizer

from .benchmark import count_parameters, size_on_disk_mb
from .bilstm import bilstm_folder, train_bilstm
from .config import BookConfig
from .data import Splits
from .losses import LossFn
from .training import History

NO_TEACHER_TWIN = "BiLSTM, no teacher (chapter 4 budget)"
"""Results-file name of chapter 4's BiLSTM trained without the teacher on the students' budget:
the row chapter 6 measures each distilled BiLSTM against."""


@dataclass
class BiLSTMRun:
    """One trained BiLSTM student: what it was trained with and how it scored."""

    label: str
    name: str
    history: History
    test: dict[str, float]
    seconds: float
    params: int
    size_mb: float
    train_rows: int
    folder: Path

    @property
    def valid_f1(self) -> float:
        """Validation F1 of the kept (best) epoch: the figure runs are compared on."""
        return self.history.best_valid_f1

    def as_result(self) -> dict[str, Any]:
        """The fields :func:`helpers.results.record_result` needs, besides name and chapter."""
        return {"metrics": self.test, "kind": "bilstm", "artifact": self.folder,
                "params": self.params, "train_seconds": self.seconds,
                "valid_f1": self.valid_f1}


def train_bilstm_student(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    loss_fn: LossFn,
    teacher_logits: np.ndarray,
    *,
    name: str,
    label: str,
    epochs: int,
    max_length: int,
    **kwargs: Any,
) -> BiLSTMRun:
    """Train a BiLSTM on ``splits.train`` with ``loss_fn`` and the training texts' cached teacher
    logits (:func:`helpers.bilstm.train_bilstm`); the teacher itself never runs here.

    ``teacher_logits`` are in the row order of ``splits.train`` (which may hold augmented rows
    labelled ``-1``). The model is saved under the artifact ``name``; its size on disk is the saved
    folder (weights, architecture, tokenizer).
    """
    model, history, test, seconds = train_bilstm(
        config, splits, tokenizer, loss_fn=loss_fn,
        extras={"teacher_logits": {"train": np.asarray(teacher_logits, dtype=np.float32)}},
        name=name, epochs=epochs, max_length=max_length, **kwargs,
    )
    folder = bilstm_folder(config, name)
    return BiLSTMRun(
        label=label, name=name, history=history, test=test, seconds=seconds,
        params=count_parameters(model), size_mb=size_on_disk_mb(folder),
        train_rows=len(splits.train), folder=folder,
    )


def best_by_validation(runs: Sequence[BiLSTMRun]) -> BiLSTMRun:
    """The run with the highest validation F1 (the first one on ties); never chosen on test."""
    return max(runs, key=lambda run: run.valid_f1)


def runs_table(runs: Sequence[BiLSTMRun]) -> pd.DataFrame:
    """Validation and test figures, size and training time of each run, one row per run."""
    rows = {
        run.label: {
            "valid F1": run.valid_f1, "test F1": run.test["f1"],
            "test AP": run.test["average_precision"], "test macro F1": run.test["macro_f1"],
            "kept epoch": run.history.best_epoch, "epochs run": len(run.history.epochs),
            "train rows": run.train_rows, "params": run.params, "MB": run.size_mb,
            "train s": run.seconds,
        }
        for run in runs
    }
    return pd.DataFrame(rows).T.astype({"kept epoch": int, "epochs run": int, "train rows": int,
                                        "params": int}).round(4)


def plot_valid_f1(runs: Sequence[BiLSTMRun], title: str = "", ax=None):
    """Validation F1 per epoch of several runs on one figure, each kept epoch circled."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    for run in runs:
        frame = run.history.to_frame()
        (line,) = ax.plot(frame.index, frame["valid_f1"], marker=".", label=run.label)
        ax.plot(run.history.best_epoch, run.valid_f1, "o", mfc="none", ms=10,
                color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation F1 (toxic)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax
