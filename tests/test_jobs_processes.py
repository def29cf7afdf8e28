"""Jobs owned by another driver process (tests/jobdriver.py): killed owners, outside cancels, stored jobs as futures.

The owner runs a job on RxLocalSeq with a private job store (``share_dir``);
this process sees it only through the store, as a user's second Python would.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading

import jobtasks
from helpers import SLOW_TASKS, TESTS, child_env, eventually, job_dirs, python, record_of

from rxspark import RxJobError, StoredJob, rx_cancel_job, rx_cleanup_jobs, rx_get_job_status, rx_get_jobs


def driver(*args):
    """Start tests/jobdriver.py (a process that owns a job on RxLocalSeq)."""
    return subprocess.Popen(
        [sys.executable, os.path.join(TESTS, "jobdriver.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


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
