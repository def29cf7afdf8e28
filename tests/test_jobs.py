"""Non-blocking jobs and job management, on every compute context and across processes.

Every test uses a private job store under tmp_path (``rx_options(share_dir=...)``
for the shared ``cc`` contexts), real worker processes and real driver
processes; waits are polls with a deadline, never bare sleeps.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time

import cloudpickle
import jobtasks
import pytest
import tasks
from helpers import eventually

import rxspark
from rxspark import (
    RxJob,
    RxJobCanceledError,
    RxJobError,
    StoredJob,
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

cloudpickle.register_pickle_by_value(jobtasks)

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
SLOW_TASKS = 40  # x 0.5 s: a job that would take 20 s (10 s on two workers) if not canceled


# ------------------------------------------------------------------ helpers


def settled(log, quiet=1.0, timeout=20.0):
    """The number of tasks that started, once it has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    count, since = jobtasks.started(log), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"tasks still start {timeout} s after the job was canceled"
        time.sleep(0.05)
        now = jobtasks.started(log)
        if now != count:
            count, since = now, time.monotonic()
    return count


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


def python(code, *args, timeout=120):
    """Run ``code`` in a fresh interpreter that can import rxspark and the test helpers."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def driver(*args):
    """Start tests/jobdriver.py (a process that owns a job on RxLocalSeq)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, os.path.join(TESTS, "jobdriver.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def job_dirs(share_dir):
    return sorted(job_store.store_for(share_dir).job_ids())


def record_of(share_dir, job_id):
    with open(os.path.join(share_dir, job_id, "record.json")) as f:
        return json.load(f)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ------------------------------------------------------------------ every context


def test_non_blocking_job_runs_to_finished_with_the_blocking_results(cc, share_dir):
    expected = rx_exec(tasks.draw, rx_elem_arg([2] * 6), rng_seed=11, task_chunk_size=2, compute_context=cc)
    job = rx_exec(tasks.draw, rx_elem_arg([2] * 6), rng_seed=11, task_chunk_size=2, compute_context=cc, wait=False)
    assert isinstance(job, RxJob) and job.rng_seed == 11
    assert job.status() in ("queued", "running", "finished")
    assert rx_wait_for_job(job, timeout=60) == "finished"
    assert job.status() == rx_get_job_status(job) == rx_get_job_status(job.job_id) == "finished"
    assert job.progress() == (6, 6)
    record = record_of(share_dir, job.job_id)
    assert record["status"] == "finished" and record["results"] == "results.pkl"
    assert (record["rng_seed"], record["rng_kind"], record["rng_scope"]) == (11, "PCG64", "chunk")
    assert (record["n_tasks"], record["chunk_size"], record["n_chunks"]) == (6, 2, 3)
    assert record["function"] == "draw" and record["context"]["context"] == type(cc).__name__
    assert rx_get_job_results(job.job_id) == expected
    assert job_dirs(share_dir) == []  # auto_cleanup once the results were returned
    assert job.result() == expected


def test_status_is_running_while_tasks_run(cc, share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(4)), log, seconds=0.3, task_chunk_size=1, compute_context=cc, wait=False)
    eventually(lambda: jobtasks.started(log) > 0, what="the first task")
    assert rx_get_job_status(job.job_id) == "running"
    assert rx_wait_for_job(job.job_id, timeout=60) == "finished"
    assert job.result() == [0, 1, 2, 3]


def test_cancel_stops_the_work_and_the_context_stays_usable(cc, share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), log, compute_context=cc, wait=False)
    eventually(lambda: jobtasks.started(log) > 0, what="the first task")
    began = time.monotonic()
    assert rx_cancel_job(job) is True
    assert rx_wait_for_job(job, timeout=10) == "canceled"
    assert job.status() == "canceled" and job.cancelled()
    if job._thread is not None:
        job._thread.join(timeout=10)
        assert not job._thread.is_alive(), "the job's driver thread still runs after cancel()"
    assert time.monotonic() - began < 10
    assert record_of(share_dir, job.job_id)["status"] == "canceled"
    with pytest.raises(RxJobCanceledError):
        rx_get_job_results(job)
    at_cancel = jobtasks.started(log)

    assert rx_exec(tasks.add, rx_elem_arg(range(5)), 1, compute_context=cc) == [1, 2, 3, 4, 5]
    if cc.name == "RxSpark":
        # Spark kills a canceled task's Python worker only after spark.python.task.killTimeout
        # (2 s by default): a few more tasks start, then none.
        assert settled(log) < SLOW_TASKS
    else:
        # Tasks that had begun may finish; nothing new starts (one more per worker may have been on its way).
        assert settled(log) <= at_cancel + cc.parallelism()
    assert rx_cancel_job(job) is True  # canceling again is harmless


