"""The ``rxspark`` command, run as a separate process (``python -m rxspark``)."""

from __future__ import annotations

import os
import subprocess
import sys

import cloudpickle
import jobtasks
import pytest
import tasks

from rxspark import rx_elem_arg, rx_exec, rx_get_job_status
from rxspark._java import java_major

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def rxspark_cmd(*args, env=None, timeout=120):
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get("PYTHONPATH", "")]))
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "rxspark", *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


def finished_job(**kwargs):
    job = rx_exec(jobtasks.shout, rx_elem_arg([1, 2, 3]), task_chunk_size=1, wait=False, **kwargs)
    assert job.wait_done(60) == "finished"
    return job


def test_jobs_lists_the_store(share_dir):
    empty = rxspark_cmd("jobs", "--share-dir", share_dir)
    assert empty.returncode == 0 and f"no jobs in {share_dir}" in empty.stdout
    job = finished_job(auto_cleanup=False)
    out = rxspark_cmd("jobs", "--share-dir", share_dir)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.strip().splitlines()
    assert header.split()[:4] == ["JOB", "ID", "STATUS", "TASKS"]
    assert row.split()[:6] == [job.job_id, "finished", "3/3", "3/3", "shout", "RxLocalSeq"]  # TASKS, CHUNKS SAVED
    assert rxspark_cmd("jobs", "--share-dir", share_dir, "--state", "running,canceled").stdout.startswith("no jobs")
    assert job.job_id in rxspark_cmd("jobs", "--share-dir", share_dir, "--state", "finished").stdout


def test_job_status_output_results_cleanup(share_dir, tmp_path):
    job = finished_job(auto_cleanup=False)
    status = rxspark_cmd("job", "status", job.job_id, "--share-dir", share_dir)
    assert (status.returncode, status.stdout) == (0, "finished\n")
    output = rxspark_cmd("job", "output", job.job_id, "--share-dir", share_dir)
    assert output.stdout == "[task 0] task says 1\n[task 1] task says 2\n[task 2] task says 3\n"
    results = rxspark_cmd("job", "results", job.job_id, "--share-dir", share_dir)
    assert (results.returncode, results.stdout) == (0, "[10, 20, 30]\n")
    saved = tmp_path / "results.pkl"
    assert rxspark_cmd("job", "results", job.job_id, "--share-dir", share_dir, "--save", str(saved)).returncode == 0
    assert cloudpickle.loads(saved.read_bytes()) == [10, 20, 30]
    cleanup = rxspark_cmd("job", "cleanup", job.job_id, "--share-dir", share_dir)
    assert cleanup.returncode == 0 and "cleaned up" in cleanup.stdout
    assert rxspark_cmd("job", "status", job.job_id, "--share-dir", share_dir).stdout == "missing\n"


def test_results_with_auto_cleanup_remove_the_record_unless_kept(share_dir):
    job = finished_job()  # auto_cleanup=True: fetching the results deletes the record
    assert rxspark_cmd("job", "results", job.job_id, "--share-dir", share_dir, "--keep").stdout == "[10, 20, 30]\n"
    assert rxspark_cmd("job", "status", job.job_id, "--share-dir", share_dir).stdout == "finished\n"
    assert rxspark_cmd("job", "results", job.job_id, "--share-dir", share_dir).stdout == "[10, 20, 30]\n"
    assert rxspark_cmd("job", "status", job.job_id, "--share-dir", share_dir).stdout == "missing\n"


def test_cleanup_of_unretrieved_results_needs_force(share_dir):
    job = finished_job(auto_cleanup=False)
    kept = rxspark_cmd("job", "cleanup", job.job_id, "--share-dir", share_dir)
    assert kept.returncode == 1 and "never retrieved" in kept.stderr and "force" in kept.stderr
    forced = rxspark_cmd("job", "cleanup", job.job_id, "--share-dir", share_dir, "--force")
    assert forced.returncode == 0


def test_cancel_a_running_job(share_dir, tmp_path):
    log = str(tmp_path / "log")
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(40)), log, wait=False, auto_cleanup=False)
    out = rxspark_cmd("job", "cancel", job.job_id, "--share-dir", share_dir)
    # This process owns the job: its monitor acts on the request within about a second, and the
    # command waits (up to --timeout, 5 s) to say so.
    assert out.returncode == 0 and out.stdout == f"job {job.job_id} canceled\n"
    assert job.wait_done(10) == "canceled"
    job._thread.join(timeout=30)
    again = rxspark_cmd("job", "cancel", job.job_id, "--share-dir", share_dir)
    assert again.returncode == 0 and "canceled" in again.stdout
    results = rxspark_cmd("job", "results", job.job_id, "--share-dir", share_dir)
    assert results.returncode == 1 and "was canceled" in results.stderr


