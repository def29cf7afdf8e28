"""Infrastructure faults on a two-executor Spark cluster (local-cluster, spark.task.maxFailures 4).

* an executor JVM killed in the middle of a job: the job completes with the
  numbers of an undisturbed run, and no task is lost or delivered twice;
* a Python worker that segfaults on its first attempt is retried with the
  same numbers; one that dies on every attempt fails the job, in bounded time,
  with an RxError naming the chunk and saying the worker died;
* a task that never ends is canceled and its executors are free again;
* large results (1 GB in all) arrive intact.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from rxspark import RxError, RxLocalSeq, RxWorkerLostError, rx_elem_arg, rx_exec

from . import faults
from .conftest import eventually, executor_jvms, pid_alive

pytestmark = [pytest.mark.spark, pytest.mark.cluster]


def wait_for_executors(cc, count=2, timeout=90):
    """Both executors registered (a killed one is relaunched by its worker)."""
    sc = cc.spark_context
    eventually(
        lambda: sc._jsc.sc().getExecutorIds().size() >= count and len(executor_jvms(sc.applicationId)) >= count,
        timeout=timeout,
        what=f"{count} executors",
    )


# ------------------------------------------------------------------ a lost executor


def test_an_executor_killed_mid_job_loses_and_duplicates_nothing(spark_cluster, log_dir, tmp_path, jobs):
    cc = spark_cluster
    wait_for_executors(cc)
    app = cc.spark_context.applicationId
    n, victim, after = 40, 12, 8
    delivered = []
    job = rx_exec(
        faults.seeded_work, rx_elem_arg(range(n)), log_dir=log_dir, seconds=0.3, victim=victim,
        task_chunk_size=1, rng_seed=31, compute_context=cc, wait=False, callback=delivered.append,
    )
    jobs.append(job)

    def victim_running():
        starts = [e for e in faults.events(log_dir, "start") if e["task"] == victim]
        return starts and job.progress()[0] >= after and starts[0]

    # Deterministic: kill the JVM that runs the victim (blocked on its first attempt) once 8 results are in.
    first = eventually(victim_running, timeout=90, what=f"task {victim} to start after {after} results")
    killed = first["jvm"]
    assert killed in executor_jvms(app), f"task {victim} did not run in an executor JVM of {app}: {first}"
    os.kill(killed, signal.SIGKILL)
    results = job.result(timeout=180)

    reference_log = tmp_path / "reference"
    reference_log.mkdir()
    reference = rx_exec(
        faults.seeded_work, rx_elem_arg(range(n)), log_dir=str(reference_log), seconds=0, task_chunk_size=1,
        rng_seed=31, compute_context=RxLocalSeq(),
    )
    assert results == reference  # bit-identical draws
    assert sorted(x for x, _ in delivered) == list(range(n))  # every task delivered exactly once

    starts, dones = faults.events(log_dir, "start"), faults.events(log_dir, "done")
    for task in range(n):
        task_starts = [e for e in starts if e["task"] == task]
        task_dones = [e for e in dones if e["task"] == task]
        if task == victim:
            # The killed attempt, then one retry in another JVM that completed.
            assert sorted(e["attempt"] for e in task_starts) == [0, 1], task_starts
            assert [e["jvm"] for e in task_starts if e["attempt"] == 0] == [killed]
            assert [(e["attempt"], e["jvm"] != killed) for e in task_dones] == [(1, True)]
        else:
            assert len(task_starts) == 1 and len(task_dones) == 1, (task, task_starts, task_dones)
    wait_for_executors(cc)  # the worker relaunched an executor: the cluster is whole again
    assert killed not in executor_jvms(app)


# ------------------------------------------------------------------ crashed Python workers


def test_a_segfault_on_the_first_attempt_is_retried_with_identical_results(spark_cluster, log_dir, tmp_path):
    kwargs = dict(task_chunk_size=2, rng_seed=99, how="segv")
    disturbed = rx_exec(faults.crash_first_attempt, rx_elem_arg(range(12)), marker_dir=log_dir, compute_context=spark_cluster, **kwargs)
    assert sorted(os.listdir(log_dir)) == ["crashed-1", "crashed-5", "crashed-9"]  # three workers died
    calm = tmp_path / "calm"
    calm.mkdir()
    for x in (1, 5, 9):
        (calm / f"crashed-{x}").touch()  # nothing crashes in the reference run
    assert disturbed == rx_exec(faults.crash_first_attempt, rx_elem_arg(range(12)), marker_dir=str(calm), **kwargs)


@pytest.mark.parametrize("how", ["segv", "exit"])
def test_a_worker_dying_on_every_attempt_fails_the_job_in_bounded_time(spark_cluster, how):
    began = time.monotonic()
    with pytest.raises(RxWorkerLostError) as info:
        rx_exec(faults.crash_always, rx_elem_arg(range(8)), bad=5, how=how, task_chunk_size=2, compute_context=spark_cluster)
    assert time.monotonic() - began < 90
    message = str(info.value)
    assert isinstance(info.value, RxError)
    assert "chunk 2 (tasks 4..5)" in message, message
    assert "Python worker process died on each of 4 attempts (spark.task.maxFailures)" in message, message
    assert "Python worker exited unexpectedly" in message, message  # Spark's own reason, not py4j's wrapper line
    assert rx_exec(faults.echo, rx_elem_arg(range(3)), compute_context=spark_cluster) == [((i,), {}) for i in range(3)]


# ------------------------------------------------------------------ cancel


def test_canceling_a_task_that_never_ends_frees_the_executors(spark_cluster, log_dir, jobs):
    cc = spark_cluster
    sc = cc.spark_context
    job = rx_exec(faults.forever, rx_elem_arg(range(6)), log_dir=log_dir, task_chunk_size=1, compute_context=cc, wait=False)
    jobs.append(job)
    running = eventually(lambda: len(faults.events(log_dir, "start")) >= 2 and faults.events(log_dir, "start"), what="two endless tasks")
    assert job.cancel() is True
    assert job.wait_done(30) == "canceled"
    # Both slots are free again: the next job runs (it needs both of them to finish quickly).
    began = time.monotonic()
    follow_up = rx_exec(faults.echo, rx_elem_arg(range(4)), task_chunk_size=1, compute_context=cc, wait=False)
    jobs.append(follow_up)
    assert follow_up.result(timeout=60) == [((i,), {}) for i in range(4)]
    assert time.monotonic() - began < 60
    # Spark killed the endless tasks' Python workers; no job of the group is active.
    for event in running:
        eventually(lambda pid=event["pid"]: not pid_alive(pid), timeout=30, what=f"worker {event['pid']} to be killed")
    group_jobs = sc.statusTracker().getJobIdsForGroup(job.job_id)
    assert group_jobs and not set(group_jobs) & set(sc.statusTracker().getActiveJobsIds())
    assert faults.events(log_dir, "done") == []
    assert len(faults.events(log_dir, "start")) < 6  # the later chunks never started


# ------------------------------------------------------------------ large results


def test_large_results_arrive_intact(spark_cluster):
    n, size = 20, 50_000_000  # 1 GB in all, below spark.driver.maxResultSize (1g)
    results = rx_exec(faults.big_blob, rx_elem_arg(range(n)), nbytes=size, task_chunk_size=1, compute_context=spark_cluster)
    assert [i for i, _, _ in results] == list(range(n))
    for _, digest, blob in results:
        assert len(blob) == size and hashlib.sha256(blob).hexdigest() == digest
    assert len({digest for _, digest, _ in results}) == n
