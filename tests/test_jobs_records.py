"""Job records in the store: missing and bad ids, corrupted records, cleanup rules, what a record keeps.

Jobs run on the default context (RxLocalSeq) with a private job store
(``share_dir``); waits are polls with a deadline.
"""

from __future__ import annotations

import os

import jobtasks
import pytest
import tasks
from helpers import SLOW_TASKS, eventually, job_dirs, python, record_of, settled

import rxspark
from rxspark import (
    RxJobError,
    rx_cancel_job,
    rx_cleanup_jobs,
    rx_elem_arg,
    rx_exec,
    rx_get_job_output,
    rx_get_job_results,
    rx_get_job_status,
    rx_get_jobs,
    rx_wait_for_job,
)
from rxspark.jobs import store as job_store


def stop(job, log=None):
    """Cancel ``job`` and wait until none of its tasks runs in this process any more.

    A task still running in this process while the next test starts would
    capture that test's output (and survive pytest's stream switches).
    """
    job.cancel()
    if job._thread is not None:
        job._thread.join(timeout=30)
        assert not job._thread.is_alive()
    if log is not None:
        settled(log)


def test_missing_job(share_dir):
    ghost = "rx-20000101-000000-abcdef"
    assert rx_get_job_status(ghost) == "missing"
    with pytest.raises(RxJobError, match=f"no job '{ghost}'.*{share_dir}"):
        rx_get_job_results(ghost)
    with pytest.raises(RxJobError, match=ghost):
        rx_get_job_output(ghost)
    with pytest.raises(RxJobError, match=ghost):
        rx_cancel_job(ghost)
    with pytest.raises(RxJobError, match=ghost):
        rx_wait_for_job(ghost, timeout=1)
    assert rx_cleanup_jobs(ghost) == []
    assert rx_get_jobs() == {}


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 200])
def test_a_bad_job_id_is_an_argument_error(bad, share_dir):
    with pytest.raises(rxspark.RxArgumentError, match="is not a job id"):
        rx_get_job_status(bad)


def test_bad_arguments(share_dir):
    with pytest.raises(rxspark.RxArgumentTypeError, match="job must be an RxJob or a job id"):
        rx_get_job_status(42)
    with pytest.raises(rxspark.RxArgumentError, match="unknown state"):
        rx_get_jobs(states=["done"])
    with pytest.raises(rxspark.RxArgumentTypeError, match="compute_context"):
        rx_get_jobs(compute_context="local")
    with pytest.raises(rxspark.RxArgumentTypeError, match="force"):
        rx_cleanup_jobs([], force="yes")


def test_a_corrupted_record_is_a_clear_error(share_dir):
    job = rx_exec(tasks.add, rx_elem_arg(range(3)), wait=False, auto_cleanup=False)
    job.result(timeout=60)
    del job  # a fresh process would not have the job object either
    (job_id,) = job_dirs(share_dir)
    path = os.path.join(share_dir, job_id, "record.json")
    with open(path, "w") as f:
        f.write("{not json")
    for call in (rx_get_job_status, rx_get_job_results, rx_get_job_output):
        with pytest.raises(RxJobError, match=f"{job_id} at {path} is corrupted"):
            call(job_id)
    with pytest.warns(RuntimeWarning, match="corrupted"):
        assert rx_get_jobs() == {}
    with pytest.warns(RuntimeWarning, match="force=True"):
        assert rx_cleanup_jobs(job_id) == []
    assert rx_cleanup_jobs(job_id, force=True) == [job_id]
    assert job_dirs(share_dir) == [] and not os.path.exists(os.path.dirname(path))


def test_unretrieved_results_are_kept_unless_forced(share_dir):
    job = rx_exec(tasks.add, rx_elem_arg(range(3)), wait=False, auto_cleanup=False)
    assert job.wait_done(60) == "finished"
    with pytest.warns(RuntimeWarning, match="never retrieved"):
        assert rx_cleanup_jobs(rx_get_jobs()) == []
    assert rx_cleanup_jobs(rx_get_jobs(), force=True) == [job.job_id]
    assert rx_get_jobs() == {}
    assert job.result() == [0, 1, 2]  # the job object still has them


def test_running_jobs_are_not_cleaned_up(share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), log, wait=False)
    try:
        with pytest.warns(RuntimeWarning, match="cancel it first"):
            assert rx_cleanup_jobs(job, force=True) == []
    finally:
        stop(job)
    assert rx_cleanup_jobs(job) == [job.job_id]


def test_a_waiting_job_without_auto_cleanup_keeps_a_record(share_dir):
    assert rx_exec(tasks.add, rx_elem_arg(range(3)), 5, auto_cleanup=False) == [5, 6, 7]
    (job_id,) = rx_get_jobs()
    record = record_of(share_dir, job_id)
    assert record["status"] == "finished" and record["wait"] is True and record["results"] is None
    with pytest.raises(RxJobError, match="waiting job"):
        rx_get_job_results(job_id)
    assert rx_cleanup_jobs(job_id) == [job_id]  # its results went to the caller: nothing to lose


def test_a_failed_job_stores_its_exception(share_dir):
    job = rx_exec(tasks.fail_on, rx_elem_arg(range(4)), continue_on_failure=False, wait=False, auto_cleanup=False)
    assert job.wait_done(60) == "failed"
    assert record_of(share_dir, job.job_id)["error"]["type"] == "RxTaskError"
    job_id = job.job_id
    out = python(
        """
        import sys, rxspark
        try:
            rxspark.rx_get_job_results(sys.argv[2], share_dir=sys.argv[1])
        except rxspark.RxTaskError as exc:
            print(exc.task_index, exc.exc_type, type(exc.__cause__).__name__)
        """,
        share_dir,
        job_id,
    )
    assert out.split() == ["2", "ValueError", "ValueError"]


def test_an_auto_seed_is_recorded_and_replays(share_dir):
    job = rx_exec(tasks.draw, rx_elem_arg([2] * 4), rng_seed="auto", wait=False, auto_cleanup=False)
    results = job.result(timeout=60)
    seed = record_of(share_dir, job.job_id)["rng_seed"]
    assert seed == job.rng_seed and isinstance(seed, int)
    assert rx_exec(tasks.draw, rx_elem_arg([2] * 4), rng_seed=seed) == results


def test_progress_is_recorded_while_a_job_runs(share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(12)), log, seconds=0.25, task_chunk_size=1, wait=False)
    try:
        done = eventually(lambda: record_of(share_dir, job.job_id)["progress"][0], what="recorded progress")
        assert 0 < done < 12 and record_of(share_dir, job.job_id)["status"] == "running"
    finally:
        stop(job)


def test_wait_timeout(share_dir, tmp_path):
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), str(tmp_path / "log"), wait=False)
    try:
        with pytest.raises(TimeoutError, match=job.job_id):
            rx_wait_for_job(job, timeout=0.1)
    finally:
        stop(job)


def test_cleanup_hooks_get_the_job_id_and_share_dir(share_dir):
    calls = []
    hook = job_store.register_cleanup_hook(lambda job_id, where: calls.append((job_id, where)))
    try:
        job = rx_exec(tasks.add, rx_elem_arg(range(2)), wait=False)
        assert rx_get_job_results(job) == [0, 1]
        assert calls == [(job.job_id, share_dir)]
    finally:
        job_store.unregister_cleanup_hook(hook)
