"""Worker-process faults on the local pool (RxLocalParallel) and on a caller's process pool.

A crashed worker process is an infrastructure fault: the chunk runs again
(up to ``rx_options()["max_chunk_attempts"]``, 4) with the same numbers.
Only the chunk whose process died is charged an attempt: chunks that were
merely queued, or whose process the broken pool stopped, are retried for free.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from rxspark import RxError, RxForeachDoPar, RxWorkerLostError, rx_elem_arg, rx_exec

from . import faults
from .conftest import eventually

N = 12


@pytest.mark.parametrize("how", ["segv", "exit"])
def test_a_crash_on_the_first_attempt_is_retried_with_identical_results(localpar, log_dir, how):
    kwargs = dict(marker_dir=log_dir, how=how, task_chunk_size=2, rng_seed=2024)
    disturbed = rx_exec(faults.crash_first_attempt, rx_elem_arg(range(N)), compute_context=localpar, **kwargs)
    assert sorted(os.listdir(log_dir)) == ["crashed-1", "crashed-5", "crashed-9"]  # three crashes happened
    reference = rx_exec(faults.crash_first_attempt, rx_elem_arg(range(N)), **kwargs)  # RxLocalSeq, no crash now
    assert disturbed == reference
    assert [x for x, _ in disturbed] == list(range(N))


def test_more_crashes_than_attempts_in_one_job_still_succeed_when_each_chunk_crashes_once(localpar, log_dir):
    """Six chunks each lose their worker once: six pool breaks, but no chunk died on 4 attempts."""
    kwargs = dict(marker_dir=log_dir, every=2, how="exit", task_chunk_size=1, rng_seed=7)
    disturbed = rx_exec(faults.crash_first_attempt, rx_elem_arg(range(N)), compute_context=localpar, **kwargs)
    assert len(os.listdir(log_dir)) == N // 2
    assert disturbed == rx_exec(faults.crash_first_attempt, rx_elem_arg(range(N)), **kwargs)


@pytest.mark.parametrize("how", ["segv", "exit"])
def test_a_crash_on_every_attempt_fails_naming_the_chunk(localpar, how):
    began = time.monotonic()
    with pytest.raises(RxWorkerLostError) as info:
        rx_exec(faults.crash_always, rx_elem_arg(range(N)), bad=5, how=how, task_chunk_size=1, compute_context=localpar)
    assert time.monotonic() - began < 60
    message = str(info.value)
    assert "chunk 5 (tasks 5..5)" in message, message
    assert "worker process died" in message and "4 attempts" in message
    # The pool recovers: the next job runs.
    assert rx_exec(faults.echo, rx_elem_arg(range(4)), compute_context=localpar) == [((i,), {}) for i in range(4)]


def test_a_broken_process_pool_of_the_caller_is_an_rx_error_naming_the_chunk():
    """RxForeachDoPar cannot repair an executor it does not own; it says which chunk lost its worker."""
    with ProcessPoolExecutor(2) as executor:
        cc = RxForeachDoPar(executor)
        with pytest.raises(RxWorkerLostError) as info:
            rx_exec(faults.crash_always, rx_elem_arg(range(4)), bad=2, how="exit", task_chunk_size=1, compute_context=cc)
    assert isinstance(info.value, RxError)
    assert "chunk" in str(info.value) and "ProcessPoolExecutor" in str(info.value)


def test_crashes_of_one_job_are_not_charged_to_another_job_on_the_same_pool(localpar, log_dir, jobs):
    """Job A's chunk kills its worker on every attempt (4 pool breaks); job B, in flight the whole time,
    loses its running chunks with each break but completes, with the right results."""
    b = rx_exec(faults.seeded_work, rx_elem_arg(range(12)), log_dir=log_dir, seconds=0.6, task_chunk_size=1, rng_seed=4,
                compute_context=localpar, wait=False)
    jobs.append(b)
    eventually(lambda: faults.events(log_dir, "start"), what="job B to start")
    with pytest.raises(RxWorkerLostError, match=r"chunk 1 \(tasks 1..1\)"):
        rx_exec(faults.crash_always, rx_elem_arg(range(3)), bad=1, how="exit", task_chunk_size=1, compute_context=localpar)
    reference = rx_exec(faults.seeded_work, rx_elem_arg(range(12)), log_dir=log_dir, seconds=0, task_chunk_size=1, rng_seed=4)
    assert b.result(timeout=120) == reference
