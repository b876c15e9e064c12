"""How long each model trains: every budget of the book, in one place.

Budgets depend on the mode (small-data runs finish in seconds) and on the preset
(:func:`budget_preset`): the **CPU** preset fits a 2-core laptop (each chapter's time is in the
README), the **GPU** preset, chosen automatically when CUDA is available (``BOOK_BUDGET`` overrides
it), trains longer and wider, closer to the source article. A student and its no-teacher twin
always get the same budget, so that their comparison is fair.

A token model's budget is handed out as objects that the training functions take whole: a
:class:`helpers.settings.TrainSettings` (the schedule) and a
:class:`helpers.settings.NetworkSpec` per network; chapter 2's from :func:`bilstm_schedule`,
chapter 4's from :func:`distillation_budget` (:meth:`DistillationBudget.schedule`,
``.cnn``, ``.bilstm``, ``.navec``). :func:`helpers.pipeline.run_chain` takes the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import SEED, BookConfig

if TYPE_CHECKING:  # helpers.token_models imports this module (through provenance) at load time
    from .settings import NetworkSpec, TrainSettings

# The teacher's epoch cap; fine-tuning stops earlier, on a validation plateau (patience 2), and
# keeps the best epoch. CPU: about 1.5-3 minutes an epoch over the ~10k training texts.
TEACHER_EPOCHS = {"cpu": 6, "gpu": 10}


def budget_preset(config: BookConfig) -> str:
    """``"cpu"`` or ``"gpu"``: ``BOOK_BUDGET`` when it names one, else the GPU preset when CUDA is
    available (Apple's MPS gets the CPU preset: it speeds training up less)."""
    if config.budget != "auto":
        return config.budget
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def teacher_epochs(config: BookConfig) -> int:
    """The teacher's epoch cap: six on the full data with the CPU preset, ten with the GPU preset
    (it stops on a validation plateau), one in small-data mode."""
    return 1 if config.small else TEACHER_EPOCHS[budget_preset(config)]


def crossfit_folds(config: BookConfig) -> int:
    """Folds of the cross-fitted teacher logits (:func:`helpers.teacher.crossfit_teacher_logits`):
    each fold costs a fine-tuning on the other folds, so ``k`` folds cost ``k - 1`` teachers. Two
    halves on the CPU preset (about one more teacher's time), five with the GPU preset."""
    return 5 if not config.small and budget_preset(config) == "gpu" else 2


def bilstm_epochs(config: BookConfig) -> int:
    """The epoch cap of chapter 2's BiLSTM: 10 on the full data with the CPU preset (an epoch
    costs about a minute on a 2-core CPU), 12 with the GPU preset, 2 in small-data mode. Early
    stopping (patience 2) ends the run on a validation plateau below the cap and keeps the best
    epoch; a cap of 4 stopped it while it was still improving."""
    if config.small:
        return 2
    return 12 if budget_preset(config) == "gpu" else 10


def bilstm_schedule(config: BookConfig, tokenizer: Any,
                    train_texts: Sequence[str]) -> TrainSettings:
    """Chapter 2's schedule for its BiLSTM (the article's,
    :data:`helpers.token_models.ARTICLE_BILSTM`): :func:`bilstm_epochs` at most,
    patience 2, batches of 64, lr 2e-3, texts cut by :func:`helpers.encoding.max_length_for`
    with no budget cap (BERT's 512)."""
    from .encoding import max_length_for
    from .settings import TrainSettings

    return TrainSettings(epochs=bilstm_epochs(config),
                         max_length=max_length_for(tokenizer, train_texts))


@dataclass(frozen=True)
class StudentBudget:
    """How much each student trains; every student and its no-teacher twin get the same.

    Pretraining runs until the validation MLM loss (measured on ``pretrain_valid_texts``
    validation texts every ``pretrain_eval_every`` steps) has not improved by 1% for
    ``pretrain_patience`` measurements, at most ``pretrain_steps``; the classification head until
    its validation F1 has not improved for ``head_patience`` epochs, at most ``head_epochs``.
    Both keep their best weights. The heads of the student/twin pairs are trained again with each
    of ``head_seeds`` (:func:`helpers.students.repeat_heads`), by ``workers`` processes at a time
    (``None``: :func:`helpers.parallel.parallel_workers` decides; 1 in small-data mode, where a
    worker's start costs more than its run).
    """

    pretrain_steps: int
    pretrain_batch_size: int
    pretrain_max_length: int
    pretrain_lr: float
    head_epochs: int
    head_batch_size: int
    head_max_length: int
    head_lr: float
    pretrain_eval_every: int = 100
    pretrain_patience: int = 3
    pretrain_valid_texts: int = 512
    head_patience: int = 2
    head_seeds: tuple[int, ...] = (SEED, 1, 2)
    workers: int | None = None


def student_budget(config: BookConfig) -> StudentBudget:
    """Chapter 5's budget: seconds in small-data mode; minutes per run on a 2-core CPU.

    Measured on the full data (stand-in teacher, the chapter alone on 2 cores): with the CPU cap
    of 2,000 steps all six pretrainings stopped by their plateau rule, after 1,200-1,500 steps,
    in 6-11 minutes each; a classification head took 5-7 minutes (4 or 5 epochs); the chapter,
    with its eight seeded heads, 124 minutes (README.md says why it keeps them).
    """
    if config.small:
        return StudentBudget(pretrain_steps=6, pretrain_batch_size=16, pretrain_max_length=64,
                             pretrain_lr=5e-4, pretrain_eval_every=3, pretrain_patience=2,
                             pretrain_valid_texts=32, head_epochs=1, head_patience=1,
                             head_batch_size=32, head_max_length=64, head_lr=2e-4, workers=1)
    if budget_preset(config) == "gpu":  # not yet measured on a GPU: see README.md
        return StudentBudget(pretrain_steps=6000, pretrain_batch_size=64, pretrain_max_length=128,
                             pretrain_lr=5e-4, pretrain_eval_every=200, pretrain_patience=3,
                             pretrain_valid_texts=2048, head_epochs=10, head_patience=2,
                             head_batch_size=32, head_max_length=128, head_lr=2e-4)
    # CPU: the cap (2,000 steps, ~6.5 passes over the training texts, the learning rate decaying
    # to 0 over it) is set so that pretraining ends by its plateau rule: the random-initialised
    # MLM-only twin, which needs the teacher for nothing, stopped by the rule at step 1,500 with
    # cap and schedule at 6,000; under this cap the four students and twins stopped at 1,200-1,500.
    return StudentBudget(pretrain_steps=2000, pretrain_batch_size=32, pretrain_max_length=128,
                         pretrain_lr=5e-4, pretrain_eval_every=100, pretrain_patience=3,
                         pretrain_valid_texts=512, head_epochs=5, head_patience=2,
                         head_batch_size=32, head_max_length=128, head_lr=2e-4)


@dataclass(frozen=True)
class DistillationBudget:
    """Chapter 4's runs: every student and its no-teacher twin get the same budget.

    Students are trained until their validation F1 stops improving (``patience`` epochs without
    one ``min_improvement`` better, at most ``epochs``), keeping the best epoch; every run shares
    the :meth:`schedule` built from these. The sweep (``alphas``, ``temperatures``, augmentation
    with ``n_per_text`` candidates per training text) runs on the fast ``cnn``; the slower
    ``bilstm`` and ``navec`` students try the CNN's best MSE and best KL recipe and each keeps
    the one that wins on its own validation F1. ``seeds`` are the training seeds of the main
    student/twin pairs (CNN and BiLSTM, each with its chosen recipe). Texts are cut where the
    book's rule (:func:`helpers.encoding.max_length_for`) says, at most ``length_cap`` tokens: a
    cap on the cost of the runs.
    The BiLSTM over navec's word vectors (:mod:`helpers.word_vectors`) is ``navec``, keeps
    navec's ``navec_extra_words`` most frequent words with the training words, and is trained
    with its vectors frozen for each of ``navec_frozen_epochs`` first epochs (0: fine-tuned
    throughout), the choice made on validation F1. The seeds' runs train ``workers`` at a time
    (``None``: :func:`helpers.parallel.parallel_workers` decides; 1 in small-data mode).
    """

    cnn: NetworkSpec
    bilstm: NetworkSpec
    epochs: int
    patience: int
    min_improvement: float
    batch_size: int
    lr: float
    length_cap: int
    alphas: tuple[float, ...]
    temperatures: tuple[float, ...]
    n_per_text: int
    seeds: tuple[int, ...]
    navec: NetworkSpec
    navec_extra_words: int
    navec_frozen_epochs: tuple[int, ...]
    workers: int | None = None

    def schedule(self, tokenizer: Any, train_texts: Sequence[str],
                 seed: int = SEED) -> TrainSettings:
        """The schedule every chapter-4 run trains with, for the chapter's (BPE) ``tokenizer``
        and training texts: its maximum length is :func:`helpers.encoding.max_length_for` them,
        at most ``length_cap``. The navec BiLSTM shares it, so that every run cuts the same
        texts."""
        from .encoding import max_length_for
        from .settings import TrainSettings

        return TrainSettings(
            epochs=self.epochs, patience=self.patience, min_improvement=self.min_improvement,
            batch_size=self.batch_size, lr=self.lr, seed=seed,
            max_length=max_length_for(tokenizer, train_texts, cap=self.length_cap))


def distillation_budget(config: BookConfig) -> DistillationBudget:
    """Chapter 4's budget: seconds in small-data mode; 72 minutes for the chapter on a 2-core CPU,
    half of them the main pairs' extra seeds (README.md says why the CPU preset keeps them).

    Measured on the full data, one thread: an epoch of the CNN student costs about 10 CPU
    seconds, of the BiLSTM with 128 units each way about 35, of the article's BiLSTM (300/256)
    about 125; the CNN's validation F1 reaches its plateau within about 10-20 epochs. Batches of
    64: larger ones are not faster per text for these models on a CPU and take fewer steps.
    Patience 5: validation F1 at a 0.5 threshold swings by several points between epochs (up to
    0.15 for the CNN early on), so three epochs without a better one stopped runs inside the noise.
    The cap (25 epochs) is there for runs that never settle; with a cap of 15, two CNN runs were
    still improving when it stopped them. Only a gain of half a point (``min_improvement``
    0.005) restarts the patience count: measured, a distilled navec BiLSTM otherwise crept on by
    0.1-0.3 points an epoch from its 4th epoch to its 13th, and a third of the chapter's time went
    into that. Five seeds for the main pairs (the CNN's and the BiLSTM's twin and student, their
    extra seeds trained in parallel processes of one thread each,
    :func:`helpers.distill.train_runs`): the fewest that give a t-interval of the per-seed
    differences a useful width (three in small-data mode, never fewer). ``length_cap`` bounds
    the cost of a batch: measured, the 95th percentile of the BPE lengths (chapter 2's length) is
    169 tokens on the full data and 130 in small-data mode, so the caps of 128 (CPU) and 64
    (small) are what cut chapter 4's texts; the GPU preset's 256 leaves chapter 2's length.
    """
    from .settings import NetworkSpec

    if config.small:
        return DistillationBudget(
            cnn=NetworkSpec("cnn", {"embedding_dim": 32, "num_filters": 16}),
            bilstm=NetworkSpec("bilstm", {"embedding_dim": 32, "hidden_size": 32}),
            epochs=2, patience=2, min_improvement=0.005, batch_size=64, lr=2e-3, length_cap=64,
            alphas=(0.0, 0.5), temperatures=(2.0,), n_per_text=1, seeds=(SEED, 1, 2),
            navec=NetworkSpec("bilstm", {"embedding_dim": 300, "hidden_size": 32}),
            navec_extra_words=1000, navec_frozen_epochs=(1, 0), workers=1)
    if budget_preset(config) == "gpu":  # the article's BiLSTM, a finer sweep, 10 texts per text
        return DistillationBudget(
            cnn=NetworkSpec("cnn", {"embedding_dim": 128, "num_filters": 128}),
            bilstm=NetworkSpec("bilstm", {"embedding_dim": 300, "hidden_size": 256}),
            epochs=30, patience=5, min_improvement=0.005, batch_size=64, lr=2e-3, length_cap=256,
            alphas=(0.0, 0.25, 0.5, 0.75), temperatures=(1.0, 2.0, 4.0), n_per_text=10,
            seeds=(SEED, 1, 2, 3, 4),
            navec=NetworkSpec("bilstm", {"embedding_dim": 300, "hidden_size": 256}),
            navec_extra_words=50_000, navec_frozen_epochs=(1, 0))
    return DistillationBudget(
        cnn=NetworkSpec("cnn", {"embedding_dim": 128, "num_filters": 128}),
        bilstm=NetworkSpec("bilstm", {"embedding_dim": 128, "hidden_size": 128}),
        epochs=25, patience=5, min_improvement=0.005, batch_size=64, lr=2e-3, length_cap=128,
        alphas=(0.0, 0.5), temperatures=(2.0,), n_per_text=1, seeds=(SEED, 1, 2, 3, 4),
        # navec's BiLSTM: ~25 s an epoch (2 cores), its validation F1 peaks within 2-3 epochs.
        navec=NetworkSpec("bilstm", {"embedding_dim": 300, "hidden_size": 128}),
        navec_extra_words=25_000, navec_frozen_epochs=(1, 0))


def _listed(values: Sequence[float]) -> str:
    return ", ".join(f"{value:g}" for value in values)


def _preset_settings(config: BookConfig) -> list[tuple[str, str]]:
    """``(setting, value)`` for each setting in which the presets differ, and for the seeds,
    which they share, under ``config``."""
    distilling, students = distillation_budget(config), student_budget(config)
    bilstm = distilling.bilstm.size
    return [
        ("2: BiLSTM epoch cap", str(bilstm_epochs(config))),
        ("3: teacher epoch cap", str(teacher_epochs(config))),
        ("3: folds of the cross-fitted logits", str(crossfit_folds(config))),
        ("4: BiLSTM embedding / units each way",
         f"{bilstm['embedding_dim']} / {bilstm['hidden_size']}"),
        ("4: navec BiLSTM units each way", str(distilling.navec.size["hidden_size"])),
        ("4: epoch cap / patience", f"{distilling.epochs} / {distilling.patience}"),
        ("4: longest text (BPE tokens)", str(distilling.length_cap)),
        ("4: alphas swept on the CNN", _listed(distilling.alphas)),
        ("4: temperatures swept on the CNN", _listed(distilling.temperatures)),
        ("4: augmented texts per training text", str(distilling.n_per_text)),
        ("4: seeds of the main pairs", str(len(distilling.seeds))),
        ("5: pretraining step cap / batch",
         f"{students.pretrain_steps:,} / {students.pretrain_batch_size}"),
        ("5: validation MLM texts / every N steps",
         f"{students.pretrain_valid_texts:,} / {students.pretrain_eval_every}"),
        ("5: head epoch cap", str(students.head_epochs)),
        ("5: head seeds", str(len(students.head_seeds))),
    ]


def preset_rows(cpu: BookConfig, gpu: BookConfig) -> list[tuple[str, str, str]]:
    """The settings that differ between the presets (and the seeds), one ``(setting, cpu, gpu)``
    row each, read from the budgets above for two full-data configurations (README.md shows
    this table)."""
    return [(name, on_cpu, on_gpu) for (name, on_cpu), (_, on_gpu) in
            zip(_preset_settings(cpu), _preset_settings(gpu), strict=True)]


def preset_table(cpu: BookConfig, gpu: BookConfig) -> str:
    """:func:`preset_rows` as a Markdown table (chapter: setting | CPU preset | GPU preset)."""
    lines = ["| chapter: setting | CPU preset | GPU preset |", "|---|---|---|"]
    lines += [f"| {name} | {on_cpu} | {on_gpu} |" for name, on_cpu, on_gpu in
              preset_rows(cpu, gpu)]
    return "\n".join(lines)
