"""Tests of helpers.baselines on a tiny synthetic corpus."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from helpers.baselines import (
    count_params,
    fit_evaluate_record,
    make_article_pipeline,
    make_char_ngram_pipeline,
    summary_table,
    tune_char_ngram_c,
)
from helpers.config import get_config
from helpers.results import load_results

TOXIC = ["дурак", "идиот", "тупой", "дебил", "урод"]
NORMAL = ["спасибо", "интересно", "хороший", "статья", "согласен"]
FILLER = ["это", "очень", "просто", "вот", "сегодня", "опять", "пост", "автор"]


def corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts made of filler words plus one or two class words; toxic ones get typos sometimes."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 3 == 0
        words = rng.sample(FILLER, 3) + rng.sample(TOXIC if label else NORMAL, 2)
        if label and rng.random() < 0.3:
            words[-1] = words[-1][:-1] + "*"  # an obfuscated ending
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(int(label))
    return texts, np.array(labels)


@pytest.fixture
def config(tmp_path: Path):
    return get_config({"BOOK_SMALL": "1"}, root=tmp_path)


@pytest.mark.parametrize("make", [make_article_pipeline, make_char_ngram_pipeline])
def test_pipelines_beat_chance(make, config) -> None:
    train_texts, train_labels = corpus(150, seed=1)
    test_texts, test_labels = corpus(60, seed=2)
    run = fit_evaluate_record("model", make(seed=0), train_texts, train_labels, test_texts,
                              test_labels, config)
    # Chance (predicting "toxic" at random) gives F1 ≈ 0.4 on a one-third toxic split.
    assert run.metrics["f1"] > 0.8
    assert run.metrics["average_precision"] > 0.8
    assert run.test_proba.shape == (60,)
    assert run.path.is_file() and run.size_mb > 0
    assert run.params == count_params(run.pipeline) > 0
    row = load_results(config).set_index("model").loc["model"]
    assert row["f1"] == run.metrics["f1"]
    assert row["teacher"] is None and row["chapter"] == "01_classical_baselines"


def test_count_params() -> None:
    texts, labels = corpus(60, seed=3)
    logreg = make_char_ngram_pipeline(seed=0).fit(texts, labels)
    n_features = len(logreg.named_steps["tfidf"].vocabulary_)
    assert count_params(logreg) == n_features + 1
    forest = make_article_pipeline(seed=0, n_estimators=3).fit(texts, labels)
    nodes = [t.tree_.node_count for t in forest.named_steps["forest"].estimators_]
    assert len(nodes) == 3 and count_params(forest) == sum(nodes)


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


def test_summary_table(config) -> None:
    texts, labels = corpus(60, seed=8)
    run = fit_evaluate_record("lr", make_char_ngram_pipeline(), texts, labels, texts, labels,
                              config)
    table = summary_table([run])
    assert list(table.index) == ["lr"]
    assert {"f1", "macro_f1", "average_precision", "params", "size_mb"} <= set(table.columns)
