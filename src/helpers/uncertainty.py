"""How much of a difference is noise: paired bootstrap intervals of F1 differences, seed spread.

Two models scored on the same 2,117 test comments differ by a point or two of F1 from one run to
the next for reasons that have nothing to do with the models: which comments happened to land in
the test split, and which random seed trained them. The book reports both kinds of noise:

* :func:`paired_bootstrap` resamples the *test comments* with replacement, the same comments for
  both models (the comparison is paired), and recomputes the F1 difference on each resample; the
  2.5th and 97.5th percentiles of those differences are a 95% interval (Efron and Tibshirani
  1993; for NLP, Berg-Kirkpatrick et al. 2012). A difference is called real only when its
  interval excludes zero.
* :func:`seed_differences` covers *training noise*: a student and its twin trained with the
  same seeds, one paired difference per seed, summarised by their mean, standard deviation and
  Student's t-interval (:func:`seed_differences_table` for several pairs); :func:`seed_spread`
  summarises one model over seeds.

A chapter counts the intervals it shows (:class:`IntervalTally`): one that shows twenty 95%
intervals should expect about one to exclude zero by chance alone, and says how many it showed.

The F1 of the toxic class is :math:`F_1 = 2\\,TP / (2\\,TP + FP + FN)`; every resample counts
``TP``, ``FP`` and ``FN`` with one matrix operation, so 2,000 resamples of 2,117 texts take a
fraction of a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .config import SEED

N_BOOT = 2000
LEVEL = 0.95


class IntervalTally:
    """The intervals a chapter has shown, counted as it shows them: ``tally(table)`` counts the
    rows of a table of intervals (one interval each) and returns the table, so a chapter wraps
    each table it displays; :meth:`summary` says what that many intervals mean."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, table: pd.DataFrame) -> pd.DataFrame:
        self.count += len(table)
        return table

    def summary(self, level: float = LEVEL) -> str:
        """``"N intervals at 95%: ... about N/20 would exclude zero by chance alone"``."""
        return (f"{self.count} intervals at {level:.0%}: even if no model differed from another, "
                f"about {self.count * (1 - level):.1f} of them would exclude zero by chance alone")


@dataclass(frozen=True)
class Difference:
    """F1 of ``b`` minus F1 of ``a`` on the test split, with its paired bootstrap interval."""

    f1_a: float
    f1_b: float
    diff: float
    low: float
    high: float
    n_boot: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero: a difference we call real."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.diff:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _f1_of_resamples(y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """F1 of the toxic class on each row of resampled indices ``idx`` (shape resamples x n)."""
    tp = (y & pred)[idx].sum(axis=1)
    fp = (~y & pred)[idx].sum(axis=1)
    fn = (y & ~pred)[idx].sum(axis=1)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(len(idx)), where=denominator > 0)


def paired_bootstrap(
    y_true: Sequence[int], proba_a: Sequence[float], proba_b: Sequence[float], *,
    n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED, threshold: float = 0.5,
) -> Difference:
    """F1(b) - F1(a) on the test split and its ``level`` paired bootstrap interval.

    Both models' predictions (probability >= ``threshold``) are resampled with the same indices,
    ``n_boot`` times; the interval is the percentile interval of the differences. Same inputs and
    seed give the same interval.
    """
    y = np.asarray(y_true).astype(bool)
    a = np.asarray(proba_a) >= threshold
    b = np.asarray(proba_b) >= threshold
    if not (y.shape == a.shape == b.shape) or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and predictions {a.shape}, {b.shape} must be 1-D "
                         "arrays of the same length, one entry per test text")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    everything = np.arange(len(y))[None, :]
    f1_a, f1_b = _f1_of_resamples(y, a, everything)[0], _f1_of_resamples(y, b, everything)[0]
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    # In chunks, so that memory stays small whatever n_boot is.
    for start in range(0, n_boot, 500):
        idx = rng.integers(0, len(y), size=(min(500, n_boot - start), len(y)), dtype=np.int32)
        diffs[start:start + len(idx)] = _f1_of_resamples(y, b, idx) - _f1_of_resamples(y, a, idx)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Difference(float(f1_a), float(f1_b), float(f1_b - f1_a), float(low), float(high),
                      n_boot)


def differences_table(
    y_true: Sequence[int], probas: Mapping[str, Sequence[float]],
    pairs: Mapping[str, tuple[str, str]], **kwargs,
) -> pd.DataFrame:
    """One row per comparison ``label -> (a, b)`` of models in ``probas``: F1 of each, the
    difference ``b - a`` with its 95% interval, and whether the interval excludes zero."""
    rows = {}
    for label, (a, b) in pairs.items():
        d = paired_bootstrap(y_true, probas[a], probas[b], **kwargs)
        rows[label] = {"F1 before": round(d.f1_a, 4), "F1 after": round(d.f1_b, 4),
                       "dF1 [95% CI]": str(d), "real": d.excludes_zero}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["F1 before", "F1 after", "dF1 [95% CI]", "real"])


MIN_SEEDS = 3  # no standard deviation of fewer values


def seed_spread(scores: Mapping[int, float]) -> dict[str, float]:
    """Mean, standard deviation (n - 1), min and max of one figure over training seeds."""
    values = np.asarray(list(scores.values()), dtype=float)
    if len(values) < MIN_SEEDS:
        raise ValueError(f"the spread over seeds needs at least {MIN_SEEDS} seeds, got "
                         f"{len(values)}: train the model with more seeds")
    return {"seeds": len(values), "mean": float(values.mean()), "std": float(values.std(ddof=1)),
            "min": float(values.min()), "max": float(values.max())}


@dataclass(frozen=True)
class SeedDifference:
    """Per-seed differences ``after - before`` of one pair (a twin and its student trained with
    the same seeds): their mean, standard deviation and Student's t-interval for the mean."""

    diffs: dict[int, float]
    mean: float
    sd: float
    low: float
    high: float

    @property
    def seeds(self) -> int:
        return len(self.diffs)

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def seed_differences(before: Mapping[int, float], after: Mapping[int, float],
                     level: float = LEVEL) -> SeedDifference:
    """The paired differences ``after[seed] - before[seed]`` over the seeds both were trained
    with, and the t-interval ``mean ± t(n - 1) * sd / sqrt(n)`` (training noise, where
    :func:`paired_bootstrap` covers the test sample). Needs the same seeds on both sides, at
    least :data:`MIN_SEEDS`."""
    if set(before) != set(after):
        raise ValueError(f"the pair was trained with different seeds: {sorted(before)} and "
                         f"{sorted(after)}; train both with the same ones")
    if len(before) < MIN_SEEDS:
        raise ValueError(f"a seed interval needs at least {MIN_SEEDS} seeds, got {len(before)}")
    diffs = {seed: float(after[seed] - before[seed]) for seed in sorted(before)}
    values = np.array(list(diffs.values()))
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1)) * sd / np.sqrt(len(values))
    return SeedDifference(diffs, mean, sd, mean - half, mean + half)


def seed_differences_table(
    pairs: Mapping[str, tuple[Mapping[int, float], Mapping[int, float]]],
) -> pd.DataFrame:
    """One row per pair ``label -> (before, after)`` of per-seed scores: the seeds, the mean
    difference with its 95% t-interval, the standard deviation, and whether it excludes zero."""
    rows = {}
    for label, (before, after) in pairs.items():
        d = seed_differences(before, after)
        rows[label] = {"seeds": d.seeds, "mean dF1 [95% t-interval]": str(d),
                       "sd": round(d.sd, 4), "real": d.excludes_zero}
    return pd.DataFrame.from_dict(rows, orient="index")
