"""The whole chain on any CSV of texts and binary labels, and the comparison of what it produced.

:func:`run_chain` is the book in one call, for your own data: read, check, clean and split the CSV;
fit the character n-gram baseline; train a BiLSTM; fine-tune the teacher; distil the teacher into a
BiLSTM through its cached logits; then measure every model the same way and return the comparison
table. It only strings together the functions the chapters use.

:func:`compare_models` is that measurement, used by the last chapter for every row of the results
file: test scores as recorded, parameters and size on disk of the saved model, CPU latency for one
text and throughput at batch 64, all through :mod:`helpers.inference` and
:mod:`helpers.benchmark`. :func:`tradeoffs` and :func:`step_gains` turn the table into "what does
each model or step buy, per millisecond and per megabyte".
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .baselines import fit_evaluate_record, make_char_ngram_pipeline, tune_char_ngram_c
from .benchmark import measure_speed, torch_threads
from .config import DEFAULT_TEACHER, SEED, BookConfig, get_config
from .data import (
    LABEL_COLUMN,
    TEXT_COLUMN,
    Splits,
    clean_dataset,
    read_dataset,
    split_dataset,
    subsample_splits,
)
from .evaluation import evaluate
from .inference import load_classifier
from .results import load_results, record_result, size_on_disk_mb

STEPS = ("baseline", "bilstm", "teacher", "distill")
CHAPTER = "pipeline"
THREADS = 1
BATCH_SIZE = 64
# The columns the comparison shows, in order; the others of the results file are left out.
TABLE_COLUMNS = ["chapter", "kind", "f1", "macro_f1", "average_precision", "params", "size_mb",
                 "latency_ms", "latency_p90_ms", "texts_per_s", "standin"]


# --------------------------------------------------------------------------- data


def load_csv_splits(csv_path: str | Path, text_column: str = TEXT_COLUMN,
                    label_column: str = LABEL_COLUMN, small: bool = False,
                    seed: int = SEED) -> Splits:
    """Read, check, clean and split a CSV exactly as :func:`helpers.data.load_splits` does the
    book's dataset, with your own column names (subsampled when ``small``)."""
    frame, report = clean_dataset(read_dataset(Path(csv_path), text_column, label_column))
    print(f"{csv_path}: {report.rows_in} rows read, {report.rows_out} kept after cleaning")
    splits = split_dataset(frame, seed=seed)
    return subsample_splits(splits, seed=seed) if small else splits


# --------------------------------------------------------------------------- the results file


def update_row(config: BookConfig, model: str, **fields: Any) -> dict[str, Any]:
    """Add ``fields`` to the recorded row of ``model`` (keeping the rest) and return it."""
    results = load_results(config)
    match = results[results["model"] == model]
    if match.empty:
        raise KeyError(f"No row {model!r} in {config.results_path}")
    # Back to plain Python values: the frame holds numpy scalars, which json cannot write.
    row = {k: v.item() if isinstance(v, np.generic) else v
           for k, v in match.iloc[0].items() if not _missing(v)}
    row.update(fields)
    name, chapter = row.pop("model"), row.pop("chapter")
    return record_result(name, chapter, {}, config, **row)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def standin_notice(frame: pd.DataFrame) -> str:
    """:func:`helpers.teacher.standin_warning` when any row of ``frame`` depends on a stand-in
    teacher (its ``standin`` field is true), naming those rows; else ``""``."""
    from .teacher import STANDIN_ATTR, standin_warning

    if "standin" not in frame.columns:
        return ""
    flagged = frame["standin"].map(lambda v: bool(v) if not _missing(v) else False)
    if not flagged.any():
        return ""
    names = frame.index[flagged] if "model" not in frame.columns else frame["model"][flagged]
    # standin_warning reads the mark from a model's config; the rows carry it as a field.
    marker = types.SimpleNamespace(**{STANDIN_ATTR: True})
    return f"{standin_warning(marker)}\nRows that depend on it: {', '.join(map(str, names))}."


