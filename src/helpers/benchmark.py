"""Size, parameters, CPU latency and throughput, measured the same way for every model.

Size is that of the saved artifact a deployment would ship (the model with its tokenizer or
vectorizer), :func:`size_on_disk_mb`; parameters are the learned numbers, :func:`count_parameters`.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

Predict = Callable[[list[str]], np.ndarray]


def size_on_disk_mb(path: str | Path) -> float:
    """Size of a file, or of everything under a folder, in megabytes (10**6 bytes)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Nothing at {path} to measure")
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    """Learned numbers of a model: what the book reports as its "parameters".

    A PyTorch module: its parameters (all, or those that require gradients). A scikit-learn
    pipeline, by its final estimator: a logistic regression's coefficients plus intercept, a random
    forest's nodes over all its trees (each stores a split or a leaf value). A TF-IDF vocabulary is
    not counted, as a neural network's tokenizer vocabulary is not.
    """
    if isinstance(model, nn.Module):
        return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if hasattr(final, "coef_"):
        return int(final.coef_.size + np.size(final.intercept_))
    if hasattr(final, "estimators_"):
        return int(sum(tree.tree_.node_count for tree in final.estimators_))
    raise TypeError(f"Do not know how to count the parameters of {type(final).__name__}")


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
