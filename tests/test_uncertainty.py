"""Paired bootstrap intervals of F1 differences, against a slow reference and known cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from helpers.uncertainty import differences_table, paired_bootstrap, seed_spread


def noisy_predictions(n: int = 600, accuracy: float = 0.8, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    right = rng.random(n) < accuracy
    proba = np.where(right, y, 1 - y) * 0.8 + 0.1  # 0.9 for predicted toxic, 0.1 otherwise
    return y, proba


def test_point_difference_is_the_f1_difference() -> None:
    y, a = noisy_predictions(seed=1)
    _, b = noisy_predictions(seed=2)
    d = paired_bootstrap(y, a, b, n_boot=200)
    assert d.f1_a == pytest.approx(f1_score(y, a >= 0.5))
    assert d.f1_b == pytest.approx(f1_score(y, b >= 0.5))
    assert d.diff == pytest.approx(d.f1_b - d.f1_a)
    assert d.low <= d.diff <= d.high


def test_interval_matches_a_slow_reference() -> None:
    y, a = noisy_predictions(n=150, seed=3)
    b = np.where(np.random.default_rng(4).random(150) < 0.15, 1 - a, a)
    d = paired_bootstrap(y, a, b, n_boot=300, seed=7)
    rng = np.random.default_rng(7)
    diffs = []
    for _ in range(300):
        idx = rng.integers(0, 150, size=150, dtype=np.int32)
        diffs.append(f1_score(y[idx], b[idx] >= 0.5, zero_division=0)
                     - f1_score(y[idx], a[idx] >= 0.5, zero_division=0))
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert (d.low, d.high) == pytest.approx((low, high))


def test_same_model_gives_zero_and_a_clearly_better_one_excludes_zero() -> None:
    y, a = noisy_predictions(n=2000, accuracy=0.7)
    same = paired_bootstrap(y, a, a)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero
    perfect = np.where(y == 1, 0.9, 0.1)
    better = paired_bootstrap(y, a, perfect)
    assert better.excludes_zero and better.low > 0.1
    assert str(better).startswith("+")


def test_reproducible_with_a_seed_and_validated() -> None:
    y, a = noisy_predictions(seed=5)
    _, b = noisy_predictions(seed=6)
    assert paired_bootstrap(y, a, b, seed=3) == paired_bootstrap(y, a, b, seed=3)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(y, a, b[:-1])
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(y, a, b, level=95)


def test_differences_table_and_seed_spread() -> None:
    y, a = noisy_predictions(seed=8)
    table = differences_table(y, {"twin": a, "student": np.where(y == 1, 0.9, 0.1)},
                              {"teacher's gain": ("twin", "student")}, n_boot=200)
    assert table.loc["teacher's gain", "real"]
    assert table.loc["teacher's gain", "F1 after"] == 1.0
    spread = seed_spread({1: 0.70, 2: 0.72, 3: 0.74})
    assert spread["mean"] == pytest.approx(0.72) and spread["std"] == pytest.approx(0.02)
    with pytest.raises(ValueError):
        seed_spread({1: 0.7})


def test_interval_tally_counts_the_rows_it_is_shown() -> None:
    from helpers.uncertainty import IntervalTally

    tally = IntervalTally()
    y, a = noisy_predictions(seed=8)
    table = differences_table(y, {"a": a, "b": a[::-1]}, {"x": ("a", "b"), "y": ("b", "a")},
                              n_boot=50)
    assert tally(table) is table and tally.count == 2
    tally(table.iloc[:1])
    assert tally.count == 3
    assert tally.summary().startswith("3 intervals at 95%") and "about 0.2 of them" in \
        tally.summary()