# --------------------------------------------------------------------------- measuring


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
    is loaded with :func:`helpers.inference.load_classifier`; ``params`` and ``size_mb`` (the
    saved artifact: model plus tokenizer or vectorizer) come from it, and
    :func:`helpers.benchmark.measure_speed` measures latency (batch 1, median over
    ``latency_texts``, warm-up excluded) and throughput (``batch_size``, over
    ``throughput_texts``) with ``threads`` PyTorch threads. With ``test`` (a split frame), each
    model is also re-scored on it as ``f1_reloaded``: equal to ``f1`` when the saved model and its
    preprocessing are those that were recorded. Rows that cannot be loaded are left out and listed
    in ``table.attrs["skipped"]`` with the reason.
    """
    config = config or get_config()
    results = load_results(config) if results is None else results
    if not len(latency_texts) or not len(throughput_texts):
        raise ValueError("compare_models needs latency_texts and throughput_texts")
    rows, skipped = [], {}
    for _, row in results.iterrows():
        try:
            classifier = load_classifier(config, row)
        except (ValueError, FileNotFoundError) as error:
            skipped[row["model"]] = str(error)
            continue
        measured = {"model": row["model"], "chapter": row["chapter"], "kind": row.get("kind"),
                    **{k: row.get(k) for k in ("f1", "macro_f1", "average_precision")},
                    "params": int(classifier.params), "size_mb": classifier.size_mb,
                    **measure_speed(classifier.predict_proba, latency_texts, throughput_texts,
                                    threads=threads, batch_size=batch_size),
                    "standin": bool(row.get("standin")) if not _missing(row.get("standin"))
                    else False}
        if test is not None:
            with torch_threads(threads):
                proba = classifier.predict_proba(test["text"].tolist())
            measured["f1_reloaded"] = evaluate(test["label"], proba)["f1"]
        rows.append(measured)
    extra = ["f1_reloaded"] if test is not None else []
    table = pd.DataFrame(rows, columns=["model", *TABLE_COLUMNS, *extra]).set_index("model")
    table.attrs["skipped"] = skipped
    table.attrs["threads"] = threads
    return table


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


def tradeoffs(table: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """F1 per millisecond and per MB of every model, and what it buys over ``reference``.

    ``reference`` (default: the fastest model) is the cheapest honest option; ``dF1 per extra ms``
    is the F1 a model gains over it per millisecond of latency it adds (likewise per MB). A model
    is ``pareto`` when no other is at least as good in F1 and at least as fast, and better in one.
    """
    if table.empty:
        return pd.DataFrame()
    reference = reference if reference in table.index else table["latency_ms"].idxmin()
    ref = table.loc[reference]
    out = pd.DataFrame({
        "f1": table["f1"], "latency_ms": table["latency_ms"], "size_mb": table["size_mb"],
        "F1 per ms": table["f1"] / table["latency_ms"],
        "F1 per MB": table["f1"] / table["size_mb"],
        "dF1 vs " + str(reference): table["f1"] - ref["f1"],
    })
    extra_ms = table["latency_ms"] - ref["latency_ms"]
    extra_mb = table["size_mb"] - ref["size_mb"]
    gain = table["f1"] - ref["f1"]
    out["dF1 per extra ms"] = _per(gain, extra_ms, MIN_LATENCY_CHANGE_MS).where(extra_ms > 0)
    out["dF1 per extra MB"] = _per(gain, extra_mb, MIN_SIZE_CHANGE_MB).where(extra_mb > 0)
    f1, ms = table["f1"].to_numpy(), table["latency_ms"].to_numpy()
    out["pareto"] = [not np.any((f1 >= f1[i]) & (ms <= ms[i]) & ((f1 > f1[i]) | (ms < ms[i])))
                     for i in range(len(table))]
    return out.sort_values("latency_ms")


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
        rows[label] = {"from": before, "to": after, "dF1": d_f1, "d latency ms": d_ms,
                       "d size MB": d_mb, "dF1 per ms": _per(d_f1, d_ms, MIN_LATENCY_CHANGE_MS),
                       "dF1 per MB": _per(d_f1, d_mb, MIN_SIZE_CHANGE_MB)}
    columns = ["from", "to", "dF1", "d latency ms", "d size MB", "dF1 per ms", "dF1 per MB"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


def plot_tradeoffs(table: pd.DataFrame, axes=None):
    """F1 (toxic) against latency (log scale) and against size on disk, one labelled point per
    model; hollow points depend on a stand-in teacher."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, column, label in ((axes[0], "latency_ms", "CPU latency, 1 text (ms, log scale)"),
                              (axes[1], "size_mb", "size on disk (MB, log scale)")):
        for model, row in table.iterrows():
            standin = bool(row.get("standin"))
            ax.scatter(row[column], row["f1"], s=40, facecolors="none" if standin else "C0",
                       edgecolors="C0")
            ax.annotate(str(model), (row[column], row["f1"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("F1 (toxic), test")
        ax.grid(alpha=0.3)
    return axes


def results_page(config: BookConfig | None = None) -> pd.DataFrame:
    """The results file as the book's results page shows it: one row per model, best F1 first."""
    results = load_results(config)
    columns = [c for c in ["model", "chapter", "f1", "macro_f1", "average_precision", "params",
                           "size_mb", "latency_ms", "texts_per_s", "train_seconds", "teacher",
                           "standin"] if c in results.columns]
    return (results[columns].sort_values("f1", ascending=False, na_position="last")
            .set_index("model").round(4))


# --------------------------------------------------------------------------- the chain


def run_chain(
    csv_path: str | Path,
    text_column: str = TEXT_COLUMN,
    label_column: str = LABEL_COLUMN,
    teacher: str = DEFAULT_TEACHER,
    out_dir: str | Path = ".",
    small: bool = False,
    steps: Sequence[str] = STEPS,
    *,
    distill_alpha: float = 0.5,
    teacher_epochs: int | None = None,
    bilstm_kwargs: Mapping[str, Any] | None = None,
    latency_texts: int | None = None,
    threads: int = THREADS,
) -> pd.DataFrame:
    """Run the book's chain on your own CSV and return the comparison table.

    ``csv_path`` holds one text column and one 0/1 label column (named by ``text_column`` and
    ``label_column``); ``teacher`` is a hub id or local folder of a BERT to fine-tune. Everything
    is written under ``out_dir/artifacts/{full,small}/`` (models, cached teacher logits,
    ``results.json``). ``steps`` is any subset of :data:`STEPS`, run in this order:

    ``baseline``
        character 1-5-gram TF-IDF + logistic regression, ``C`` chosen on the validation split;
    ``bilstm``
        a BPE tokenizer trained on the training split and a BiLSTM (cross-entropy);
    ``teacher``
        the teacher fine-tuned on the training split (``teacher_epochs``; default: the book's);
    ``distill``
        a BiLSTM trained on the teacher's cached logits (logit MSE + ``distill_alpha`` times
        cross-entropy, Tang et al. 2019); fine-tunes the teacher first if ``teacher`` was not run.

    ``small`` subsamples the splits (a few hundred rows) and shortens training, to try the chain
    in seconds; ``bilstm_kwargs`` go to :class:`helpers.models.BiLSTMClassifier` (e.g. a smaller
    ``hidden_size``). The returned table (:func:`compare_models`) has one row per model of this
    run, with the test scores, parameters, size on disk, CPU latency over ``latency_texts`` test
    texts (default 20 when ``small``, else 200) and throughput over the test split, measured with
    ``threads`` threads. If the teacher is a stand-in, its rows say so (``standin``).
    """
    from .distill import article_loss_fn, record_student, train_student
    from .models import bilstm_folder, default_epochs, train_bilstm
    from .teacher import (
        finetune_teacher,
        get_teacher,
        teacher_dir,
        teacher_fields,
        teacher_logits_for_splits,
    )
    from .tokenization import choose_max_length, get_bpe_tokenizer, token_lengths
    from .training import logits_to_proba

    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"Unknown step(s) {sorted(unknown)}; choose from {STEPS}")
    config = BookConfig(data=Path(csv_path), teacher=teacher, small=small, root=Path(out_dir))
    splits = load_csv_splits(csv_path, text_column, label_column, small)
    train_texts, test = splits.train["text"].tolist(), splits.test
    bilstm_kwargs = dict(bilstm_kwargs or {})
    models: list[str] = []

    if "baseline" in steps:
        best_c, _ = tune_char_ngram_c(train_texts, splits.train["label"],
                                      splits.valid["text"], splits.valid["label"])
        run = fit_evaluate_record("char_ngram_logreg", make_char_ngram_pipeline(C=best_c),
                                  train_texts, splits.train["label"], test["text"],
                                  test["label"], config, chapter=CHAPTER)
        update_row(config, run.name, kind="sklearn", preprocess="raw",
                   artifact=run.path.relative_to(config.artifacts_dir).as_posix(), C=best_c)
        models.append(run.name)

    if "bilstm" in steps or "distill" in steps:
        tokenizer = get_bpe_tokenizer(config, train_texts)
        max_length = choose_max_length(token_lengths(tokenizer, train_texts))

    if "bilstm" in steps:
        model, _, metrics, seconds = train_bilstm(config, splits, tokenizer, name="bilstm",
                                                  max_length=max_length, **bilstm_kwargs)
        folder = bilstm_folder(config, "bilstm")
        record_result("BiLSTM", CHAPTER, metrics, config,
                      params=sum(p.numel() for p in model.parameters()),
                      size_mb=round(size_on_disk_mb(folder), 3), train_seconds=round(seconds, 1),
                      teacher=None, standin=False, kind="bilstm",
                      artifact=folder.relative_to(config.artifacts_dir).as_posix())
        models.append("BiLSTM")

    if "teacher" in steps or "distill" in steps:
        if "teacher" in steps:
            teacher_tokenizer, teacher_model, history = finetune_teacher(
                config, splits, epochs=teacher_epochs)
            teacher_seconds = history.seconds
        else:
            teacher_tokenizer, teacher_model = get_teacher(config, splits)
            teacher_seconds = None
        logits = teacher_logits_for_splits(config, splits, teacher_tokenizer, teacher_model)

    if "teacher" in steps:
        metrics = evaluate(test["label"], logits_to_proba(logits["test"]))
        record_result("teacher", CHAPTER, metrics, config,
                      params=sum(p.numel() for p in teacher_model.parameters()),
                      size_mb=round(size_on_disk_mb(teacher_dir(config)), 3),
                      train_seconds=round(teacher_seconds, 1), kind="transformers",
                      artifact=teacher_dir(config).relative_to(config.artifacts_dir).as_posix(),
                      **teacher_fields(config, teacher_model))
        models.append("teacher")

    if "distill" in steps:
        name = "bilstm_distilled"
        student = train_student(
            config, splits, tokenizer, article_loss_fn(distill_alpha), logits["train"],
            name=name, label=f"logit MSE, alpha={distill_alpha:g}",
            epochs=default_epochs(config), max_length=max_length, **bilstm_kwargs,
        )
        record_student(config, "BiLSTM distilled", student, CHAPTER, teacher_model,
                       alpha=distill_alpha)
        models.append("BiLSTM distilled")

    results = load_results(config)
    results = results[results["model"].isin(models)]
    n_latency = latency_texts or (20 if small else 200)
    table = compare_models(config, results, test["text"].tolist()[:n_latency],
                           test["text"].tolist(), threads=threads)
    record_speed(config, table)
    notice = standin_notice(table.reset_index())
    if notice:
        print(notice)
    return table
