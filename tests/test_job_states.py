"""One state per job everywhere: job.status(), rx_get_job_status(id), rx_get_jobs() and the CLI agree
(issue 17, point 5).

The policy (rxspark/jobs/record.py): a job's record is kept until its outcome
(results, exception or cancellation) was handed out; then, with auto_cleanup,
it goes and the id reads "missing" in every process. A blocking job hands
its outcome to its rx_exec call, Ctrl-C included; a non-waiting job to
whoever collects it. auto_cleanup=False keeps every record until cleaned up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import jobtasks
import pytest
from helpers import eventually

from rxspark import (
    RxJobCanceledError,
    RxJobError,
    rx_cancel_job,
    rx_elem_arg,
    rx_exec,
    rx_get_job_results,
    rx_get_job_status,
    rx_get_jobs,
)
from rxspark.jobs import store as job_store

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get("PYTHONPATH", "")]))
SLOW = 40  # tasks of 0.5 s: a job that runs for 20 s unless canceled


def cli(*args, share_dir, timeout=120):
    return subprocess.run([sys.executable, "-m", "rxspark", *args, "--share-dir", share_dir],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def driver(share_dir, mode, n, seconds, log, auto_cleanup):
    """tests/jobdriver.py: another process that owns one job on RxLocalSeq."""
    return subprocess.Popen([sys.executable, os.path.join(TESTS, "jobdriver.py"), share_dir, mode, str(n), str(seconds),
                             log, str(auto_cleanup)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def job_dirs(share_dir):
    return sorted(job_store.store_for(share_dir).job_ids()) if os.path.isdir(share_dir) else []


def states(job_id, share_dir):
    """The job's state as rx_get_job_status(id), rx_get_jobs() and `rxspark job status` / `rxspark jobs` see it."""
    listed = rx_get_jobs(share_dir=share_dir)
    listing = cli("jobs", share_dir=share_dir).stdout
    rows = [line.split() for line in listing.splitlines() if line.startswith(job_id)]
    return {
        "by id": rx_get_job_status(job_id, share_dir=share_dir),
        "rx_get_jobs": listed[job_id].status() if job_id in listed else "missing",
        "cli status": cli("job", "status", job_id, share_dir=share_dir).stdout.strip(),
        "cli jobs": rows[0][1] if rows else "missing",
    }


def everywhere(state):
    return {"by id": state, "rx_get_jobs": state, "cli status": state, "cli jobs": state}


def test_a_collected_job_reads_missing_everywhere_and_a_second_collect_says_why(share_dir):
    job = rx_exec(jobtasks.shout, rx_elem_arg([1, 2, 3]), task_chunk_size=1, wait=False)
    assert job.wait_done(60) == "finished"
    assert states(job.job_id, share_dir) == everywhere("finished")
    first = cli("job", "results", job.job_id, share_dir=share_dir)
    assert (first.returncode, first.stdout) == (0, "[10, 20, 30]\n")
    assert "record was removed" in first.stderr and "--keep" in first.stderr
    assert states(job.job_id, share_dir) == everywhere("missing")
    assert job.status() == "finished"  # the object keeps its own final state
    missing = cli("job", "status", job.job_id, share_dir=share_dir)
    assert missing.returncode == 1 and "removed once its outcome was handed out" in missing.stderr
    second = cli("job", "results", job.job_id, share_dir=share_dir)
    assert second.returncode == 1 and "status 'missing'" in second.stderr and "auto_cleanup" in second.stderr
    assert "Traceback" not in second.stderr


def test_collecting_in_this_process_removes_the_record_for_every_reader(share_dir):
    job = rx_exec(jobtasks.shout, rx_elem_arg([1, 2]), task_chunk_size=1, wait=False)
    assert job.result(timeout=60) == [10, 20]
    assert states(job.job_id, share_dir) == everywhere("missing")
    with pytest.raises(RxJobError, match="record was removed"):
        rx_get_job_results(job.job_id, share_dir=share_dir)
    assert job.status() == "finished" and job.result() == [10, 20]


def test_a_canceled_non_waiting_job_reads_canceled_until_collected(share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW)), log, task_chunk_size=1, wait=False)
    eventually(lambda: jobtasks.started(log) > 0, what="the first task")
    assert job.cancel() is True
    assert job.wait_done(10) == "canceled"
    job._thread.join(timeout=30)
    assert job.status() == "canceled" and states(job.job_id, share_dir) == everywhere("canceled")
    out = cli("job", "results", job.job_id, share_dir=share_dir)
    assert out.returncode == 1 and "was canceled" in out.stderr and "record was removed" in out.stderr
    assert states(job.job_id, share_dir) == everywhere("missing")


@pytest.mark.parametrize("auto_cleanup", [1, 0])
def test_ctrl_c_in_a_blocking_call_ends_its_record_like_any_other_end(share_dir, tmp_path, auto_cleanup):
    log = str(tmp_path / "log")
    owner = driver(share_dir, "wait", SLOW, 0.5, log, auto_cleanup)
    try:
        (job_id,) = eventually(lambda: job_dirs(share_dir), what="the blocking job's record")
        assert states(job_id, share_dir) == everywhere("running")
        owner.send_signal(signal.SIGINT)
        _, err = owner.communicate(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    if auto_cleanup:  # the call got the outcome (the interrupt): the record went with it
        assert job_dirs(share_dir) == [] and states(job_id, share_dir) == everywhere("missing")
    else:
        assert states(job_id, share_dir) == everywhere("canceled")
        assert cli("job", "cleanup", job_id, share_dir=share_dir).returncode == 0
        assert states(job_id, share_dir) == everywhere("missing")


def test_cancel_of_a_blocking_job_from_the_cli_waits_for_its_process_and_says_so(share_dir, tmp_path):
    log = str(tmp_path / "log")
    owner = driver(share_dir, "wait", SLOW, 0.5, log, 1)
    try:
        (job_id,) = eventually(lambda: job_dirs(share_dir), what="the blocking job's record")
        out = cli("job", "cancel", job_id, share_dir=share_dir)
        stdout, err = owner.communicate(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.communicate(timeout=30)
    assert stdout.strip() == "canceled", err  # the rx_exec call raised RxJobCanceledError
    assert out.returncode == 0 and f"job {job_id} canceled" in out.stdout, out
    assert states(job_id, share_dir) == everywhere("missing")


def test_a_job_of_this_process_canceled_by_id_from_another_thread(share_dir, tmp_path):
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(SLOW)), str(tmp_path / "log"), task_chunk_size=1,
                  wait=False, auto_cleanup=False)
    assert rx_cancel_job(job.job_id) is True
    assert job.wait_done(10) == "canceled"
    job._thread.join(timeout=30)
    assert states(job.job_id, share_dir) == everywhere("canceled")
    with pytest.raises(RxJobCanceledError):
        job.result()
    assert states(job.job_id, share_dir) == everywhere("canceled")  # auto_cleanup=False: kept


def test_results_into_a_closed_pipe_end_quietly_and_keep_the_record(share_dir):
    job = rx_exec(jobtasks.shout, rx_elem_arg(list(range(3000))), task_chunk_size=500, wait=False)
    assert job.wait_done(60) == "finished"
    # `rxspark job results ID | head -n 2`
    proc = subprocess.Popen([sys.executable, "-m", "rxspark", "job", "results", job.job_id, "--share-dir", share_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    head = proc.stdout.readline() + proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert head.startswith(b"[0,\n 10,") or head.startswith(b"[0,")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141
    # The results were not all written out: the record stays for another try.
    assert rx_get_job_status(job.job_id, share_dir=share_dir) == "finished"
