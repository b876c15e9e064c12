"""How long each model trains: every budget of the book, in one place.

Budgets depend on the mode (small-data runs finish in seconds) and are the same for a student and
its no-teacher twin, so that their comparison is fair.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import BookConfig

# Three epochs over the ~10k training texts: about 1.5 minutes each on a free 2-core CPU.
TEACHER_EPOCHS = 3


def teacher_epochs(config: BookConfig) -> int:
    """Fine-tuning epochs of the teacher: three on the full data, one in small-data mode."""
    return 1 if config.small else TEACHER_EPOCHS


def bilstm_epochs(config: BookConfig) -> int:
    """Epochs of chapter 2's BiLSTM: 4 on the full data, 2 in small-data mode.

    With AdamW at 2e-3 the validation F1 of this model peaks within the first few epochs on ~10k
    comments, and an epoch costs about a minute on a 2-core CPU; early stopping (patience 2) still
    guards against overfitting inside the budget.
    """
    return 2 if config.small else 4


@dataclass(frozen=True)
class StudentBudget:
    """How much each student trains; every student and its no-teacher twin get the same."""

    pretrain_steps: int
    pretrain_batch_size: int
    pretrain_max_length: int
    pretrain_lr: float
    head_epochs: int
    head_batch_size: int
    head_max_length: int
    head_lr: float


def student_budget(config: BookConfig) -> StudentBudget:
    """The chapter's budget: seconds in small-data mode, under ~45 minutes on 2 CPU cores."""
    if config.small:
        return StudentBudget(pretrain_steps=6, pretrain_batch_size=16, pretrain_max_length=64,
                             pretrain_lr=5e-4, head_epochs=1, head_batch_size=32,
                             head_max_length=64, head_lr=2e-4)
    # Measured on 2 busy CPU cores: ~0.65 s per pretraining step of 32 texts (with or without
    # the teacher's forward), ~3 minutes per head epoch: 4 pretrainings of 400 steps (~1.3 passes
    # over the training texts) and 5 one-epoch heads take ~35 minutes.
    return StudentBudget(pretrain_steps=400, pretrain_batch_size=32, pretrain_max_length=128,
                         pretrain_lr=5e-4, head_epochs=1, head_batch_size=32,
                         head_max_length=128, head_lr=2e-4)


@dataclass(frozen=True)
class DistillationBudget:
    """Chapter 4's runs: every BiLSTM student and its no-teacher twin get the same budget.

    ``student_size`` are :class:`helpers.bilstm.BiLSTMClassifier` arguments (empty: the article's
    size); ``n_per_text`` is the number of augmented candidates per training text.
    """

    epochs: int
    batch_size: int
    alphas: tuple[float, ...]
    temperatures: tuple[float, ...]
    n_per_text: int
    student_size: dict[str, int]


def distillation_budget(config: BookConfig) -> DistillationBudget:
    """Chapter 4's budget: seconds in small-data mode, about 25 minutes on 2 CPU cores.

    Seven BiLSTM runs (five alphas, KL, augmentation on about twice the rows), one epoch each: one
    full-data epoch takes a few minutes. Batches of 128: larger matrix products run faster per
    text on a CPU than the default 64. Small-data mode only checks that every step runs, with a
    narrow BiLSTM.
    """
    return DistillationBudget(
        epochs=1, batch_size=128, alphas=(0.0, 0.25, 0.5, 0.75, 1.0), temperatures=(2.0,),
        n_per_text=1,
        student_size={"embedding_dim": 32, "hidden_size": 32} if config.small else {},
    )