def test_cancel_without_waiting_for_the_owner(share_dir, tmp_path):
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(40)), str(tmp_path / "log"), wait=False, auto_cleanup=False)
    try:
        out = rxspark_cmd("job", "cancel", job.job_id, "--share-dir", share_dir, "--timeout", "0")
        assert out.returncode == 0 and "cancel requested" in out.stdout and "(still " in out.stdout
        assert job.wait_done(10) == "canceled"
    finally:
        job.cancel()
        job._thread.join(timeout=30)


def test_results_of_a_running_job_do_not_block_by_default(share_dir, tmp_path):
    job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(40)), str(tmp_path / "log"), wait=False)
    try:
        out = rxspark_cmd("job", "results", job.job_id, "--share-dir", share_dir)
        assert out.returncode == 1 and "still running" in out.stderr and "--wait" in out.stderr
    finally:
        job.cancel()
        job._thread.join(timeout=30)  # no task of it may run on into the next test


def test_missing_jobs_and_bad_usage(share_dir):
    ghost = "rx-20000101-000000-abcdef"
    assert rxspark_cmd("job", "status", ghost, "--share-dir", share_dir).returncode == 1
    results = rxspark_cmd("job", "results", ghost, "--share-dir", share_dir)
    assert results.returncode == 1 and f"no job '{ghost}'" in results.stderr
    bad_id = rxspark_cmd("job", "status", "../etc", "--share-dir", share_dir)
    assert bad_id.returncode == 1 and "is not a job id" in bad_id.stderr
    assert rxspark_cmd("job", "explode", ghost).returncode == 2
    assert rxspark_cmd().returncode == 2


def test_a_corrupted_record_is_reported(share_dir):
    job = finished_job(auto_cleanup=False)
    with open(os.path.join(share_dir, job.job_id, "record.json"), "w") as f:
        f.write("{")
    listing = rxspark_cmd("jobs", "--share-dir", share_dir)
    assert listing.returncode == 0 and "corrupted" in listing.stderr
    status = rxspark_cmd("job", "status", job.job_id, "--share-dir", share_dir)
    assert status.returncode == 1 and "record.json is corrupted" in status.stderr


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "rxspark")
    if not os.path.exists(script):
        pytest.skip("rxspark is not installed in this interpreter's environment")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "doctor" in out.stdout


# ------------------------------------------------------------------ doctor


@pytest.mark.parametrize(
    "text, major",
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ("no version here", None),
    ],
)
def test_java_major(text, major):
    assert java_major(text) == major


def test_doctor_without_spark():
    out = rxspark_cmd("doctor", "--no-spark")
    lines = out.stdout.splitlines()
    assert any(line.startswith("OK    Python: ") for line in lines)
    assert any("Java" in line for line in lines) and any("PySpark" in line for line in lines)
    assert "SKIP  Spark local session (--no-spark)" in lines
    failed = [line for line in lines if line.startswith("FAIL")]
    assert out.returncode == (1 if failed else 0)


def test_doctor_reports_an_old_java_with_the_fix(tmp_path):
    home = tmp_path / "jdk11"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    java.chmod(0o755)
    out = rxspark_cmd("doctor", env={"JAVA_HOME": str(home)})
    assert out.returncode == 1
    assert f"FAIL  Java: Java 11 (JAVA_HOME={home}); Spark 4 needs Java 17 or newer" in out.stdout
    assert "fix: install a JDK 17 or 21" in out.stdout
    assert "SKIP  Spark local session: needs Java and PySpark" in out.stdout


def test_doctor_reports_a_broken_java_home(tmp_path):
    out = rxspark_cmd("doctor", "--no-spark", env={"JAVA_HOME": str(tmp_path / "nowhere")})
    assert out.returncode == 1 and "has no bin/java" in out.stdout and "fix:" in out.stdout


@pytest.mark.spark
def test_doctor_starts_and_stops_spark():
    import pyspark

    out = rxspark_cmd("doctor", timeout=300)
    # The installed line: 4.x, or 3.5.x in the version matrix's 3.5 cell.
    assert f"OK    Spark local session: Spark {pyspark.__version__}" in out.stdout, out.stdout + out.stderr
    assert out.returncode == 0, out.stdout


def test_python_dash_m_and_jobs_in_this_process_agree(share_dir):
    job = rx_exec(tasks.add, rx_elem_arg(range(2)), wait=False, auto_cleanup=False)
    job.result(timeout=60)
    assert rxspark_cmd("job", "status", job.job_id, "--share-dir", share_dir).stdout.strip() == rx_get_job_status(job)
