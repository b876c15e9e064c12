"""The teacher's confidence summary: hand-checked figures, and bad shapes named."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.soft_targets import confidence_table, margins, plot_margins


def test_confidence_table_matches_hand_values() -> None:
    sure = np.array([[0.0, 10.0], [10.0, 0.0]])  # margins +10, -10: both right, both > 99%
    unsure = np.array([[0.0, 0.0], [1.0, 0.0]])  # margins 0, -1
    table = confidence_table({"train": sure, "valid": unsure}, {"train": [1, 0], "valid": [1, 1]})
    assert table.loc["train", "accuracy"] == 1.0 and table.loc["train", "share ≥ 99% sure"] == 1.0
    assert table.loc["valid", "accuracy"] == 0.0  # margin 0 counts as normal; -1 is wrong too
    assert table.loc["valid", "median |margin|"] == 0.5
    p = 1 / (1 + np.exp(-1.0))
    assert table.loc["valid", "mean confidence"] == pytest.approx((0.5 + p) / 2, abs=1e-4)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    assert table.loc["valid", "mean entropy (bits)"] == pytest.approx((1 + entropy) / 2, abs=1e-4)
    assert table.loc["train", "mean entropy (bits)"] < 0.01
    np.testing.assert_array_equal(margins(sure), [10.0, -10.0])
    plot_margins({"train": sure, "valid": unsure})


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        margins(np.zeros(3))
    with pytest.raises(ValueError, match="2 logits but 3 labels"):
        confidence_table({"valid": np.zeros((2, 2))}, {"valid": [0, 1, 1]})
