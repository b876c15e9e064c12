"""Tests of helpers.evaluation against figures computed by hand."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from helpers.evaluation import evaluate, plot_confusion_matrix


def test_evaluate_matches_hand_computed_values() -> None:
    y_true = [1, 1, 1, 0, 0, 0, 0, 0]
    proba = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.05]
    # Threshold 0.5 → predictions 1,1,0,1,0,0,0,0: TP=2, FN=1, FP=1, TN=4.
    scores = evaluate(y_true, proba)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(6 / 8)
    # Normal class: precision 4/5, recall 4/5, F1 0.8; macro-F1 = (2/3 + 0.8) / 2.
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    # Ranked by score: 0.9(+) 0.8(+) 0.6(-) 0.4(-) 0.3(+) ...: AP = (1 + 1 + 3/5) / 3.
    assert scores["average_precision"] == pytest.approx((1 + 1 + 3 / 5) / 3)


def test_threshold_changes_predictions_not_average_precision() -> None:
    y_true = [1, 1, 1, 0, 0, 0, 0, 0]
    proba = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.05]
    low = evaluate(y_true, proba, threshold=0.25)  # TP=3, FP=2
    assert low["recall"] == 1.0
    assert low["precision"] == pytest.approx(3 / 5)
    assert low["average_precision"] == evaluate(y_true, proba)["average_precision"]


def test_no_positive_prediction_gives_zero_not_an_error() -> None:
    scores = evaluate([0, 1, 0], [0.1, 0.2, 0.3])
    assert scores["f1"] == 0.0 and scores["precision"] == 0.0


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        evaluate([0, 1, 1], [0.2, 0.9])


def test_plot_confusion_matrix_counts() -> None:
    ax = plot_confusion_matrix(np.array([1, 1, 0, 0, 0]), [0.9, 0.1, 0.7, 0.2, 0.3], title="t")
    values = [text.get_text() for text in ax.texts]
    assert values == ["2", "1", "1", "1"]  # TN, FP / FN, TP
    assert ax.get_title() == "t"
