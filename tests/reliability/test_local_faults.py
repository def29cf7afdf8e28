"""Worker-process faults on the local pool (RxLocalParallel) and on a caller's process pool.

A crashed worker process is an infrastructure fault: the chunk runs again
(up to ``rx_options()["max_chunk_attempts"]``, 4) with the same numbers.
Only the chunk whose process died is charged an attempt: chunks that were
merely queued, or whose process the broken pool stopped, are retried for free.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from rxspark import RxError, RxForeachDoPar, RxLocalParallel, RxWorkerLostError, rx_elem_arg, rx_exec

from . import faults
from .conftest import child_env, eventually, pid_alive, run_child

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


# ------------------------------------------------------------------ private directories and pools of unclosed contexts


def private_dirs(where) -> list[str]:
    return sorted(os.path.join(where, name) for name in os.listdir(where) if name.startswith("rxspark-"))


def test_an_unclosed_context_leaves_no_private_directory_or_workers_once_collected(tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where rxspark's private directories go
    cc = RxLocalParallel(2)
    pids = {pid for pid, _ in rx_exec(faults.pid_of, rx_elem_arg(range(4)), task_chunk_size=1, compute_context=cc)}
    made = private_dirs(temp)
    assert len(made) == 1 and os.getpid() not in pids
    del cc
    gc.collect()
    assert private_dirs(temp) == [], "the private directory outlived its garbage-collected context"
    eventually(lambda: not any(pid_alive(pid) for pid in pids), timeout=30, what="the collected context's workers to exit")


UNCLOSED = """\
import os, tempfile
import rxspark
from rxspark import rx_elem_arg, rx_exec

rxspark.rx_options(share_dir=os.environ["RX_STORE"])
cc = rxspark.RxLocalParallel(2)
print("RESULTS", rx_exec(abs, rx_elem_arg([-1, -2, -3]), compute_context=cc))
for name in os.listdir(tempfile.gettempdir()):
    if name.startswith("rxspark-"):
        print("PRIVATE", os.path.join(tempfile.gettempdir(), name))
"""


def test_a_script_that_never_closes_its_context_leaves_no_private_directory(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = tmp_path / "unclosed.py"
    script.write_text(UNCLOSED)
    proc = run_child([str(script)], timeout=120, env=child_env(TMPDIR=str(temp), RX_STORE=str(tmp_path / "store")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RESULTS [1, 2, 3]" in proc.stdout, proc.stdout
    printed = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("PRIVATE ")]
    assert len(printed) == 1, proc.stdout  # the job made one while it ran
    assert not os.path.exists(printed[0]), f"{printed[0]} outlived the interpreter that made it"
    assert private_dirs(temp) == []
