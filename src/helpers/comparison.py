"""What chapter 6 computes: every model measured the same way, and what each one buys.

:func:`compare_models` loads every recorded model (:func:`helpers.classifiers.load_classifier`),
keeps its recorded test scores and measures its size, CPU latency for one text and throughput at
batch 64 (:mod:`helpers.benchmark`). :func:`tradeoffs` and :func:`step_gains` turn the table into
"what does each model or step buy, per millisecond and per megabyte"; :func:`comparison_steps`
names the steps of the book's chain that the table can show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from . import chapters
from .benchmark import measure_speed
from .classifiers import load_classifier
from .config import BookConfig, get_config
from .evaluation import evaluate
from .results import field_value, load_results, update_row

THREADS = 1
BATCH_SIZE = 64
# The columns the comparison shows, in order; the others of the results file are left out.
TABLE_COLUMNS = ["chapter", "kind", "f1", "macro_f1", "average_precision", "valid_f1", "params",
                 "size_mb", "latency_ms", "latency_p90_ms", "texts_per_s", "teacher", "standin"]
# The comparison shown as two tables that each fit the page's column: what a model scores, and
# what it costs to serve (columns a table lacks are skipped).
QUALITY_COLUMNS = ["chapter", "f1", "macro_f1", "average_precision", "valid_f1", "f1_reloaded"]
COST_COLUMNS = ["variant", "kind", "params", "size_mb", "latency_ms", "latency_p90_ms",
                "texts_per_s"]


def missing_chapters(results: pd.DataFrame) -> list[chapters.Chapter]:
    """The chapters that train models (1-5) and have recorded no row in ``results`` yet."""
    present = set(results["chapter"].astype(str))
    return [chapter for chapter in chapters.TRAINING if chapter.number not in present]


def require_earlier_chapters(results: pd.DataFrame) -> None:
    """Stop chapter 6 at its first cell, with one sentence, if a chapter 1-5 has not run:
    it compares and deploys their saved models and trains none of them itself."""
    chapters.require_run(missing_chapters(results), by=chapters.COMPARISON)


def distilled_students(results: pd.DataFrame) -> pd.DataFrame:
    """Chapter 5's BERT students trained with a teacher (not their no-teacher twins)."""
    is_student = ((results["chapter"] == chapters.DISTILL_TINY_BERT.number)
                  & (results["kind"] == "transformers")
                  & results["teacher"].notna())
    return results[is_student]


def chosen_student(results: pd.DataFrame) -> str | None:
    """The model chapter 6 serves: the distilled BERT of chapter 5 with the best validation F1
    (never chosen on test), else chapter 2's BiLSTM when chapter 5 has not run; ``None`` if
    neither is in ``results``."""
    students = distilled_students(results)
    if len(students):
        return str(students.sort_values("valid_f1")["model"].iloc[-1])
    return "BiLSTM" if (results["model"] == "BiLSTM").any() else None


