"""BERT -> small-student distillation runs (chapter 4): train, choose on validation, tabulate.

Every student is a network over BPE tokens (:mod:`helpers.token_models`: a CNN or the article's
BiLSTM) trained by :func:`helpers.token_models.train_token_model` with a distillation loss of
:mod:`helpers.losses` on the teacher's cached logits, so the teacher never runs inside the
student's training loop; its no-teacher twin is the same network trained on the labels alone.
Choices between runs (alpha, temperature, the recipe of each student) are made on validation F1
only (:func:`best_by_validation`, :func:`train_recipes` and :func:`chosen_recipe`).
:func:`train_runs` trains several independent runs (a pair over seeds) in parallel processes of
one thread each on a CPU (:mod:`helpers.parallel`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tokenizers import Tokenizer

from .benchmark import count_parameters, size_on_disk_mb
from .budgets import DistillationBudget
from .config import BookConfig
from .data import Splits
from .losses import LossFn, Recipe, cross_entropy_loss
from .parallel import run_parallel, workers_for
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


def train_recipes(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    recipes: Sequence[Recipe],
    teacher_logits: np.ndarray,
    *,
    name: str,
    label: str,
    schedule: TrainSettings,
    network: NetworkSpec,
    embedding_init: np.ndarray | None = None,
    frozen_embedding_epochs: int = 0,
    workers: int | None = None,
) -> dict[Recipe, StudentRun]:
    """The same student trained once per recipe (saved as ``<name>_<recipe.slug>``, labelled
    ``"<label>, <recipe.label>"``), the runs in parallel (:func:`train_runs`); pick with
    :func:`chosen_recipe`."""
    if len(set(recipes)) != len(recipes):
        raise ValueError(f"recipes repeat one another: {[r.label for r in recipes]}")
    specs = [RunSpec(f"{name}_{recipe.slug}", f"{label}, {recipe.label}", schedule, network,
                     recipe) for recipe in recipes]
    runs = train_runs(config, splits, tokenizer, specs, teacher_logits,
                      embedding_init=embedding_init,
                      frozen_embedding_epochs=frozen_embedding_epochs, workers=workers)
    return dict(zip(recipes, runs, strict=True))


def chosen_recipe(runs: Mapping[Recipe, StudentRun]) -> Recipe:
    """The recipe whose run has the best validation F1 (the first on ties): each student keeps
    the recipe that wins for it, whichever won for another student."""
    best = best_by_validation(list(runs.values()))
    return next(recipe for recipe, run in runs.items() if run is best)


@dataclass(frozen=True)
class RunSpec:
    """One run for :func:`train_runs`: a student with ``recipe`` (``None``: its no-teacher twin,
    cross-entropy on the labels alone), saved as ``name``."""

    name: str
    label: str
    schedule: TrainSettings
    network: NetworkSpec
    recipe: Recipe | None = None


def _train_spec(config: BookConfig, splits: Splits, tokenizer: Tokenizer,
                teacher_logits: np.ndarray | None, spec: RunSpec,
                embedding_init: np.ndarray | None, frozen_embedding_epochs: int) -> StudentRun:
    twin = spec.recipe is None
    return train_token_student(
        config, splits, tokenizer, cross_entropy_loss if twin else spec.recipe.loss_fn(),
        None if twin else teacher_logits, name=spec.name, label=spec.label,
        schedule=spec.schedule, network=spec.network, embedding_init=embedding_init,
        frozen_embedding_epochs=frozen_embedding_epochs)


def train_runs(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    specs: Sequence[RunSpec],
    teacher_logits: np.ndarray | None = None,
    *,
    embedding_init: np.ndarray | None = None,
    frozen_embedding_epochs: int = 0,
    workers: int | None = None,
) -> list[StudentRun]:
    """Train independent runs (e.g. a twin and its student over several seeds), in the order of
    ``specs``, each exactly as :func:`train_token_student` would (with the same
    ``embedding_init`` and ``frozen_embedding_epochs`` for all), in parallel worker processes of
    one thread each on a CPU (:func:`helpers.parallel.run_parallel`; ``workers`` overrides
    :func:`helpers.parallel.parallel_workers`)."""
    if len({spec.name for spec in specs}) != len(specs):
        raise ValueError("every run needs its own name (each is saved under it)")
    if any(spec.recipe is not None for spec in specs) and teacher_logits is None:
        raise ValueError("a run with a recipe needs the teacher's logits of the training texts")
    return run_parallel(_train_spec, [(config, splits, tokenizer, teacher_logits, spec,
                                       embedding_init, frozen_embedding_epochs)
                                      for spec in specs], workers=workers)


def runs_table(runs: Sequence[StudentRun]) -> pd.DataFrame:
    """Validation and test figures, epochs and optimizer steps run, size and training time of
    each run, one row per run."""
    rows = {
        run.label: {
            "valid F1": run.valid_f1, "test F1": run.test["f1"],
            "test AP": run.test["average_precision"], "test macro F1": run.test["macro_f1"],
            "kept epoch": run.history.best_epoch, "epochs run": len(run.history.epochs),
            "steps run": run.history.steps_run, "train rows": run.train_rows,
            "params": run.params, "MB": run.size_mb, "train s": run.seconds,
        }
        for run in runs
    }
    return pd.DataFrame(rows).T.astype({"kept epoch": int, "epochs run": int, "steps run": int,
                                        "train rows": int, "params": int}).round(4)


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


@dataclass(frozen=True)
class Pair:
    """A no-teacher twin and its student (trained with ``recipe``), both already trained on the
    chapter's schedule; :func:`repeat_pairs` trains them again with other seeds."""

    name: str
    network: NetworkSpec
    recipe: Recipe
    twin: StudentRun
    student: StudentRun


