"""Size, CPU latency and throughput, measured the same way for every model.

A model is measured through a ``predict(texts) -> toxic probabilities`` function that starts from
raw strings, so tokenization (and lemmatization, for the classical pipeline) is part of the cost,
as it is in deployment. Warm-up calls are excluded; the thread count is fixed so that numbers
from different models (and different runs) are comparable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

Predict = Callable[[list[str]], np.ndarray]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` PyTorch intra-op threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_latency(
    predict: Predict, texts: Sequence[str], warmup: int = 5, repeats: int = 1, threads: int = 1
) -> dict[str, float]:
    """Milliseconds to classify one text (batch 1): median and 90th percentile over ``texts``.

    Each text is classified ``repeats`` times; the first ``warmup`` calls are not timed.
    """
    if not texts:
        raise ValueError("measure_latency needs at least one text")
    times = []
    with torch_threads(threads):
        for text in list(texts)[:warmup]:
            predict([text])
        for _ in range(repeats):
            for text in texts:
                start = time.perf_counter()
                predict([text])
                times.append((time.perf_counter() - start) * 1000)
    return {
        "latency_ms": statistics.median(times),
        "latency_p90_ms": float(np.percentile(times, 90)),
    }


def measure_throughput(
    predict: Predict, texts: Sequence[str], batch_size: int = 64, threads: int = 1
) -> float:
    """Texts per second when classifying ``texts`` in batches of ``batch_size``.

    One batch is run first as a warm-up and not timed.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("measure_throughput needs at least one text")
    batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]
    with torch_threads(threads):
        predict(batches[0])
        start = time.perf_counter()
        for batch in batches:
            predict(batch)
        elapsed = time.perf_counter() - start
    return len(texts) / elapsed


def measure_speed(
    predict: Predict, latency_texts: Sequence[str], throughput_texts: Sequence[str],
    threads: int = 1, warmup: int = 5, repeats: int = 1, batch_size: int = 64,
) -> dict[str, float]:
    """:func:`measure_latency` and :func:`measure_throughput` of one model, under one setting.

    Returns ``latency_ms``, ``latency_p90_ms`` (batch 1) and ``texts_per_s`` (batch
    ``batch_size``), so that every row of a comparison is measured by the same calls.
    """
    speed = measure_latency(predict, latency_texts, warmup=warmup, repeats=repeats,
                            threads=threads)
    speed["texts_per_s"] = measure_throughput(predict, throughput_texts, batch_size=batch_size,
                                              threads=threads)
    return speed
