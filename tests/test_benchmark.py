"""Tests of helpers.benchmark: what is timed, what is not, and the thread count."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from helpers.benchmark import measure_latency, measure_speed, measure_throughput, torch_threads


class SlowStart:
    """A fake ``predict``: sleeps ``slow_s`` on its first ``slow_calls`` calls, then ``fast_s``."""

    def __init__(self, slow_calls: int, slow_s: float = 0.05, fast_s: float = 0.001) -> None:
        self.slow_calls, self.slow_s, self.fast_s = slow_calls, slow_s, fast_s
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        time.sleep(self.slow_s if len(self.calls) <= self.slow_calls else self.fast_s)
        return np.full(len(texts), 0.5)


def test_latency_is_a_positive_median_per_text() -> None:
    predict = SlowStart(slow_calls=0)
    result = measure_latency(predict, ["a", "b", "c", "d"], warmup=2, repeats=3)
    assert result["latency_ms"] > 0
    assert result["latency_p90_ms"] >= result["latency_ms"]
    # 2 warm-up calls, then every text 3 times, always one text per call (batch 1).
    assert len(predict.calls) == 2 + 4 * 3
    assert all(len(call) == 1 for call in predict.calls)


def test_warmup_calls_are_not_timed() -> None:
    # The first 3 calls take 50 ms; with 3 warm-up calls none of them is in the timings.
    predict = SlowStart(slow_calls=3, slow_s=0.05, fast_s=0.001)
    result = measure_latency(predict, ["a"] * 6, warmup=3)
    assert result["latency_ms"] < 25
    assert result["latency_p90_ms"] < 25
    # Without warm-up the slow calls are timed and dominate the median.
    cold = measure_latency(SlowStart(slow_calls=4), ["a"] * 6, warmup=0)
    assert cold["latency_ms"] > 25


def test_empty_texts_are_refused() -> None:
    with pytest.raises(ValueError):
        measure_latency(SlowStart(0), [])
    with pytest.raises(ValueError):
        measure_throughput(SlowStart(0), [])


def test_thread_count_is_set_and_restored() -> None:
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    seen = []
    with torch_threads(target):
        seen.append(torch.get_num_threads())
    assert seen == [target]
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(target):
        raise RuntimeError("restored even after an error")
    assert torch.get_num_threads() == before


def test_measurements_run_under_the_requested_threads() -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    def predict(texts: list[str]) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return np.zeros(len(texts))

    measure_speed(predict, ["a", "b"], ["a"] * 10, threads=1, warmup=1, batch_size=4)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before


def test_throughput_counts_texts_in_batches() -> None:
    predict = SlowStart(slow_calls=1, slow_s=0.2, fast_s=0.01)
    texts = [f"t{i}" for i in range(10)]
    rate = measure_throughput(predict, texts, batch_size=4)
    # One untimed warm-up batch (the slow one), then 3 batches of 4, 4 and 2 texts.
    assert [len(call) for call in predict.calls] == [4, 4, 4, 2]
    # 10 texts in about 3 * 10 ms: far above what the slow warm-up would allow (< 50 texts/s).
    assert 100 < rate < 10 / 0.03 * 1.01


def test_measure_speed_reports_all_three_figures() -> None:
    speed = measure_speed(SlowStart(0), ["a", "b"], ["a"] * 8, warmup=1, batch_size=4)
    assert set(speed) == {"latency_ms", "latency_p90_ms", "texts_per_s"}
    assert all(value > 0 for value in speed.values())