@dataclass
class SeedRepeats:
    """Test F1 of each pair's twin and student per training seed (``scores[pair][side][seed]``,
    side ``"twin"`` or ``"student"``), the extra runs, their wall time and how many ran at once."""

    scores: dict[str, dict[str, dict[int, float]]]
    runs: list[StudentRun]
    seconds: float
    workers: int

    def table(self) -> pd.DataFrame:
        """One row per seed: each pair's twin and student test F1 and their difference."""
        columns = {}
        for pair, sides in self.scores.items():
            columns[f"{pair} twin"] = sides["twin"]
            columns[f"{pair} student"] = sides["student"]
            columns[f"{pair} student - twin"] = {
                seed: sides["student"][seed] - sides["twin"][seed] for seed in sides["twin"]}
        return pd.DataFrame(columns).rename_axis("seed").round(4)

    def differences(self) -> pd.DataFrame:
        """Per pair: mean student - twin over the seeds, its 95% t-interval and sd
        (:func:`helpers.uncertainty.seed_differences_table`)."""
        from .uncertainty import seed_differences_table

        return seed_differences_table({f"{pair}: twin → student": (s["twin"], s["student"])
                                       for pair, s in self.scores.items()})


def repeat_pairs(
    config: BookConfig,
    splits: Splits,
    tokenizer: Tokenizer,
    teacher_logits: np.ndarray,
    pairs: Sequence[Pair],
    schedule: TrainSettings,
    seeds: Sequence[int],
    *,
    workers: int | None = None,
) -> SeedRepeats:
    """Each pair's twin and student trained again with every seed of ``seeds`` other than
    ``schedule.seed`` (the given runs are that seed's), all in parallel (:func:`train_runs`);
    the runs are saved as ``<pair>_twin_seed<seed>`` and ``<pair>_<recipe.slug>_seed<seed>``."""
    if schedule.seed not in seeds:
        raise ValueError(f"seeds {list(seeds)} must include the schedule's seed {schedule.seed}, "
                         "whose runs are the pairs given")
    extra = [seed for seed in seeds if seed != schedule.seed]
    specs = []
    for pair in pairs:
        slug = pair.name.lower().replace(" ", "_")
        for seed in extra:
            seeded = replace(schedule, seed=seed)
            specs.append(RunSpec(f"{slug}_twin_seed{seed}", f"{pair.name} twin, seed {seed}",
                                 seeded, pair.network))
            specs.append(RunSpec(f"{slug}_{pair.recipe.slug}_seed{seed}",
                                 f"{pair.name} student, seed {seed}", seeded, pair.network,
                                 pair.recipe))
    workers = workers_for(len(specs), workers)  # what run_parallel will use, for the record
    start = time.perf_counter()
    runs = train_runs(config, splits, tokenizer, specs, teacher_logits, workers=workers)
    scores = {}
    for i, pair in enumerate(pairs):
        mine = runs[2 * len(extra) * i: 2 * len(extra) * (i + 1)]
        scores[pair.name] = {
            "twin": {schedule.seed: pair.twin.test["f1"],
                     **{seed: run.test["f1"] for seed, run in zip(extra, mine[::2], strict=True)}},
            "student": {schedule.seed: pair.student.test["f1"],
                        **{seed: run.test["f1"] for seed, run in zip(extra, mine[1::2],
                                                                      strict=True)}},
        }
    return SeedRepeats(scores, runs, time.perf_counter() - start, workers)