def test_wait_and_as_completed_return_when_a_running_job_is_canceled(cc, share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), log, compute_context=cc, wait=False)
    eventually(lambda: jobtasks.started(log) > 0, what="the first task")
    threading.Timer(0.2, job.cancel).start()
    began = time.monotonic()
    done, not_done = concurrent.futures.wait([job], timeout=30)
    assert done == {job} and not not_done
    assert list(concurrent.futures.as_completed([job], timeout=5)) == [job]
    # A canceled running job wakes its waiters at once, not when their timeout runs out.
    assert time.monotonic() - began < 10
    assert job.cancelled()


def test_a_second_process_lists_the_job_and_fetches_its_results(cc, share_dir):
    job = rx_exec(tasks.draw, rx_elem_arg([3] * 5), rng_seed=5, task_chunk_size=2, compute_context=cc, wait=False)
    assert job.wait_done(60) == "finished"
    out = python(
        """
        import json, sys, rxspark
        jobs = rxspark.rx_get_jobs(share_dir=sys.argv[1])
        job = jobs[sys.argv[2]]
        assert isinstance(job, rxspark.RxJob) and isinstance(job, rxspark.StoredJob), type(job)
        print(json.dumps({
            "status": rxspark.rx_get_job_status(sys.argv[2], share_dir=sys.argv[1]),
            "finished": list(rxspark.rx_get_jobs(states="finished", share_dir=sys.argv[1])),
            "seed": job.rng_seed,
            "kind": job.rng_kind,
            "results": rxspark.rx_get_job_results(sys.argv[2], share_dir=sys.argv[1]),
        }))
        """,
        share_dir,
        job.job_id,
    )
    seen = json.loads(out)
    assert seen["status"] == "finished" and seen["finished"] == [job.job_id]
    assert (seen["seed"], seen["kind"]) == (job.rng_seed, job.rng_kind) == (5, "PCG64")
    assert seen["results"] == job.result() == rx_exec(
        tasks.draw, rx_elem_arg([3] * 5), rng_seed=5, task_chunk_size=2, compute_context=cc
    )
    # The other process collected the results with auto_cleanup: the record is gone.
    assert job_dirs(share_dir) == []
    assert python("import sys, rxspark; print(rxspark.rx_get_job_status(sys.argv[2], share_dir=sys.argv[1]))", share_dir, job.job_id).strip() == "missing"


def test_a_long_waiting_job_is_visible_to_other_processes_while_it_runs(cc, share_dir, tmp_path):
    log = str(tmp_path / "log")
    outcome: list = []

    def run():
        try:
            rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), log, task_chunk_size=1, compute_context=cc)
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        (job_id,) = eventually(lambda: job_dirs(share_dir), what="the waiting job's record")
        seen = python("import sys, rxspark; print(rxspark.rx_get_job_status(sys.argv[2], share_dir=sys.argv[1]))", share_dir, job_id)
        assert seen.strip() == "running"
        assert rx_cancel_job(job_id) is True  # by id, from another thread of the owner
    finally:
        runner.join(timeout=60)
        settled(log)  # chunks canceled in a thread pool end at their next task boundary
    assert not runner.is_alive() and len(outcome) == 1 and isinstance(outcome[0], RxJobCanceledError)
    assert job_dirs(share_dir) == []  # removed once the outcome was handed out (auto_cleanup)


def test_short_waiting_jobs_write_nothing(cc, share_dir):
    assert rx_exec(tasks.add, rx_elem_arg(range(100)), 1, compute_context=cc) == list(range(1, 101))
    assert not os.path.exists(share_dir) or job_dirs(share_dir) == []


def test_job_functions_accept_ids(cc, share_dir):
    job = rx_exec(jobtasks.shout, rx_elem_arg([1, 2]), task_chunk_size=1, compute_context=cc, wait=False, auto_cleanup=False)
    assert rx_wait_for_job(job.job_id, timeout=60) == "finished"
    assert rx_get_job_output(job.job_id) == "[task 0] task says 1\n[task 1] task says 2\n"
    assert rx_get_job_results(job.job_id) == [10, 20]
    assert rx_cancel_job(job.job_id) is False  # already finished
    assert list(rx_get_jobs()) == [job.job_id]  # auto_cleanup=False: kept
    assert rx_cleanup_jobs(job.job_id) == [job.job_id]  # results were retrieved: no force needed
    assert rx_get_jobs() == {}


# ------------------------------------------------------------------ context-level wait=False


