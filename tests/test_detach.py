"""Detached jobs (API.md section 12): the submitter exits at once, a driver process of its own runs the job,
any process collects or cancels it; the spark-submit line that runs the same driver in a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jobtasks
import pytest
from durable_driver import submit
from helpers import child_env, eventually, python
from test_durable import alive, descendants, saved_chunks

import rxspark
from rxspark.jobs import detach as _detach

N, CHUNK = 8, 2

SUBMITTER = """
import os, sys, time
import cloudpickle, jobtasks, rxspark
from durable_driver import submit
cloudpickle.register_pickle_by_value(jobtasks)
share_dir, name, seconds, log = sys.argv[1:5]
cc = rxspark.RxLocalParallel(2, share_dir=share_dir) if name == "localpar" else rxspark.RxSpark(master="local[2]", share_dir=share_dir)
started = time.monotonic()
job = submit(cc, {n}, {chunk}, float(seconds), log, wait=False, detach=True)
print(job.job_id, round(time.monotonic() - started, 3), flush=True)
os._exit(0)  # no cleanup, no atexit: the job must not depend on this process
"""


def detach_job(share_dir, name, log, seconds):
    out = subprocess.run(
        [sys.executable, "-c", SUBMITTER.format(n=N, chunk=CHUNK), share_dir, name, str(seconds), log],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    job_id, seconds_taken = out.stdout.split()
    return job_id, float(seconds_taken)


@pytest.mark.parametrize("name", ["localpar", pytest.param("spark-local", marks=[pytest.mark.spark, pytest.mark.slow])])
def test_a_detached_job_outlives_its_submitter(name, share_dir, tmp_path):
    job_id, took = detach_job(share_dir, name, str(tmp_path / "runs.log"), 0.2)
    assert took < 5, f"rx_exec(detach=True) took {took} s to return"
    code = f"""
        import json, rxspark
        job_id, share_dir = {job_id!r}, {share_dir!r}
        print(rxspark.rx_get_job_status(job_id, share_dir=share_dir))
        print(json.dumps(rxspark.rx_get_job_results(job_id, share_dir=share_dir, timeout=240, auto_cleanup=False)))
        print(json.dumps(rxspark.rx_get_jobs(share_dir=share_dir)[job_id].record.context))
    """
    status, results, context = python(code, timeout=300).splitlines()
    assert status in ("queued", "running", "finished")  # never "undetermined": the record names the driver
    expected = submit(rxspark.RxLocalSeq(), N, CHUNK, 0.0, str(tmp_path / "expected.log"), durable=False)
    assert json.loads(results) == expected
    context = json.loads(context)
    assert context["context"] == {"localpar": "RxLocalParallel", "spark-local": "RxSpark"}[name]
    log = open(os.path.join(share_dir, job_id, "driver.log")).read()
    assert f"job {job_id} finished" in log, log
    assert sorted(jobtasks.runs(str(tmp_path / "runs.log"))) == list(range(N))


def test_rxspark_job_cancel_stops_a_detached_job_and_its_workers(share_dir, tmp_path):
    log = str(tmp_path / "runs.log")
    job_id, _ = detach_job(share_dir, "localpar", log, 3.0)
    eventually(lambda: jobtasks.runs(log), timeout=60, what="the detached job's first task")
    with open(os.path.join(share_dir, job_id, "record.json")) as f:
        driver = json.load(f)["owner"]["pid"]
    processes = {driver} | descendants(driver)
    assert len(processes) >= 3, processes  # the driver and its two loky workers at least
    out = subprocess.run([sys.executable, "-m", "rxspark", "job", "cancel", job_id, "--share-dir", share_dir],
                         capture_output=True, text=True, env=child_env(), timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    eventually(lambda: rxspark.rx_get_job_status(job_id, share_dir=share_dir) == "canceled", timeout=30, what="canceled")
    eventually(lambda: not [p for p in processes if alive(p)], timeout=30, what=f"the driver and its workers {processes} to end")
    assert len(jobtasks.runs(log)) < N  # it did not run to its end
    assert len(saved_chunks(share_dir, job_id)) < N // CHUNK


def test_the_cluster_deploy_mode_command_line():
    """No YARN here: the command is checked as text (docs/guide/long-jobs.md shows the same line)."""
    command = _detach.cluster_command(
        "s3://bucket/rxspark", "rx-20261206-120000-abcdef", master="yarn",
        python_env="hdfs:///envs/rxspark-env.tar.gz", spark_conf={"spark.executor.memory": "4g", "spark.submit.deployMode": "cluster"},
    )
    assert command == [
        "spark-submit", "--master", "yarn", "--deploy-mode", "cluster", "--name", "rxspark-rx-20261206-120000-abcdef",
        "--archives", "hdfs:///envs/rxspark-env.tar.gz#environment",
        "--conf", "spark.executor.memory=4g",
        "--conf", "spark.pyspark.python=./environment/bin/python",
        "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./environment/bin/python",
        "--conf", "spark.yarn.appMasterEnv.RXSPARK_STORE_KEY=$RXSPARK_STORE_KEY",
        _detach.driver_script(), "--share-dir", "s3://bucket/rxspark", "rx-20261206-120000-abcdef",
    ]
    assert _detach.driver_script().endswith(os.path.join("rxspark", "jobs", "driver.py"))
    line = _detach.shell_line(command)
    assert '"spark.yarn.appMasterEnv.RXSPARK_STORE_KEY=$RXSPARK_STORE_KEY"' in line  # the shell expands it, nobody writes it down
    k8s = _detach.cluster_command("s3://bucket/rx", "rx-1", master="k8s://https://10.0.0.1:6443")
    assert "spark.kubernetes.driverEnv.RXSPARK_STORE_KEY=$RXSPARK_STORE_KEY" in k8s
    with pytest.raises(rxspark.RxArgumentError, match="cannot reach the local job store"):
        _detach.cluster_command("/home/me/.rxspark/jobs", "rx-1")


@pytest.mark.spark
@pytest.mark.slow
def test_the_driver_runs_under_spark_submit(share_dir, tmp_path):
    """The same driver module, submitted with spark-submit (client mode on local[2]: only the master and the
    deploy mode differ from the cluster line), runs a stored job to its end."""
    from pyspark.find_spark_home import _find_spark_home

    cc = rxspark.RxSpark(master="local[2]", share_dir=share_dir)
    spec = rxspark.spec.JobSpec.create(jobtasks.durable_task, (rxspark.rx_elem_arg(range(N)),), {"log_path": str(tmp_path / "r.log"), "seconds": 0.0},
                                       task_chunk_size=CHUNK, rng_seed=20261206, wait=False, durable=True)
    store, record = _detach.freeze_detached(spec, cc, "rx-20261206-000000-5ub417")
    store.write_record(record.job_id, record.to_json())
    command = _detach.cluster_command(
        share_dir, record.job_id, master="local[2]", deploy_mode="client",
        spark_submit=os.path.join(_find_spark_home(), "bin", "spark-submit"),
        spark_conf={"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable},
    )
    env = dict(child_env(), PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"job {record.job_id} finished" in done.stdout
    expected = submit(rxspark.RxLocalSeq(), N, CHUNK, 0.0, str(tmp_path / "expected.log"), durable=False)
    assert rxspark.rx_get_job_results(record.job_id, share_dir=share_dir) == expected
    assert time.time() > record.submitted_at