def compare_models(
    config: BookConfig | None = None,
    results: pd.DataFrame | None = None,
    latency_texts: Sequence[str] = (),
    throughput_texts: Sequence[str] = (),
    threads: int = THREADS,
    batch_size: int = BATCH_SIZE,
    test: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per model of ``results`` (default: the results file): scores and measured costs.

    Scores (``f1``, ``macro_f1``, ``average_precision``) are the recorded test figures. Each model
    is loaded with :func:`helpers.classifiers.load_classifier`; ``params`` and ``size_mb`` (the
    saved artifact: model plus tokenizer or vectorizer) come from it, and
    :func:`helpers.benchmark.measure_speed` measures latency (batch 1, median over
    ``latency_texts``, warm-up excluded) and throughput (``batch_size``, over
    ``throughput_texts``) with ``threads`` PyTorch threads. With ``test`` (a split frame), each
    model is also re-scored on it as ``f1_reloaded``: equal to ``f1`` when the saved model and its
    preprocessing are those that were recorded, and its test probabilities are kept in
    ``table.attrs["test_proba"]``. Rows that cannot be loaded are left out and listed in
    ``table.attrs["skipped"]`` with the reason.
    """
    config = config or get_config()
    results = load_results(config) if results is None else results
    if not len(latency_texts) or not len(throughput_texts):
        raise ValueError("compare_models needs latency_texts and throughput_texts")
    rows, skipped, probas = [], {}, {}
    for _, row in results.iterrows():
        try:
            classifier = load_classifier(config, row)
        except (ValueError, FileNotFoundError) as error:
            skipped[row["model"]] = str(error)
            continue
        measured = {"model": row["model"], "chapter": row["chapter"], "kind": row.get("kind"),
                    **{k: row.get(k) for k in ("f1", "macro_f1", "average_precision",
                                               "valid_f1")},
                    "params": int(classifier.params), "size_mb": classifier.size_mb,
                    **measure_speed(classifier.predict_proba, latency_texts, throughput_texts,
                                    threads=threads, batch_size=batch_size),
                    "teacher": field_value(row, "teacher"),
                    "standin": bool(field_value(row, "standin", False))}
        if test is not None:  # scores do not depend on threads: computed with all cores
            proba = classifier.predict_proba(test["text"].tolist())
            measured["f1_reloaded"] = evaluate(test["label"], proba)["f1"]
            probas[row["model"]] = proba
        rows.append(measured)
    extra = ["f1_reloaded"] if test is not None else []
    table = pd.DataFrame(rows, columns=["model", *TABLE_COLUMNS, *extra]).set_index("model")
    table.attrs["skipped"] = skipped
    table.attrs["threads"] = threads
    table.attrs["test_proba"] = probas  # for intervals (helpers.uncertainty)
    return table


def quality_table(table: pd.DataFrame) -> pd.DataFrame:
    """The scores of :func:`compare_models`'s table (or :func:`with_deployments`'s), best
    validation F1 first: :data:`QUALITY_COLUMNS` that it has."""
    columns = [c for c in QUALITY_COLUMNS if c in table.columns]
    return table[columns].sort_values("valid_f1", ascending=False, na_position="last")


def cost_table(table: pd.DataFrame) -> pd.DataFrame:
    """The costs of the same table (size, latency, throughput), fastest first:
    :data:`COST_COLUMNS` that it has."""
    columns = [c for c in COST_COLUMNS if c in table.columns]
    return table[columns].sort_values("latency_ms")


def record_speed(config: BookConfig, table: pd.DataFrame) -> None:
    """Write each model's measured size, latency and throughput back into its results row."""
    for model, row in table.iterrows():
        update_row(config, str(model), size_mb=round(float(row["size_mb"]), 3),
                   latency_ms=round(float(row["latency_ms"]), 3),
                   texts_per_s=round(float(row["texts_per_s"]), 1),
                   benchmark_threads=int(table.attrs.get("threads", THREADS)))


# Changes smaller than these are noise (timing jitter, a few bytes of saved metadata), not a price:
# a ratio over them is left empty rather than printed as a huge number.
MIN_LATENCY_CHANGE_MS = 0.1
MIN_SIZE_CHANGE_MB = 0.01


def _per(gain: pd.Series | float, change: pd.Series | float, floor: float):
    """``gain / change`` where ``|change|`` reaches ``floor``, else NaN (series or scalars)."""
    if isinstance(change, pd.Series):
        return (gain / change).where(change.abs() >= floor)
    return gain / change if abs(change) >= floor else np.nan


def tradeoffs(table: pd.DataFrame, reference: str | None = None,
              quality: str = "valid_f1") -> pd.DataFrame:
    """What every model buys over ``reference``, judged on ``quality``: the table to choose from.

    A choice is made on the validation split (``quality="valid_f1"``, the default); the test F1
    is shown beside it, never used to choose. ``reference`` (default: the fastest model) is the
    cheapest honest option; ``dF1 per extra ms`` is the quality a model gains over it per
    millisecond of latency it adds (likewise per MB). A model is ``pareto`` when no other is at
    least as good in ``quality`` and at least as fast, and better in one (``pareto (size)``: at
    least as small). Rows without ``quality`` (recorded before it was) are left out and listed
    in ``attrs["unjudged"]``.
    """
    missing = list(table.index[table[quality].isna()]) if quality in table else list(table.index)
    table = table.drop(index=missing)
    if table.empty:
        return pd.DataFrame()
    reference = reference if reference in table.index else table["latency_ms"].idxmin()
    ref = table.loc[reference]
    q = table[quality].astype(float)
    out = pd.DataFrame({
        quality: q, "f1 (test)": table["f1"], "latency_ms": table["latency_ms"],
        "size_mb": table["size_mb"], f"d{quality} vs " + str(reference): q - ref[quality],
    })
    extra_ms = table["latency_ms"] - ref["latency_ms"]
    extra_mb = table["size_mb"] - ref["size_mb"]
    gain = q - ref[quality]
    out["per extra ms"] = _per(gain, extra_ms, MIN_LATENCY_CHANGE_MS).where(extra_ms > 0)
    out["per extra MB"] = _per(gain, extra_mb, MIN_SIZE_CHANGE_MB).where(extra_mb > 0)
    out["pareto"] = pareto_front(q, table["latency_ms"])
    out["pareto (size)"] = pareto_front(q, table["size_mb"])
    out = out.sort_values("latency_ms")
    out.attrs["unjudged"] = missing  # rows recorded without a validation score: not chosen from
    return out