@pytest.mark.parametrize(
    "make",
    [
        lambda: rxspark.RxLocalSeq(wait=False),
        lambda: rxspark.RxLocalParallel(2, wait=False),
        lambda: rxspark.RxForeachDoPar(concurrent.futures.ThreadPoolExecutor(2), wait=False),
    ],
    ids=["RxLocalSeq", "RxLocalParallel", "RxForeachDoPar"],
)
def test_non_waiting_contexts_return_jobs_and_cancel(make, share_dir, tmp_path):
    context = make()
    try:
        log = str(tmp_path / "log")
        job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), log, compute_context=context)
        assert isinstance(job, RxJob)
        eventually(lambda: jobtasks.started(log) > 0, what="the first task")
        assert job.cancel() is True
        assert rx_wait_for_job(job, timeout=10) == "canceled"
        job2 = rx_exec(tasks.add, rx_elem_arg(range(3)), 10, compute_context=context)
        assert job2.result(timeout=60) == [10, 11, 12]
        assert settled(log) <= 1 + context.parallelism()
    finally:
        context.close()
        executor = getattr(context, "executor", None)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: rxspark.RxLocalParallel(2),
        lambda: rxspark.RxForeachDoPar(concurrent.futures.ProcessPoolExecutor(2)),
        lambda: rxspark.RxForeachDoPar(concurrent.futures.ThreadPoolExecutor(2)),
    ],
    ids=["RxLocalParallel", "RxForeachDoPar-processes", "RxForeachDoPar-threads"],
)
def test_canceling_one_job_leaves_another_on_the_same_context_alone(make, share_dir, tmp_path):
    context = make()
    try:
        doomed = rx_exec(
            jobtasks.logged_sleep, rx_elem_arg(range(SLOW_TASKS)), str(tmp_path / "log"), seconds=0.2,
            task_chunk_size=1, compute_context=context, wait=False,
        )
        other = rx_exec(tasks.draw, rx_elem_arg([2] * 8), rng_seed=1, task_chunk_size=1, compute_context=context, wait=False)
        eventually(lambda: jobtasks.started(str(tmp_path / "log")) > 0, what="the first task")
        doomed.cancel()
        assert other.wait_done(6) == "finished"
        assert other.result() == rx_exec(tasks.draw, rx_elem_arg([2] * 8), rng_seed=1, task_chunk_size=1)
    finally:
        doomed.cancel()
        other.cancel()
        context.close()
        executor = getattr(context, "executor", None)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------ other processes


def test_a_killed_driver_leaves_an_undetermined_job(share_dir, tmp_path):
    log = str(tmp_path / "log")
    owner = driver(share_dir, "nowait", SLOW_TASKS, 0.5, log, 1)
    try:
        job_id = owner.stdout.readline().strip()
        assert job_id, owner.stderr.read()
        eventually(lambda: jobtasks.started(log) > 0, what="the first task")
        eventually(lambda: record_of(share_dir, job_id)["status"] == "running", what="the running record")
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.communicate(timeout=30)
    later = python(
        """
        import json, sys, rxspark
        status = rxspark.rx_get_job_status(sys.argv[2], share_dir=sys.argv[1])
        listed = list(rxspark.rx_get_jobs(share_dir=sys.argv[1], states=["undetermined"]))
        try:
            rxspark.rx_get_job_results(sys.argv[2], share_dir=sys.argv[1])
        except rxspark.RxJobError as exc:
            error = str(exc)
        print(json.dumps({"status": status, "listed": listed, "error": error}))
        """,
        share_dir,
        job_id,
    )
    seen = json.loads(later)
    assert seen["status"] == "undetermined" and seen["listed"] == [job_id]
    assert "no longer runs it" in seen["error"] and str(owner.pid) in seen["error"]
    assert record_of(share_dir, job_id)["status"] == "running"  # what the dead owner last wrote
    stored = rx_get_jobs()[job_id]
    assert stored.done() and isinstance(stored.exception(timeout=1), RxJobError)
    assert rx_cleanup_jobs(job_id) == [job_id] and job_dirs(share_dir) == []


def test_a_killed_waiting_driver_leaves_an_undetermined_job(share_dir, tmp_path):
    log = str(tmp_path / "log")
    owner = driver(share_dir, "wait", SLOW_TASKS, 0.5, log, 1)
    try:
        (job_id,) = eventually(lambda: job_dirs(share_dir), what="the waiting job's record")
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.communicate(timeout=30)
    assert rx_get_job_status(job_id) == "undetermined"
    assert rx_cancel_job(job_id) is True  # nothing runs it: the record just says canceled now
    assert rx_get_job_status(job_id) == "canceled"


