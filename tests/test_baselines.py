"""Tests of helpers.baselines on a tiny synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from toy import toy_corpus

from helpers.baselines import (
    fit_baseline,
    make_article_pipeline,
    make_char_ngram_pipeline,
    tune_char_ngram_c,
)
from helpers.benchmark import count_parameters
from helpers.config import get_config
from helpers.results import load_results, record_result


def corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """The shared toy corpus as texts and labels (one class word decides the label)."""
    frame = toy_corpus(n, seed)
    return frame["text"].tolist(), frame["label"].to_numpy()


@pytest.fixture
def config(tmp_path: Path):
    return get_config({"BOOK_SMALL": "1"}, root=tmp_path)


@pytest.mark.parametrize("make", [make_article_pipeline, make_char_ngram_pipeline])
def test_pipelines_beat_chance(make, config) -> None:
    train_texts, train_labels = corpus(150, seed=1)
    test_texts, test_labels = corpus(60, seed=2)
    valid_texts, valid_labels = corpus(45, seed=9)
    run = fit_baseline("model", make(seed=0),
                       {"train": train_texts, "valid": valid_texts, "test": test_texts},
                       {"train": train_labels, "valid": valid_labels, "test": test_labels}, config)
    assert run.valid_f1 > 0.8
    # Chance (predicting "toxic" at random) gives F1 ≈ 0.4 on a one-third toxic split.
    assert run.metrics["f1"] > 0.8
    assert run.metrics["average_precision"] > 0.8
    assert run.test_proba.shape == (60,)
    assert run.path.is_file() and run.size_mb > 0
    assert run.params == count_parameters(run.pipeline) > 0
    record_result(config, "model", "01", **run.as_result(), preprocess="raw")
    row = load_results(config).set_index("model").loc["model"]
    assert row["f1"] == run.metrics["f1"] and row["size_mb"] == round(run.size_mb, 3)
    assert row["teacher"] is None and row["chapter"] == "01" and row["kind"] == "sklearn"


def test_count_parameters() -> None:
    texts, labels = corpus(60, seed=3)
    logreg = make_char_ngram_pipeline(seed=0).fit(texts, labels)
    n_features = len(logreg.named_steps["tfidf"].vocabulary_)
    assert count_parameters(logreg) == n_features + 1
    forest = make_article_pipeline(seed=0, n_estimators=3).fit(texts, labels)
    nodes = [t.tree_.node_count for t in forest.named_steps["forest"].estimators_]
    assert len(nodes) == 3 and count_parameters(forest) == sum(nodes)


def test_same_seed_same_forest() -> None:
    texts, labels = corpus(90, seed=4)
    a = make_article_pipeline(seed=5, n_estimators=5).fit(texts, labels).predict_proba(texts)
    b = make_article_pipeline(seed=5, n_estimators=5).fit(texts, labels).predict_proba(texts)
    np.testing.assert_array_equal(a, b)


def test_tune_uses_validation_and_returns_a_grid_value() -> None:
    train_texts, train_labels = corpus(120, seed=6)
    valid_texts, valid_labels = corpus(45, seed=7)
    best, table = tune_char_ngram_c(train_texts, train_labels, valid_texts, valid_labels,
                                    grid=(0.01, 10.0))
    assert list(table.index) == [0.01, 10.0]
    assert best == table["valid_f1"].idxmax()
    # Heavy regularisation predicts (almost) nobody toxic at 0.5; C=10 separates the classes.
    assert best == 10.0 and table.loc[10.0, "valid_f1"] > table.loc[0.01, "valid_f1"]