def pareto_front(quality: pd.Series, cost: pd.Series) -> np.ndarray:
    """Whether each model is on the Pareto front: no other is at least as good in ``quality`` and
    at least as cheap in ``cost``, and strictly better in one of them."""
    q, c = quality.to_numpy(dtype=float), cost.to_numpy(dtype=float)
    return np.array([not np.any((q >= q[i]) & (c <= c[i]) & ((q > q[i]) | (c < c[i])))
                     for i in range(len(q))], dtype=bool)


PYTORCH = "PyTorch eager"
SKLEARN = "scikit-learn"


def with_deployments(table: pd.DataFrame, deployed: pd.DataFrame) -> pd.DataFrame:
    """The comparison table of :func:`compare_models` and the ONNX rows of
    :func:`helpers.deployment.deploy_models` as one table, with a ``variant`` column (how the
    model is served: :data:`PYTORCH`, :data:`SKLEARN`, ``ONNX fp32``, ``ONNX int8``)."""
    table = table.copy()
    table.insert(0, "variant", np.where(table["kind"] == "sklearn", SKLEARN, PYTORCH))
    if deployed.empty:
        return table
    combined = pd.concat([table, deployed[[c for c in table.columns if c in deployed.columns]]])
    combined.attrs = dict(table.attrs)
    return combined