def test_cancel_from_another_process(share_dir, tmp_path):
    log = str(tmp_path / "log")
    owner = driver(share_dir, "nowait", SLOW_TASKS, 0.5, log, 0)  # auto_cleanup off: the record stays
    try:
        job_id = owner.stdout.readline().strip()
        eventually(lambda: jobtasks.started(log) > 0, what="the first task")
        job = rx_get_jobs()[job_id]
        assert isinstance(job, StoredJob) and job.status() == "running"
        assert rx_cancel_job(job_id) is True
        # The owner's monitor sees the request within about a second.
        eventually(lambda: rx_get_job_status(job_id) == "canceled", timeout=10, what="the owner to cancel")
        out, err = owner.communicate(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate(timeout=30)
    assert out.strip() == "canceled", err
    assert jobtasks.started(log) < SLOW_TASKS / 2


def test_a_stored_job_is_a_future(share_dir, tmp_path):
    log = str(tmp_path / "log")
    owner = driver(share_dir, "nowait", 4, 0.4, log, 0)
    try:
        job_id = owner.stdout.readline().strip()
        job = rx_get_jobs()[job_id]
        assert isinstance(job, StoredJob) and isinstance(job, concurrent.futures.Future)
        called = threading.Event()
        job.add_done_callback(lambda _: called.set())
        done, _ = concurrent.futures.wait([job], timeout=60)  # resolved by polling the record
        assert done == {job} and called.wait(10)
        assert job.status() == "finished" and job.progress() == (4, 4)
        assert job.result(timeout=10) == [0, 1, 2, 3]
        assert "(stored)" in repr(job) and job_id in job._repr_html_()
        owner.communicate(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate(timeout=30)
    # auto_cleanup=False: the record stays, and says the results were retrieved.
    assert record_of(share_dir, job_id)["results_retrieved"] is True
    again = rx_get_jobs()[job_id]
    assert again.done() and again.result() == [0, 1, 2, 3]


# ------------------------------------------------------------------ errors and edge cases


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


# ------------------------------------------------------------------ privacy


def test_the_store_is_private(share_dir):
    job = rx_exec(tasks.add, rx_elem_arg(range(2)), wait=False, auto_cleanup=False)
    job.result(timeout=60)
    job_dir = os.path.join(share_dir, job.job_id)
    assert mode(share_dir) == 0o700 and mode(job_dir) == 0o700
    assert sorted(os.listdir(job_dir)) == ["record.json", "results.pkl"]  # no temporary files left
    for name in os.listdir(job_dir):
        assert mode(os.path.join(job_dir, name)) == 0o600


def test_secrets_are_redacted_from_records(share_dir):
    class Described(rxspark.RxLocalSeq):
        def describe(self):
            return {
                **super().describe(),
                "spark_conf": {
                    "spark.app.name": "demo",
                    "spark.hadoop.fs.s3a.secret.key": "AKIA-SECRET",
                    "spark.authenticate.secret": "s3cr3t",
                    "nested": {"db_password": "hunter2", "port": 5432},
                },
                "conf_pairs": [("spark.ssl.keyPassword", "pw"), ("spark.master", "local[2]")],
                "API_TOKEN": "tok",
                "credentials": {"user": "someone"},
                "master": "spark://admin:hunter2@head:7077",
            }

    job = rx_exec(tasks.add, rx_elem_arg(range(2)), compute_context=Described(), wait=False, auto_cleanup=False)
    job.result(timeout=60)
    context = record_of(share_dir, job.job_id)["context"]
    text = json.dumps(context)
    for secret in ("AKIA-SECRET", "s3cr3t", "hunter2", "tok", '"pw"', "someone"):
        assert secret not in text
    conf = context["spark_conf"]
    assert conf["spark.app.name"] == "demo" and conf["nested"]["port"] == 5432
    assert conf["spark.hadoop.fs.s3a.secret.key"] == conf["nested"]["db_password"] == "***REDACTED***"
    assert context["conf_pairs"] == [["spark.ssl.keyPassword", "***REDACTED***"], ["spark.master", "local[2]"]]
    assert context["API_TOKEN"] == context["credentials"] == "***REDACTED***"
    assert context["master"] == "spark://***REDACTED***@head:7077"


def test_a_store_writable_by_others_is_refused(share_dir, tmp_path):
    os.makedirs(share_dir)
    os.chmod(share_dir, 0o777)
    with pytest.raises(RxJobError, match="writable by other users.*chmod 700"):
        rx_exec(tasks.add, 1, 2, times_to_run=1, wait=False)
    with pytest.raises(RxJobError, match="writable by other users"):
        rx_get_jobs()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to create another user's directory")
def test_a_store_owned_by_another_user_is_refused(share_dir):
    os.makedirs(share_dir, mode=0o700)
    os.chown(share_dir, 65534, 65534)
    with pytest.raises(RxJobError, match="owned by uid 65534, not by you"):
        rx_get_jobs()
    with pytest.raises(RxJobError, match="owned by uid 65534"):
        rx_exec(tasks.add, 1, 2, times_to_run=1, wait=False)
