"""How long each model trains: every budget of the book, in one place.

Budgets depend on the mode (small-data runs finish in seconds) and are the same for a student and
its no-teacher twin, so that their comparison is fair.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SEED, BookConfig

# At most six epochs over the ~10k training texts (about 1.5-3 minutes each on a 2-core CPU):
# fine-tuning stops earlier, on a validation plateau (patience 2), and keeps the best epoch.
TEACHER_EPOCHS = 6


def teacher_epochs(config: BookConfig) -> int:
    """The teacher's epoch cap: six on the full data (it stops on a validation plateau), one in
    small-data mode."""
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
    """Chapter 4's runs: every student and its no-teacher twin get the same budget.

    Students are trained until their validation F1 stops improving (``patience`` epochs without
    a better one, at most ``epochs``), keeping the best epoch. The sweep (``alphas``,
    ``temperatures``, augmentation with ``n_per_text`` candidates per training text) runs on the
    fast ``network``; the best recipe is then applied to the article's BiLSTM (``bilstm_size``)
    beside its own twin. ``seeds`` are the training seeds of the spread measured for the main
    student/twin pair; ``max_length`` cuts every text (its tokens beyond are dropped).
    """

    network: str
    student_size: dict[str, int]
    bilstm_size: dict[str, int]
    epochs: int
    patience: int
    batch_size: int
    lr: float
    max_length: int
    alphas: tuple[float, ...]
    temperatures: tuple[float, ...]
    n_per_text: int
    seeds: tuple[int, ...]


def distillation_budget(config: BookConfig) -> DistillationBudget:
    """Chapter 4's budget: seconds in small-data mode, about 25 minutes on a 2-core CPU.

    Measured on the full data, one thread: an epoch of the CNN student costs about 10 CPU
    seconds, of the BiLSTM with 128 units each way about 35, of the article's BiLSTM (300/256)
    about 125; the CNN's validation F1 reaches its plateau within about 10-14 epochs. Batches of
    64: larger ones are not faster per text for these models on a CPU and take fewer steps.
    """
    if config.small:
        return DistillationBudget(
            network="cnn", student_size={"embedding_dim": 32, "num_filters": 16},
            bilstm_size={"embedding_dim": 32, "hidden_size": 32}, epochs=2, patience=2,
            batch_size=64, lr=2e-3, max_length=64, alphas=(0.0, 0.5), temperatures=(2.0,),
            n_per_text=1, seeds=(SEED, 1))
    return DistillationBudget(
        network="cnn", student_size={"embedding_dim": 128, "num_filters": 128},
        bilstm_size={"embedding_dim": 128, "hidden_size": 128}, epochs=15, patience=3,
        batch_size=64, lr=2e-3, max_length=128, alphas=(0.0, 0.5), temperatures=(2.0,),
        n_per_text=1, seeds=(SEED, 1, 2))
