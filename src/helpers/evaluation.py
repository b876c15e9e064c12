"""One evaluation for every model in the book.

The headline figure is F1 of the toxic class (as in the source article); macro-F1 and average
precision (area under the precision-recall curve, threshold-free) stand beside it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)


def evaluate(y_true, toxic_proba, threshold: float = 0.5) -> dict[str, float]:
    """Scores of predicted toxic-class probabilities against 0/1 labels.

    ``toxic_proba`` is the probability (or any score in [0, 1]) of the toxic class; a text is
    predicted toxic when it reaches ``threshold``. Average precision uses the scores themselves.
    """
    y_true = np.asarray(y_true).astype(int)
    toxic_proba = np.asarray(toxic_proba, dtype=float)
    if y_true.shape != toxic_proba.shape:
        raise ValueError(f"{y_true.shape[0]} labels but {toxic_proba.shape[0]} scores")
    y_pred = (toxic_proba >= threshold).astype(int)
    return {
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "average_precision": float(average_precision_score(y_true, toxic_proba)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }


def plot_confusion_matrix(y_true, toxic_proba, threshold: float = 0.5, title: str = "", ax=None):
    """Confusion matrix of the thresholded predictions, with class names."""
    y_pred = (np.asarray(toxic_proba) >= threshold).astype(int)
    matrix = confusion_matrix(np.asarray(y_true).astype(int), y_pred, labels=[0, 1])
    display = ConfusionMatrixDisplay(matrix, display_labels=["normal", "toxic"])
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    display.plot(ax=ax, colorbar=False, values_format="d")
    ax.set_title(title)
    return ax
