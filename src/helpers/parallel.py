"""Independent training runs (one model over several seeds) in parallel worker processes.

On a CPU, the book's small networks gain little from a second thread: two runs at a time, each
in its own process with one thread, take about half the time of the same runs one after the
other with two threads each (and two processes with two threads each on two cores contend and
run several times slower). On a GPU one run at a time in this process is best.
:func:`run_parallel` chooses; a run's figures depend on its arguments, its seed and the number
of threads it ran with, not on which process ran it (tested: runs in this process with one
thread and the same runs in two workers give identical predictions). A second thread can sum
in another order (chapter 4's CNN does), which changes the last bits and, over many steps, the
figures: a chapter run with more threads than the one its figures came from can get slightly
different ones.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .training import pick_device

logger = logging.getLogger(__name__)


def parallel_workers(jobs: int) -> int:
    """How many processes :func:`run_parallel` uses for ``jobs`` runs: one per CPU core on a CPU
    (each with one thread), one (this process) on a GPU, which runs one model at a time best."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if pick_device().type != "cpu":
        return 1
    return max(1, min(jobs, os.cpu_count() or 1))


def workers_for(jobs: int, workers: int | None = None) -> int:
    """How many processes :func:`run_parallel` uses for ``jobs`` runs when asked for ``workers``
    (``None``: :func:`parallel_workers`); never more than the runs, and 1 when there are none."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if jobs < 1:
        return 1
    return parallel_workers(jobs) if workers is None else min(workers, jobs)


def _one_thread_worker() -> None:
    import torch

    torch.set_num_threads(1)  # so that the workers do not contend for the cores


def run_parallel(fn: Callable[..., Any], calls: Sequence[tuple], *,
                 workers: int | None = None) -> list[Any]:
    """``[fn(*args) for args in calls]``, in that order; with more than one worker (default
    :func:`parallel_workers`) each call runs in a worker process of one thread. ``fn`` must be a
    module-level function and its arguments picklable (workers are fresh interpreters: the
    "spawn" start method, the same on Linux, macOS and Windows)."""
    workers = workers_for(len(calls), workers)
    if not calls:
        return []
    if workers == 1:
        return [fn(*args) for args in calls]
    logger.info("%d runs in %d processes of one thread each", len(calls), workers)
    # No progress bars in the workers (several bars would interleave in a notebook's output):
    # tqdm reads TQDM_DISABLE when a worker imports it, from the environment it inherits.
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_one_thread_worker) as pool:
            futures = [pool.submit(fn, *args) for args in calls]
            return [future.result() for future in futures]
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous
