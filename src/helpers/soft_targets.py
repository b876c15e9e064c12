"""What a distilled student is matched to: the teacher's confidence on the texts it learned from.

A student trained on the teacher's logits of the *training* texts learns from a teacher that was
fine-tuned on those very texts: there it is more accurate and more sure of itself than on texts it
never saw, so its soft targets are closer to the gold labels and carry less of what distillation
is for (how much more toxic one comment looks than another, Hinton et al.'s "dark knowledge").
:func:`confidence_table` and :func:`plot_margins` show it; the remedy, cross-fitted logits, is
:func:`helpers.teacher.crossfit_teacher_logits`.

With two classes the teacher's softmax depends only on the **margin** ``z_toxic - z_normal``: its
toxic probability is ``sigmoid(margin)``, and at temperature ``T`` it is ``sigmoid(margin / T)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SURE = 0.99  # a prediction this sure carries almost no more than its label


def margins(logits: np.ndarray) -> np.ndarray:
    """``z_toxic - z_normal`` of each row of ``(n, 2)`` logits."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits must have shape (n, 2), got {logits.shape}")
    return logits[:, 1] - logits[:, 0]


def confidence_table(logits: Mapping[str, np.ndarray],
                     labels: Mapping[str, Sequence[int]]) -> pd.DataFrame:
    """One row per set of logits (e.g. ``"train, in-sample"``, ``"valid"``): how many texts, the
    teacher's accuracy against the gold labels, its mean confidence (the larger of its two
    probabilities), the share of texts it is at least 99% sure of, the median absolute margin and
    the mean entropy of its distribution in bits (1: a coin toss, 0: certain)."""
    rows = {}
    for name, values in logits.items():
        m = margins(values)
        y = np.asarray(labels[name])
        if len(y) != len(m):
            raise ValueError(f"{name}: {len(m)} logits but {len(y)} labels")
        p = 1 / (1 + np.exp(-m))
        confidence = np.maximum(p, 1 - p)
        q = np.clip(np.stack([p, 1 - p]), 1e-12, 1)
        rows[name] = {
            "texts": len(m), "accuracy": float(((m > 0) == (y == 1)).mean()),
            "mean confidence": float(confidence.mean()),
            f"share ≥ {SURE:.0%} sure": float((confidence >= SURE).mean()),
            "median |margin|": float(np.median(np.abs(m))),
            "mean entropy (bits)": float(-(q * np.log2(q)).sum(axis=0).mean()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").astype({"texts": int}).round(4)


def plot_margins(logits: Mapping[str, np.ndarray], title: str = "", clip: float = 12.0,
                 ax=None):
    """Histograms (as densities) of the teacher's margins for each set of logits, clipped at
    ``±clip``: in-sample margins pile up at the ends."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    bins = np.linspace(-clip, clip, 49)
    for name, values in logits.items():
        ax.hist(np.clip(margins(values), -clip, clip), bins=bins, density=True,
                histtype="step", linewidth=1.5, label=name)
    ax.set_xlabel("teacher's margin z_toxic - z_normal (clipped)")
    ax.set_ylabel("density")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
