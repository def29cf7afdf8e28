"""User errors and unserializable results, on every context of contexts.py whose tasks run in worker processes.

That is the local pool, the two-executor Spark cluster and Spark Connect;
Spark local[2] is left out, as the cluster covers classic Spark. Each test
gets a pool of its own (crash tests break pools on purpose); Spark contexts
are the session's shared ones (one SparkContext per process).

User exceptions are data: never retried by any engine, reported per task
with the remote traceback, one warning per job. With
``continue_on_failure=False`` the first failure is raised and the rest of the
job is canceled: running chunks are stopped, later ones never start.
"""

from __future__ import annotations

import random
import time
import warnings

import contexts
import pytest

from rxspark import RxTaskError, RxTaskFailureWarning, rx_elem_arg, rx_exec
from rxspark.errors import RxPayloadError

from . import faults
from .conftest import eventually, pid_alive


@pytest.fixture(params=contexts.params(runs_in="processes", excluding=("spark-local",)))
def context(request):
    entry = contexts.CONTEXTS[request.param]
    if entry.kind == "spark":
        yield contexts.shared(entry.name)
        return
    cc = entry.factory()
    yield cc
    cc.close()


def test_k_of_n_failing_tasks_are_reported_once_and_never_retried(context, log_dir):
    n, chunk = 30, 4
    bad = sorted(random.Random(8).sample(range(n), 5))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = rx_exec(faults.fail_some, rx_elem_arg(range(n)), bad=bad, log_dir=log_dir, task_chunk_size=chunk, compute_context=context)
    assert len([w for w in seen if issubclass(w.category, RxTaskFailureWarning)]) == 1
    errors = {i: v for i, v in enumerate(out) if isinstance(v, RxTaskError)}
    assert sorted(errors) == bad
    for i, error in errors.items():
        assert (error.task_index, error.chunk_index, error.exc_type) == (i, i // chunk, "ValueError")
        assert error.message == f"task {i} refuses to work"
        assert 'raise ValueError(f"task {x} refuses to work")  # THE FAILING LINE' in error.remote_traceback
        assert "faults.py" in error.remote_traceback and error.node
    assert [v for i, v in enumerate(out) if i not in errors] == [i * i for i in range(n) if i not in errors]
    # Every task ran exactly once: no engine retried the user's errors.
    assert faults.per_task(log_dir, "start") == {i: 1 for i in range(n)}


def test_the_first_failure_is_raised_and_the_rest_of_the_job_is_canceled(context, log_dir):
    n = 30  # 8 + 28 * 0.4 s of work on two slots: far longer than the failure takes to arrive
    with pytest.raises(RxTaskError) as info:
        rx_exec(faults.fail_first_then_slow, rx_elem_arg(range(n)), log_dir=log_dir, task_chunk_size=1,
                continue_on_failure=False, compute_context=context)
    assert info.value.task_index == 0 and isinstance(info.value.__cause__, RuntimeError)
    # Task 0 failed while task 1 (8 s) ran: its process is stopped, and task 1 never completes.
    (slow,) = [e for e in faults.events(log_dir, "start") if e["task"] == 1]
    eventually(lambda: not pid_alive(slow["pid"]), timeout=20, what="the process running task 1 to be stopped")
    assert 1 not in faults.per_task(log_dir, "done")
    started = faults.per_task(log_dir, "start")
    assert len(started) < n // 2, f"{len(started)} of {n} tasks started after the failure"
    assert max(started.values()) == 1


def test_an_unserializable_result_fails_only_its_task(context):
    with pytest.warns(RxTaskFailureWarning, match="2 of 9 tasks"):
        out = rx_exec(faults.lock_result, rx_elem_arg(range(9)), bad=(1, 4), task_chunk_size=3, compute_context=context)
    assert [out[i] for i in (0, 2, 3, 5, 6, 7, 8)] == [0, 2, 3, 5, 6, 7, 8]  # same chunks, other tasks fine
    for i in (1, 4):
        error = out[i]
        assert isinstance(error, RxTaskError) and error.task_index == i and error.chunk_index == i // 3
        assert "_thread.lock" in error.message and "cannot be serialized" in error.message


def test_an_unserializable_result_inside_a_container_names_the_container_and_the_cause(context):
    with pytest.warns(RxTaskFailureWarning):
        out = rx_exec(faults.unpicklable_in, rx_elem_arg(range(3)), compute_context=context)
    assert out[0] == 0 and out[2] == 2
    assert "builtins.dict" in out[1].message and "_thread.lock" in out[1].message


@pytest.mark.parametrize("kind, exc_type", [("bad-str", "BadStr"), ("base-exception", "Abort")])
def test_unusual_user_exceptions_are_task_errors_and_run_once(context, log_dir, kind, exc_type):
    """An exception whose str() fails, or one outside Exception, is still the user's error: data, not a retry."""
    with pytest.warns(RxTaskFailureWarning):
        out = rx_exec(faults.raise_odd, rx_elem_arg(range(4)), log_dir=log_dir, kind=kind, task_chunk_size=2, compute_context=context)
    assert [out[i] for i in (0, 2, 3)] == [0, 2, 3]
    assert isinstance(out[1], RxTaskError) and out[1].exc_type == exc_type and out[1].task_index == 1
    assert exc_type in out[1].remote_traceback
    assert faults.per_task(log_dir, "start") == {0: 1, 1: 1, 2: 1, 3: 1}


def test_a_result_the_driver_cannot_load_fails_only_its_chunk(context):
    with pytest.warns(RxTaskFailureWarning, match="2 of 6 tasks"):
        out = rx_exec(faults.unloadable_in, rx_elem_arg(range(6)), bad=(4,), task_chunk_size=2, compute_context=context)
    assert out[:4] == [0, 1, 2, 3]
    for i in (4, 5):
        assert isinstance(out[i], RxTaskError) and out[i].exc_type == "RxResultDeserializationError"
        assert "chunk 2 (tasks 4..5)" in out[i].message and "ValueError" in out[i].message
    with pytest.raises(RxTaskError, match="cannot be loaded"):
        rx_exec(faults.unloadable_in, rx_elem_arg(range(6)), bad=(4,), task_chunk_size=2, continue_on_failure=False,
                compute_context=context)


def test_shared_arguments_the_workers_cannot_load_fail_the_job_once_without_retries(context):
    """A payload that pickles on the driver but not back on a worker (a module missing there) is the
    user's problem: no task can run, so the job fails once with RxPayloadError (whatever
    continue_on_failure says), and Spark must not retry it as a lost worker."""
    began = time.monotonic()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(RxPayloadError, match="cannot be loaded on node .*ValueError") as info:
            rx_exec(faults.echo, faults.Unloadable(), rx_elem_arg(range(4)), task_chunk_size=2, compute_context=context)
    assert time.monotonic() - began < 30
    assert "No task ran" in str(info.value) and info.value.module is None
    assert not [w for w in seen if issubclass(w.category, RxTaskFailureWarning)]
    assert rx_exec(faults.echo, rx_elem_arg(range(2)), compute_context=context) == [((0,), {}), ((1,), {})]


def test_per_call_arguments_the_workers_cannot_load_fail_only_their_tasks_without_retries(context):
    """Per-call arguments travel with their chunk: only that chunk's tasks fail, said per task."""
    began = time.monotonic()
    with pytest.warns(RxTaskFailureWarning):
        out = rx_exec(faults.echo, rx_elem_arg([1, faults.Unloadable(), 3, 4]), task_chunk_size=2, compute_context=context)
    assert time.monotonic() - began < 30
    assert [i for i, v in enumerate(out) if isinstance(v, RxTaskError)] == [0, 1]  # chunk 0 carries it
    for i in (0, 1):
        assert out[i].exc_type == "RxPayloadError" and "cannot be loaded on node" in out[i].message
        assert "ValueError" in out[i].message
    assert out[2:] == [((3,), {}), ((4,), {})]
