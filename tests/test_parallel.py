"""Runs in worker processes: results in order, one thread each, no bars, environment restored."""

from __future__ import annotations

import math
import os

import pytest

from helpers.parallel import parallel_workers, run_parallel, workers_for


def worker_state(n: int) -> tuple[int, int, str | None]:
    import torch

    return n, torch.get_num_threads(), os.environ.get("TQDM_DISABLE")


def test_calls_run_in_order_in_one_thread_workers_without_bars() -> None:
    before = os.environ.get("TQDM_DISABLE")
    assert run_parallel(math.factorial, [(n,) for n in range(6)], workers=2) == [
        1, 1, 2, 6, 24, 120]
    states = run_parallel(worker_state, [(n,) for n in range(3)], workers=2)
    assert [s[0] for s in states] == [0, 1, 2] and all(s[1:] == (1, "1") for s in states)
    assert os.environ.get("TQDM_DISABLE") == before  # the parent's environment is restored
    assert run_parallel(math.factorial, [], workers=2) == []
    assert run_parallel(math.factorial, [(3,)], workers=1) == [6]  # in this process


def test_worker_counts_are_checked() -> None:
    assert 1 <= parallel_workers(3) <= 3
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        parallel_workers(0)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_parallel(math.factorial, [(1,)], workers=0)
    # what run_parallel uses: the default, or the request but never more than the runs
    assert workers_for(3) == parallel_workers(3)
    assert workers_for(3, 2) == 2 and workers_for(1, 2) == 1 and workers_for(0, 2) == 1
    with pytest.raises(ValueError, match="workers must be >= 1"):
        workers_for(3, 0)
