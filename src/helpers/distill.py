"""BERT -> small-student distillation runs (chapter 4): train, choose on validation, tabulate.

Every student is a network over BPE tokens (:mod:`helpers.token_models`: a CNN or the article's
BiLSTM) trained by :func:`helpers.token_models.train_token_model` with a distillation loss of
:mod:`helpers.losses` on the teacher's cached logits, so the teacher never runs inside the
student's training loop; its no-teacher twin is the same network trained on the labels alone.
Choices between runs (alpha, temperature) are made on validation F1 only
(:func:`best_by_validation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tokenizers import Tokenizer

from .benchmark import count_parameters, size_on_disk_mb
from .budgets import DistillationBudget
from .config import BookConfig
from .data import Splits
from .losses import LossFn, cross_entropy_loss
from .settings import NetworkSpec, TrainSettings
from .token_models import train_token_model
from .training import History, plot_histories
from .word_vectors import NavecInputs


@dataclass
class StudentRun:
    """One trained student (or no-teacher twin): what it was trained with and how it scored."""

    label: str
    name: str
    history: History
    test: dict[str, float]
    test_proba: np.ndarray
    seconds: float
    params: int
    size_mb: float
    train_rows: int
    folder: Path
    frozen_embedding_epochs: int = 0

    @property
    def valid_f1(self) -> float:
        """Validation F1 of the kept (best) epoch: the figure runs are compared on."""
        return self.history.best_valid_f1

    def as_result(self) -> dict[str, Any]:
        """The fields :func:`helpers.results.record_result` needs, besides name and chapter."""
        return {"metrics": self.test, "kind": "token_model", "artifact": self.folder,
                "params": self.params, "train_seconds": self.seconds,
                "valid_f1": self.valid_f1}


def train_token_student(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    loss_fn: LossFn,
    teacher_logits: np.ndarray | None,
    *,
    name: str,
    label: str,
    schedule: TrainSettings,
    network: NetworkSpec,
    embedding_init: np.ndarray | None = None,
    frozen_embedding_epochs: int = 0,
    reuse: bool = False,
    device: str | None = None,
) -> StudentRun:
    """Train a student ``network`` on ``splits.train`` with ``loss_fn`` and the training texts'
    cached teacher logits, on ``schedule`` (both from :func:`helpers.budgets.distillation_budget`;
    :func:`helpers.token_models.train_token_model` does the training); the teacher itself never
    runs here.

    ``teacher_logits`` are in the row order of ``splits.train`` (which may hold augmented rows
    labelled ``-1``); ``None`` for a no-teacher twin trained on the labels alone. The model is
    saved under the artifact ``name``; its size on disk is the saved folder (weights,
    architecture, tokenizer).
    """
    extras = (None if teacher_logits is None else
              {"teacher_logits": {"train": np.asarray(teacher_logits, dtype=np.float32)}})
    run = train_token_model(config, splits, tokenizer, schedule, network, loss_fn=loss_fn,
                            extras=extras, name=name, device=device,
                            embedding_init=embedding_init,
                            frozen_embedding_epochs=frozen_embedding_epochs, reuse=reuse)
    return StudentRun(
        label=label, name=name, history=run.history, test=run.test, test_proba=run.test_proba,
        seconds=run.seconds, params=count_parameters(run.model),
        size_mb=size_on_disk_mb(run.folder), train_rows=len(splits.train), folder=run.folder,
        frozen_embedding_epochs=frozen_embedding_epochs,
    )


def best_by_validation(runs: Sequence[StudentRun]) -> StudentRun:
    """The run with the highest validation F1 (the first one on ties); never chosen on test."""
    return max(runs, key=lambda run: run.valid_f1)


def runs_table(runs: Sequence[StudentRun]) -> pd.DataFrame:
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


def plot_valid_f1(runs: Sequence[StudentRun], title: str = "", ax=None):
    """Validation F1 per epoch of several runs on one figure, each kept epoch circled."""
    return plot_histories({run.label: run.history for run in runs}, title, ax)


NAVEC_LABELS = {0: "navec, fine-tuned throughout", 1: "navec, frozen for epoch 1"}


def navec_label(frozen_epochs: int) -> str:
    """How a navec BiLSTM's embeddings were trained, in words."""
    return NAVEC_LABELS.get(frozen_epochs, f"navec, frozen for {frozen_epochs} epochs")


def train_navec_twins(config: BookConfig, splits: Splits, navec: NavecInputs,
                      budget: DistillationBudget, schedule: TrainSettings) -> list[StudentRun]:
    """The navec BiLSTM (``budget.navec``, navec's vectors as its initial embeddings) trained on
    the labels alone on chapter 4's ``schedule`` (:meth:`DistillationBudget.schedule`), once for
    each of ``budget.navec_frozen_epochs`` (its vectors frozen for that many first epochs);
    chapter 2 trains them, chapter 4 reuses them (same data, vectors, settings and seed) as the
    twin of its navec student. Pick one with :func:`best_by_validation`."""
    return [train_token_student(config, splits, navec.tokenizer, cross_entropy_loss, None,
                                name=f"navec_bilstm_frozen{frozen}", label=navec_label(frozen),
                                schedule=schedule, network=budget.navec,
                                embedding_init=navec.embeddings,
                                frozen_embedding_epochs=frozen, reuse=True)
            for frozen in budget.navec_frozen_epochs]
