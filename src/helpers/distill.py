"""Distillation losses on logits, shared by every student in the book.

Each function names its source. All take raw logits: softmax and log-softmax happen inside.

Rows without a gold label
    The transfer set of Tang et al. (2019) adds augmented texts that only the teacher has
    labelled. Such rows carry the label :data:`UNLABELLED` (``-1``): the cross-entropy term is
    averaged over the labelled rows only, while the teacher term (MSE or KL) uses every row. An
    unlabelled row therefore teaches the student through the teacher alone, as in the paper, and a
    batch of unlabelled rows only has no cross-entropy term at all (so with ``alpha = 1`` such rows
    teach nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from .config import BookConfig
from .data import Splits
from .models import bilstm_folder, count_parameters, train_bilstm
from .results import record_result, size_on_disk_mb
from .training import History

UNLABELLED = -1
"""Label of a row that has no gold label (an augmented text labelled by the teacher only)."""

NO_TEACHER_TWIN = "BiLSTM, no teacher (chapter 4 budget)"
"""Results-file name of chapter 4's BiLSTM trained without the teacher on the students' budget:
the row chapter 6 measures each distilled BiLSTM against."""

LossFn = Callable[[torch.Tensor, dict], torch.Tensor]


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the rows that have a gold label (``label >= 0``).

    Rows labelled :data:`UNLABELLED` are left out of both the sum and the count; with no labelled
    row at all the result is a zero that still belongs to the graph (so ``backward`` works).
    ``F.cross_entropy(ignore_index=-1)`` would return NaN in that case, hence the explicit mask.
    """
    labelled = labels >= 0
    if bool(labelled.all()):
        return F.cross_entropy(logits, labels)
    if not bool(labelled.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[labelled], labels[labelled])


def logit_mse_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``alpha * CE(student, label) + (1 - alpha) * MSE(student logits, teacher logits)``.

    The loss of the source article, after Tang et al. (2019), "Distilling Task-Specific Knowledge
    from BERT into Simple Neural Networks": matching logits (not probabilities) keeps what the
    teacher knows about how sure it is, which softmax would squash. The cross-entropy is averaged
    over labelled rows only (see :func:`masked_cross_entropy`); the MSE over every row and logit.
    """
    _check_alpha(alpha)
    ce = masked_cross_entropy(student_logits, labels)
    mse = F.mse_loss(student_logits, teacher_logits)
    return alpha * ce + (1.0 - alpha) * mse


def soft_target_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher || student) of temperature-softened distributions, times ``temperature**2``.

    Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network"; used by
    DistilBERT. The ``T**2`` factor keeps the gradient's scale independent of the temperature.
    Works for any number of classes along the last dimension (also token distributions over a
    vocabulary, after flattening the positions into the batch dimension).
    """
    _check_temperature(temperature)
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def kl_distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha * CE(student, label) + (1 - alpha) * T**2 * KL(teacher_T || student_T)``.

    The soft-target loss of Hinton et al. (2015), with the hard-label term weighted by ``alpha``
    (the same convention as :func:`logit_mse_loss`, so the two differ only in the teacher term).
    The cross-entropy uses labelled rows only; the KL term every row.
    """
    _check_alpha(alpha)
    ce = masked_cross_entropy(student_logits, labels)
    kl = soft_target_kl(student_logits, teacher_logits, temperature)
    return alpha * ce + (1.0 - alpha) * kl


def _targets(batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's teacher logits and labels, on ``device``."""
    if "teacher_logits" not in batch:
        raise KeyError(
            "the batch has no 'teacher_logits': build the dataset with "
            "EncodedDataset(ids, labels, extras={'teacher_logits': logits})"
        )
    teacher = batch["teacher_logits"].to(device=device, dtype=torch.float32)
    return teacher, batch["labels"].to(device)


def article_loss_fn(alpha: float) -> LossFn:
    """A ``loss_fn(logits, batch)`` for :func:`helpers.training.fit`: :func:`logit_mse_loss`.

    The article's (and Tang et al.'s 2019) loss on the batch's cached ``teacher_logits``, so the
    teacher never runs inside the student's training loop. ``alpha = 1`` is plain cross-entropy
    (no teacher), ``alpha = 0`` pure logit matching. Rows labelled ``-1`` get the teacher term only.
    """
    _check_alpha(alpha)

    def loss_fn(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        teacher, labels = _targets(batch, logits.device)
        return logit_mse_loss(logits, teacher, labels, alpha)

    return loss_fn


def kl_loss_fn(temperature: float, alpha: float) -> LossFn:
    """A ``loss_fn(logits, batch)`` for :func:`helpers.training.fit`: :func:`kl_distillation_loss`.

    Hinton et al. (2015) soft targets at ``temperature`` on the batch's cached ``teacher_logits``,
    plus ``alpha`` times the cross-entropy on the labelled rows (rows labelled ``-1`` get the KL
    term only).
    """
    _check_alpha(alpha)
    _check_temperature(temperature)

    def loss_fn(logits: torch.Tensor, batch: dict) -> torch.Tensor:
        teacher, labels = _targets(batch, logits.device)
        return kl_distillation_loss(logits, teacher, labels, temperature, alpha)

    return loss_fn


# --------------------------------------------------------------------------- student runs


@dataclass
class StudentRun:
    """One trained BiLSTM student: what it was trained with and how it scored."""

    label: str
    name: str
    history: History
    test: dict[str, float]
    seconds: float
    params: int
    size_mb: float
    train_rows: int

    @property
    def valid_f1(self) -> float:
        """Validation F1 of the kept (best) epoch: the figure runs are compared on."""
        return self.history.epochs[self.history.best_epoch - 1]["valid_f1"]


def train_student(
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
) -> StudentRun:
    """Train a BiLSTM on ``splits.train`` with ``loss_fn`` and the training texts' cached teacher
    logits (:func:`helpers.models.train_bilstm`); the teacher itself never runs here.

    ``teacher_logits`` are in the row order of ``splits.train`` (which may hold augmented rows
    labelled ``-1``). The model is saved under the artifact ``name``; its size on disk is the saved
    folder (weights, architecture, tokenizer).
    """
    model, history, test, seconds = train_bilstm(
        config, splits, tokenizer, loss_fn=loss_fn,
        extras={"teacher_logits": {"train": np.asarray(teacher_logits, dtype=np.float32)}},
        name=name, epochs=epochs, max_length=max_length, **kwargs,
    )
    return StudentRun(
        label=label, name=name, history=history, test=test, seconds=seconds,
        params=count_parameters(model), size_mb=size_on_disk_mb(bilstm_folder(config, name)),
        train_rows=len(splits.train),
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


def record_student(
    config: BookConfig, model_name: str, run: StudentRun, chapter: str, teacher_model: Any | None,
    **extra: Any,
) -> dict[str, Any]:
    """Record a student's test figures, size, time and teacher with
    :func:`helpers.results.record_result`.

    The row carries ``kind="bilstm"`` and the saved folder as ``artifact``, so that chapter 6 can
    load the student again (:func:`helpers.inference.load_classifier`) and time it. With
    ``teacher_model=None`` (the no-teacher twin) the row says ``teacher=None``.
    """
    from .teacher import teacher_fields

    teacher = (teacher_fields(config, teacher_model) if teacher_model is not None
               else {"teacher": None, "standin": False})
    return record_result(
        model_name, chapter, run.test, config, params=run.params, size_mb=run.size_mb,
        train_seconds=run.seconds, kind="bilstm", artifact=bilstm_folder(config, run.name),
        **teacher, **extra,
    )
