"""A real Spark driver process (driver_child.py): secrets, the result-size limit, and Ctrl-C.

One dedicated local[2] session in a child process (a process holds one
SparkContext) with secret-looking settings and spark.driver.maxResultSize=8m,
running a copy of rxspark installed under a path with spaces.
The parent reads the child's phases from its stdout and sends SIGINT while the
child is blocked in rx_exec on endless tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from .conftest import HERE, ROOT, TESTS, Child, child_env, eventually, pid_alive

pytestmark = pytest.mark.spark

SECRETS = ("hunter2", "s3a-x-41f7")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """Run the child through all its phases once; the tests look at what it reported."""
    base = tmp_path_factory.mktemp("driver")
    share_dir, log_dir = base / "jobs", base / "log"
    log_dir.mkdir()
    site = base / "site packages"  # an installation under a path with spaces ("My Documents")
    shutil.copytree(os.path.join(ROOT, "rxspark"), site / "rxspark", ignore=shutil.ignore_patterns("__pycache__"))
    env = child_env(PYTHONPATH=os.pathsep.join([str(site), TESTS]))
    child = Child([os.path.join(HERE, "driver_child.py"), str(share_dir), str(log_dir)], env=env)
    report = {"share_dir": str(share_dir), "site": str(site)}
    try:
        report["recorded"] = child.expect("RECORDED", timeout=240)
        report["retried"] = child.expect("RETRIED", timeout=120)
        report["maxresult"] = child.expect("MAXRESULT", timeout=120)
        report["ready"] = child.expect("READY", timeout=120)
        report["sigint_at"] = time.monotonic()
        child.proc.send_signal(signal.SIGINT)
        report["interrupted"] = child.expect("INTERRUPTED", timeout=60)
        report["next"] = child.expect("NEXT", timeout=60)
        report["returncode"] = child.wait(60)
        report["exited_after"] = time.monotonic() - report["sigint_at"]
    finally:
        child.kill()
    report["output"] = child.output
    report["stderr"] = "".join(child.stderr)
    return report


def test_sigint_during_a_blocking_rx_exec_cancels_the_spark_job_group(driver):
    ready, interrupted = driver["ready"], driver["interrupted"]
    assert ready["spark_jobs"], "the endless job was not running in its job group"
    assert interrupted["job_id"] == ready["job_id"]
    assert interrupted["active"] == [] and interrupted["seconds"] < 15  # Spark canceled it quickly
    assert interrupted["group_jobs"] == ready["spark_jobs"]
    assert all(status == "FAILED" for status in interrupted["group_status"]), interrupted  # canceled jobs end FAILED
    assert interrupted["job_status"] == "canceled"
    assert interrupted["record_status"] == "missing"  # a blocking job's record goes when its call ends (README)
    assert driver["next"]["results"] == [[[0], {}], [[1], {}]]  # the executors were free again
    # The process ends with the KeyboardInterrupt, within seconds.
    assert driver["returncode"] in (-signal.SIGINT, 130, 1), driver["stderr"][-2000:]
    assert "KeyboardInterrupt" in driver["stderr"]
    assert driver["exited_after"] < 45
    for pid in ready["pids"]:  # the endless tasks' Python workers are gone
        eventually(lambda pid=pid: not pid_alive(pid), timeout=30, what=f"worker {pid} to end")


def test_rxspark_installed_under_a_path_with_spaces_starts_spark(driver):
    # spark.driver.extraJavaOptions carries the path of rxspark's log4j2.properties: quoted, or the JVM does not start.
    assert driver["recorded"]["rxspark"].startswith(driver["site"] + os.sep)
    assert driver["recorded"]["results"] == [[[i], {}] for i in range(4)]
    assert " INFO " not in driver["stderr"]  # and its quiet logging configuration is in force


def test_crashed_python_workers_are_retried_on_a_local_master(driver):
    retried = driver["retried"]
    assert "error" not in retried, retried["error"]
    assert retried["master"] == "local[2,4]"  # asked for local[2]: Spark alone would not retry there
    assert retried["crashed"] == ["crashed-1", "crashed-3"]
    assert [x for x, _ in retried["results"]] == [0, 1, 2, 3]


def test_results_above_max_result_size_fail_with_the_setting_to_change(driver):
    error = driver["maxresult"]
    assert error["type"] == "RxJobError", error
    assert "spark.driver.maxResultSize" in error["message"]
    assert "extra_spark_config={'spark.driver.maxResultSize'" in error["message"]  # how to raise it
    assert "is bigger than spark.driver.maxResultSize" in error["message"]  # what Spark measured


def test_secret_settings_never_reach_records_cli_or_logs(driver):
    share_dir, job_id = driver["share_dir"], driver["recorded"]["job_id"]
    with open(os.path.join(share_dir, job_id, "record.json")) as f:
        record = json.load(f)
    conf = record["context"]["spark_conf"]
    assert conf["spark.authenticate.secret"] == conf["spark.hadoop.fs.s3a.secret.key"] == "***REDACTED***"
    assert conf["spark.driver.maxResultSize"] == "8m"  # the rest of the configuration is kept
    cli = [
        subprocess.run([sys.executable, "-m", "rxspark", *args, "--share-dir", share_dir], capture_output=True, text=True,
                       timeout=120, env=child_env())
        for args in (["job", "status", job_id], ["jobs"], ["job", "output", job_id], ["job", "results", job_id, "--keep"])
    ]
    assert cli[0].stdout.strip() == "finished" and job_id in cli[1].stdout
    texts = [driver["output"]] + [c.stdout + c.stderr for c in cli]
    for root, _, files in os.walk(share_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                texts.append(f.read().decode("latin-1"))
    for secret in SECRETS:
        assert not [t for t in texts if secret in t], f"{secret!r} leaked"


def test_the_job_store_of_a_spark_driver_is_private_under_umask_0(driver):
    share_dir = driver["share_dir"]
    modes = {}
    for root, _dirs, files in os.walk(share_dir):
        modes[root] = stat.S_IMODE(os.stat(root).st_mode)
        for name in files:
            modes[os.path.join(root, name)] = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
    assert len(modes) >= 3, modes  # the store, a job directory, its record
    for path, mode in modes.items():
        assert mode == (0o700 if os.path.isdir(path) else 0o600), (path, oct(mode))