def step_gains(table: pd.DataFrame, steps: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """What each step of the chain bought: F1, latency and size of ``after`` minus ``before``.

    ``steps`` maps a step's label to ``(before, after)`` model names; steps whose models are not
    in ``table`` are left out. ``dF1 per ms`` and ``dF1 per MB`` divide the F1 change by the
    latency and size change (a compression step has negative changes: F1 lost per ms saved);
    they are empty where the change is below :data:`MIN_LATENCY_CHANGE_MS` or
    :data:`MIN_SIZE_CHANGE_MB` (two models of the same architecture differ by noise only).
    """
    rows = {}
    for label, (before, after) in steps.items():
        if before not in table.index or after not in table.index:
            continue
        b, a = table.loc[before], table.loc[after]
        d_f1, d_ms, d_mb = a["f1"] - b["f1"], a["latency_ms"] - b["latency_ms"], \
            a["size_mb"] - b["size_mb"]
        # Four decimals (0.1 microsecond, 100 bytes) is all a measurement holds; + 0.0 turns a
        # rounded -0.0 (two files a few bytes apart) into 0.0.
        rows[label] = {"from": before, "to": after, "dF1": d_f1,
                       "d latency ms": round(d_ms, 4) + 0.0, "d size MB": round(d_mb, 4) + 0.0,
                       "dF1 per ms": _per(d_f1, d_ms, MIN_LATENCY_CHANGE_MS),
                       "dF1 per MB": _per(d_f1, d_mb, MIN_SIZE_CHANGE_MB)}
    columns = ["from", "to", "dF1", "d latency ms", "d size MB", "dF1 per ms", "dF1 per MB"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


# The page's column is about 690 px wide: a figure PLOT_SIZE[0] inches wide is shown at that
# width, where text of PLOT_FONT points is as tall as the body's 16 px (13 * 690 / (72 * 7.5)).
PLOT_SIZE = (7.5, 12.0)
PLOT_FONT = 13
MARKERS = {SKLEARN: "D", PYTORCH: "o", "ONNX fp32": "s", "ONNX int8": "^"}


def plot_tradeoffs(table: pd.DataFrame, axes=None, score: str = "valid_f1",
                   below_best: float = 0.3, listed: int = 8):
    """F1 (toxic) against latency and against size on disk (log scales), one point per model.

    ``score``: the F1 column plotted and ranked, the validation F1 by default, since the front
    is what a reader chooses from and every choice in the book is made on validation
    (``"f1"``: the test F1).

    The marker says how the model is served (``variant``); hollow points depend on a stand-in
    teacher. Only the models on each panel's Pareto front (:func:`pareto_front`, among the models
    drawn, joined by a dashed staircase) are labelled, by a number at the point and its name in a
    list under the panel, so that labels cannot pile up; every model is in the table. Models
    scoring more than ``below_best`` under the best one are not drawn, so that they do not squash
    the others into a thin band: the first ``listed`` of them are named under the left panel,
    with how many more there are.
    """
    if axes is None:  # one panel above the other, at a width the page shows unscaled
        _, axes = plt.subplots(2, 1, figsize=PLOT_SIZE)
    floor = table[score].max() - below_best
    low = table[table[score] < floor].sort_values(score, ascending=False)
    table = table[table[score] >= floor]
    variants = table["variant"] if "variant" in table else pd.Series(PYTORCH, table.index)
    first_names = None
    for ax, column, label in ((axes[0], "latency_ms", "CPU latency, 1 text (ms, log scale)"),
                              (axes[1], "size_mb", "size on disk (MB, log scale)")):
        for i, (variant, marker) in enumerate(MARKERS.items()):
            rows = table[variants == variant]
            if rows.empty:
                continue
            standin = rows["standin"].fillna(False).astype(bool).to_numpy()
            ax.scatter(rows[column], rows[score], s=60, marker=marker, label=variant,
                       facecolors=["none" if s else f"C{i}" for s in standin],
                       edgecolors=f"C{i}")
        front = table[pareto_front(table[score], table[column])].sort_values(column)
        ax.step(front[column], front[score], where="post", color="grey", linestyle="--",
                linewidth=1, label="Pareto front")
        # Numbers at the points, names in a list under the panel: no two labels can overlap.
        for k, (_, row) in enumerate(front.iterrows(), start=1):
            ax.annotate(str(k), (row[column], row[score]), fontsize=PLOT_FONT, fontweight="bold",
                        xytext=(4, 4 + 8 * (k % 2)), textcoords="offset points")
        names_under = ax.text(0, -0.2, "Pareto front:\n" + "\n".join(
                f"{k}. {model}" for k, model in enumerate(front.index, start=1)),
                transform=ax.transAxes, va="top", fontsize=PLOT_FONT)
        ax.set_xscale("log")
        # Plain numbers at 1, 3, 10, 30...: matplotlib's default labels the minor ticks of a
        # short log axis as 2x10^0, 3x10^0..., which run into each other.
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label, fontsize=PLOT_FONT)
        ax.set_ylabel("F1 (toxic), " + ("validation" if score == "valid_f1" else "test"),
                      fontsize=PLOT_FONT)
        ax.tick_params(labelsize=PLOT_FONT)
        ax.grid(alpha=0.3)
        first_names = first_names if ax is not axes[0] else names_under
    if len(low):
        names = [f"{model} ({value:.2f})" for model, value in low[score].head(listed).items()]
        if len(low) > listed:
            names.append(f"... and {len(low) - listed} more, all in the table")
        # Under the first panel's list of names (anchored to it, so the two cannot overlap).
        axes[0].annotate(f"Not drawn (F1 below {floor:.2f}):\n" + "\n".join(names), xy=(0, 0),
                         xycoords=first_names, xytext=(0, -10), textcoords="offset points",
                         va="top", fontsize=PLOT_FONT)
    axes[0].legend(fontsize=PLOT_FONT, loc="best")
    return axes


def comparison_steps(table: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The steps of the book's chain, as ``label -> (before, after)`` models of ``table``.

    Classical -> BiLSTM; each distilled student of chapter 4 against the no-teacher twin of the
    same network (rows named "<network> ...", the twin has no teacher: a chapter-4 row, or
    chapter 2's navec BiLSTM, trained on chapter 4's budget); BiLSTM -> teacher;
    teacher -> each BERT student (chapters 5 and 6's [CLS] models). Only steps whose two models
    are both in ``table`` are returned.
    """
    def rows_of(chapter: chapters.Chapter) -> list[str]:
        return [str(m) for m, c in table["chapter"].astype(str).items() if c == chapter.number]

    steps = {"classical → BiLSTM": ("char_ngram_logreg", "BiLSTM")}
    # Chapter 4's students against the twin of their own network (same name up to the recipe).
    twins = [m for m in rows_of(chapters.DISTILL_SMALL) + rows_of(chapters.BILSTM)
             if pd.isna(table.loc[m, "teacher"])]
    def network(name: str) -> str:  # "CNN (MSE, a=0.5)" and "CNN, no teacher" -> "CNN"
        return re.match(r"[^,(]*", name).group().strip()

    for student in rows_of(chapters.DISTILL_SMALL):
        if student not in twins:
            twin = next((t for t in twins if network(t) == network(student)), None)
            if twin is not None:
                steps[f"{twin} → {student}"] = (twin, student)
    for teacher in rows_of(chapters.TEACHER):
        steps[f"BiLSTM → {teacher}"] = ("BiLSTM", teacher)
        for student in rows_of(chapters.DISTILL_TINY_BERT) + rows_of(chapters.COMPARISON):
            steps[f"{teacher} → {student}"] = (teacher, student)
    return {label: pair for label, pair in steps.items() if set(pair) <= set(table.index)}
