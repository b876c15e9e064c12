"""The whole chain on any CSV of texts and binary labels, in one call.

:func:`run_chain` is the book for your own data: read, check, clean and split the CSV; fit the
character n-gram baseline; train a BiLSTM; fine-tune the teacher; distil the teacher into a BiLSTM
through its cached logits; then measure every model the same way and return the comparison table
(:func:`helpers.comparison.compare_models`). It only strings together the functions the chapters
use, trains each model with the very settings objects its chapter uses
(:mod:`helpers.budgets`), and records each model as its chapter does.

From a shell, the same chain (the table is printed and kept in ``OUT/artifacts/``)::

    python -m helpers.pipeline my_comments.csv --text-column text --label-column label \
        --out my_run [--teacher HUB_ID_OR_FOLDER] [--small] [--steps baseline bilstm]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import chapters
from .baselines import fit_baseline, make_char_ngram_pipeline, tune_char_ngram_c
from .batching import logits_to_proba
from .benchmark import count_parameters
from .bpe import get_bpe_tokenizer
from .budgets import bilstm_schedule, distillation_budget
from .comparison import THREADS, compare_models, record_speed
from .config import BookConfig, find_root, get_config
from .data import LABEL_COLUMN, TEXT_COLUMN, load_csv_splits
from .distill import train_token_student
from .errors import OutputPathError, add_debug_flag, check_writable_dir, run_command
from .evaluation import evaluate
from .losses import Recipe
from .messages import set_verbosity
from .results import load_results, record_result
from .standin import standin_notice, teacher_fields
from .teacher import finetune_teacher, get_teacher, teacher_dir, teacher_logits_for_splits
from .token_models import ARTICLE_BILSTM, train_token_model

logger = logging.getLogger(__name__)

STEPS = ("baseline", "bilstm", "teacher", "distill")


def refuse_book_artifacts(out_dir: str | Path) -> Path:
    """``out_dir`` resolved, unless its ``artifacts/`` would be (or lie inside) the book's own
    (:class:`helpers.errors.OutputPathError`).

    The book's artifacts (under its root, or ``BOOK_ARTIFACTS``) belong to the chapters: a run on
    other data must not mix its models and results into them.
    """
    out = Path(out_dir).expanduser().resolve()
    target = out / "artifacts"
    config = get_config()
    homes = {config.artifacts_root or config.root, find_root(out)}
    for home in homes:
        if not (home / "_toc.yml").is_file() and home != config.artifacts_root:
            continue  # not a book
        book = (home / "artifacts").expanduser().resolve()
        if target == book or target.is_relative_to(book):
            raise OutputPathError(
                f"the output folder {str(out_dir)!r} would write into the book's own artifacts "
                f"({book}), which belong to its chapters; choose a folder of your own, e.g. my_run")
    return out


def check_output_dir(out_dir: str | Path) -> Path:
    """``out_dir`` resolved, once it is known that the run can write ``out_dir/artifacts/``:
    not the book's own artifacts (:func:`refuse_book_artifacts`), no file on the way, a place
    this process may write (:func:`helpers.errors.check_writable_dir`). Checked before any work,
    so that a run does not fit models and then fail."""
    out = check_writable_dir(refuse_book_artifacts(out_dir))
    check_writable_dir(out / "artifacts", "folder for the run's artifacts")
    return out


def run_chain(
    csv_path: str | Path,
    text_column: str = TEXT_COLUMN,
    label_column: str = LABEL_COLUMN,
    teacher: str | None = None,
    *,
    out_dir: str | Path,
    small: bool = False,
    steps: Sequence[str] = STEPS,
    distill_alpha: float = 0.5,
    teacher_epochs: int | None = None,
    bilstm_kwargs: Mapping[str, Any] | None = None,
    latency_texts: int | None = None,
    threads: int = THREADS,
) -> pd.DataFrame:
    """Run the book's chain on your own CSV and return the comparison table.

    ``csv_path`` holds one text column and one 0/1 label column (named by ``text_column`` and
    ``label_column``); ``teacher`` is a hub id or local folder of a BERT to fine-tune (default:
    the book's, ``BOOK_TEACHER`` or ``cointegrated/rubert-tiny``). Everything is written under
    ``out_dir/artifacts/{full,small}/`` (models, cached teacher logits, ``results.json``) and
    nowhere else; an ``out_dir`` that cannot be written, or whose ``artifacts/`` is the book's
    own, is refused before any work (:func:`check_output_dir`). ``steps`` is any subset of
    :data:`STEPS`, run in this order:

    ``baseline``
        character 1-5-gram TF-IDF + logistic regression, ``C`` chosen on the validation split;
    ``bilstm``
        a BPE tokenizer trained on the training split and a BiLSTM (cross-entropy) on chapter
        2's schedule (:func:`helpers.budgets.bilstm_schedule`);
    ``teacher``
        the teacher fine-tuned on the training split (``teacher_epochs``; default: the book's);
    ``distill``
        chapter 4's BiLSTM student (``distillation_budget(config).bilstm``, on its
        :meth:`~helpers.budgets.DistillationBudget.schedule`) trained on the teacher's cached
        logits with the recipe ``Recipe("mse", distill_alpha)`` (logit MSE + ``distill_alpha``
        times cross-entropy, Tang et al. 2019); fine-tunes the teacher first if ``teacher`` was
        not run.

    ``small`` subsamples the splits (a few hundred rows), takes the small-data budgets and, as
    chapter 4 does, narrows the BiLSTM of the ``bilstm`` step too
    (:func:`helpers.budgets.distillation_budget`), to try the chain in about a minute (35 s on
    the book's data on an idle 2-core CPU with one thread; README.md); ``bilstm_kwargs`` go to
    :class:`helpers.token_models.BiLSTMClassifier` (e.g. a smaller ``hidden_size``) and override
    both BiLSTMs' size. The returned table (:func:`compare_models`)
    has one row per model of this run, with the test scores, parameters, size on disk, CPU latency
    over ``latency_texts`` test texts (default 20 when ``small``, else 200) and throughput over the
    test split, measured with ``threads`` threads. If the teacher is a stand-in, its rows say so
    (``standin``). ``table.attrs["dropped"]`` counts the rows cleaning dropped, by reason
    (:attr:`helpers.data.CleaningReport.dropped`).
    """
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"Unknown step(s) {sorted(unknown)}; choose from {STEPS}")
    out = check_output_dir(out_dir)
    teacher = teacher or get_config().teacher
    config = BookConfig(data=Path(csv_path), teacher=teacher, small=small, root=out)
    splits = load_csv_splits(csv_path, text_column, label_column, small)
    train_texts, test = splits.train["text"].tolist(), splits.test
    budget = distillation_budget(config)
    resize = dict(bilstm_kwargs or {})
    models: list[str] = []

    if "baseline" in steps:
        best_c, _ = tune_char_ngram_c(train_texts, splits.train["label"],
                                      splits.valid["text"], splits.valid["label"])
        run = fit_baseline("char_ngram_logreg", make_char_ngram_pipeline(C=best_c),
                           {name: part["text"] for name, part in splits.items()},
                           {name: part["label"] for name, part in splits.items()}, config)
        record_result(config, run.name, chapters.BASELINES, **run.as_result(), preprocess="raw",
                      C=best_c)
        models.append(run.name)

    if "bilstm" in steps or "distill" in steps:
        tokenizer = get_bpe_tokenizer(config, train_texts)

    if "bilstm" in steps:
        network = (budget.bilstm if small else ARTICLE_BILSTM).with_size(**resize)
        run = train_token_model(config, splits, tokenizer,
                                bilstm_schedule(config, tokenizer, train_texts), network,
                                name="bilstm")
        record_result(config, "BiLSTM", chapters.BILSTM, run.test, kind="token_model",
                      artifact=run.folder, params=count_parameters(run.model),
                      train_seconds=run.seconds, valid_f1=run.history.best_valid_f1)
        models.append("BiLSTM")

    if "teacher" in steps or "distill" in steps:
        if "teacher" in steps:
            teacher_tokenizer, teacher_model, teacher_history = finetune_teacher(
                config, splits, epochs=teacher_epochs)
        else:
            teacher_tokenizer, teacher_model = get_teacher(config, splits)
        logits = teacher_logits_for_splits(config, splits, teacher_tokenizer, teacher_model)

    if "teacher" in steps:
        metrics = evaluate(test["label"], logits_to_proba(logits["test"]))
        record_result(config, "teacher", chapters.TEACHER, metrics, kind="transformers",
                      artifact=teacher_dir(config), params=count_parameters(teacher_model),
                      train_seconds=teacher_history.seconds,
                      valid_f1=teacher_history.best_valid_f1,
                      **teacher_fields(config, teacher_model))
        models.append("teacher")

    if "distill" in steps:
        recipe = Recipe("mse", distill_alpha)
        student = train_token_student(
            config, splits, tokenizer, recipe.loss_fn(), logits["train"],
            name="bilstm_distilled", label=recipe.label,
            schedule=budget.schedule(tokenizer, train_texts),
            network=budget.bilstm.with_size(**resize),
        )
        record_result(config, "BiLSTM distilled", chapters.DISTILL_SMALL, **student.as_result(),
                      **teacher_fields(config, teacher_model), **recipe.fields())
        models.append("BiLSTM distilled")

    results = load_results(config)
    results = results[results["model"].isin(models)]
    n_latency = latency_texts or (20 if small else 200)
    table = compare_models(config, results, test["text"].tolist()[:n_latency],
                           test["text"].tolist(), threads=threads)
    record_speed(config, table)
    table.attrs["dropped"] = splits.cleaning.dropped
    notice = standin_notice(table.reset_index())
    if notice:
        logger.warning(notice)
    return table


def run_chain_cli(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """``python -m helpers.pipeline CSV --out DIR ...``: :func:`run_chain` from a shell."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.pipeline",
        description="Run the book's chain (baseline, BiLSTM, teacher, distilled BiLSTM) on your "
                    "own CSV and print the comparison table.")
    parser.add_argument("csv", help="CSV with a text column and a 0/1 label column")
    parser.add_argument("--text-column", default=TEXT_COLUMN, help="default: %(default)s")
    parser.add_argument("--label-column", default=LABEL_COLUMN, help="default: %(default)s")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for everything the run writes (DIR/artifacts/)")
    parser.add_argument("--teacher", default=None,
                        help="hub id or local folder (default: BOOK_TEACHER or the book's)")
    parser.add_argument("--small", action="store_true",
                        help="a few hundred rows and short training: about a minute")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    set_verbosity("info")  # what was trained or reused, one line each, above the table
    table = run_chain(args.csv, args.text_column, args.label_column, args.teacher,
                      out_dir=args.out, small=args.small, steps=args.steps)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """The command: a mistake in what was asked (a missing file, a wrong column, an output folder
    that cannot be used) is one line on standard error and exit status 2; ``--debug`` shows the
    traceback instead."""
    return run_command(run_chain_cli, argv, prog="python -m helpers.pipeline")


if __name__ == "__main__":
    sys.exit(main())
