"""RxSpark specifics: sessions, the job's shape, retries, spark-submit.sh.

The conformance suite (test_conformance.py) already runs every rx_exec rule
on local[2] and on a two-executor local-cluster; these tests cover what only
Spark has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import defaultdict

import numpy as np
import pytest
import tasks

import rxspark
from rxspark import RxSpark, rx_elem_arg, rx_exec
from rxspark.plan import Chunk

pytestmark = pytest.mark.spark
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ sessions


def test_attaches_to_the_active_session_and_never_stops_it(spark_local):
    session = spark_local.session
    attached = RxSpark()
    assert attached.session is session and not attached.owns_session
    assert rx_exec(tasks.add, 1, 2, times_to_run=2, compute_context=attached) == [3, 3]
    attached.close()
    assert session.sparkContext._jsc is not None  # still running
    assert rx_exec(tasks.add, 1, 1, times_to_run=1, compute_context=spark_local) == [2]


def test_rx_spark_connect_and_disconnect_keep_a_session_they_did_not_start(spark_local):
    cc = rxspark.rx_spark_connect()
    assert rxspark.rx_get_compute_context() is cc
    assert rxspark.rx_get_pyspark_connection(cc) is spark_local.spark_context
    rxspark.rx_spark_disconnect()
    assert isinstance(rxspark.rx_get_compute_context(), rxspark.RxLocalSeq)
    assert spark_local.spark_context._jsc is not None


def test_workers_run_the_drivers_interpreter(spark_local):
    (executable,) = rx_exec(lambda: sys.executable, times_to_run=1, compute_context=spark_local)
    assert executable == sys.executable


def test_config_maps_arguments_to_spark_properties():
    cc = RxSpark(
        master="local[3]", num_executors=4, executor_cores=2, executor_mem="2g", driver_mem="1g",
        executor_overhead_mem="512m", extra_spark_config={"spark.sql.shuffle.partitions": 7},
    )
    defaults, explicit = cc.spark_config()
    assert explicit == {
        "spark.executor.instances": "4", "spark.executor.cores": "2", "spark.executor.memory": "2g",
        "spark.driver.memory": "1g", "spark.executor.memoryOverhead": "512m", "spark.sql.shuffle.partitions": "7",
    }
    assert defaults["spark.driver.host"] == "127.0.0.1"
    assert "log4j2.configurationFile" in defaults["spark.driver.extraJavaOptions"]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(master=""), "master"),
        (dict(num_executors=0), "num_executors"),
        (dict(executor_mem="lots"), "executor_mem"),
        (dict(extra_spark_config=[("a", 1)]), "extra_spark_config"),
        (dict(progress="yes"), "progress"),
        (dict(spark="not a session"), "SparkSession"),
    ],
)
def test_bad_rxspark_arguments(kwargs, fragment):
    with pytest.raises(rxspark.RxError, match=fragment):
        RxSpark(**kwargs)


def _start_in_subprocess(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120)


def test_missing_or_old_java_is_a_clear_error_within_seconds(tmp_path):
    fake_home = tmp_path / "jdk"
    (fake_home / "bin").mkdir(parents=True)
    fake_java = fake_home / "bin" / "java"
    fake_java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake_java.chmod(0o755)
    code = """
        import time, rxspark
        t = time.monotonic()
        try:
            rxspark.RxSpark(master="local[1]").connect()
        except rxspark.RxSparkUnavailableError as e:
            print("ERROR", round(time.monotonic() - t, 1), e)
    """
    out = _start_in_subprocess(code, dict(os.environ, JAVA_HOME=str(fake_home)))
    assert "ERROR" in out.stdout, out.stderr
    assert "Java 17" in out.stdout and "found Java 11" in out.stdout
    assert float(out.stdout.split()[1]) < 10
    assert "Traceback" not in out.stderr


def test_unreachable_master_is_a_clear_error_within_seconds():
    code = """
        import time, rxspark
        t = time.monotonic()
        try:
            rxspark.RxSpark(master="spark://127.0.0.1:1").connect()
        except rxspark.RxSparkUnavailableError as e:
            print("ERROR", round(time.monotonic() - t, 1), e)
    """
    out = _start_in_subprocess(code, dict(os.environ))
    assert "ERROR" in out.stdout, out.stderr
    assert "cannot reach the Spark master spark://127.0.0.1:1" in out.stdout
    assert float(out.stdout.split()[1]) < 10


def test_a_later_application_starts_without_the_properties_of_the_one_that_launched_the_jvm():
    """PySpark launches its JVM with the first session's properties as system properties; rxspark's next one drops them.

    Found in CI: a share-nothing cluster application, started in a process
    whose first session was local, inherited that session's
    spark.executorEnv.PYTHONPATH (the driver's paths), so the nodes' bare
    Python imported the driver's packages from a checkout they could see.
    """
    code = """
        import json, rxspark
        first = rxspark.RxSpark(master="local[1]", extra_spark_config={"spark.rxtest.first": "yes"}).connect()
        assert rxspark.rx_exec(abs, rxspark.rx_elem_arg([-1, -2]), compute_context=first) == [1, 2]
        seen = {"first": dict(first.spark_context.getConf().getAll())}
        first.close()
        second = rxspark.RxSpark(master="local[1]").connect()
        seen["second"] = dict(second.spark_context.getConf().getAll())
        second.close()
        print(json.dumps(seen))
    """
    env = dict(os.environ, PYSPARK_SUBMIT_ARGS="--conf spark.rxtest.submitted=kept pyspark-shell")
    out = _start_in_subprocess(code, env)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["first"]["spark.rxtest.first"] == "yes"
    assert "spark.rxtest.first" not in seen["second"]  # the first session's own setting
    assert seen["first"]["spark.rxtest.submitted"] == seen["second"]["spark.rxtest.submitted"] == "kept"
    assert seen["second"]["spark.master"].startswith("local[1")


def test_a_different_master_while_a_session_runs_is_refused(spark_local):
    with pytest.raises(rxspark.RxArgumentError, match="already active"):
        RxSpark(master="local[1]").connect()


# ------------------------------------------------------------------ the job's shape


def test_without_per_call_arguments_chunks_are_descriptors_only(spark_local):
    job = rx_exec(tasks.constant, times_to_run=10_000, task_chunk_size=1000, compute_context=spark_local, wait=False)
    assert job.result() == [42] * 10_000
    assert all(c.calls_blob is None for c in job.plan.chunks)
    import pickle

    assert len(pickle.dumps(job.plan.chunks[0])) < 200


def test_one_job_in_its_own_group(spark_local):
    sc = spark_local.spark_context
    job = rx_exec(tasks.sleepy, rx_elem_arg([0.4] * 4), task_chunk_size=1, compute_context=spark_local, wait=False)
    deadline = time.monotonic() + 30
    while not sc.statusTracker().getJobIdsForGroup(job.job_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    job.result(timeout=60)
    assert len(sc.statusTracker().getJobIdsForGroup(job.job_id)) == 1


def test_results_stream_in_as_partitions_finish(spark_local):
    arrivals = []
    durations = [2.0, 0.1, 0.1, 0.1]
    rx_exec(
        tasks.sleepy, rx_elem_arg(durations), value=rx_elem_arg([0, 1, 2, 3]), task_chunk_size=1,
        compute_context=spark_local, callback=lambda v: arrivals.append(v),
    )
    assert arrivals[-1] == 0 and sorted(arrivals) == [0, 1, 2, 3]


def test_progress_bar(spark_local, capsys):
    cc = RxSpark(spark=spark_local.session, progress=True)
    rx_exec(tasks.identity, rx_elem_arg(range(6)), task_chunk_size=2, compute_context=cc)
    assert "rxspark identity" in capsys.readouterr().err


# ------------------------------------------------------------------ spark-submit.sh


def test_spark_submit_sh_on_the_embedded_default():
    out = subprocess.run(
        [os.path.join(ROOT, "spark-submit.sh"), "examples/dice.py", "--seed", "777", "--games", "2000", "--chunk-size", "500"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    local = subprocess.run(
        [sys.executable, "examples/dice.py", "--master", "none", "--seed", "777", "--games", "2000", "--chunk-size", "500"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert dice_table(out.stdout) == dice_table(local.stdout)


def dice_table(stdout: str) -> tuple[str, str]:
    """The win/loss table of examples/dice.py (spark-submit mixes the driver's stderr into stdout)."""
    lines = [line.strip() for line in stdout.splitlines()]
    header = lines.index("Loss    Win")
    return lines[header], lines[header + 1]


WHERE = """
import json, sys
from rxspark import RxSpark, rx_exec

def origin():
    import rxspark
    return rxspark.__file__

with RxSpark() as cc:
    origins = sorted(set(rx_exec(origin, times_to_run=4, task_chunk_size=1)))
    print(json.dumps({"argv": sys.argv[1:], "master": cc.spark_context.master, "origins": origins,
                      "executors": cc.spark_context._jsc.sc().getExecutorIds().size()}))
"""


@pytest.mark.cluster
@pytest.mark.slow
def test_spark_submit_sh_on_a_standalone_cluster_with_authentication(tmp_path):
    from standalone import StandaloneCluster

    script = tmp_path / "where.py"
    script.write_text(WHERE)
    odd_args = ["two words", "semi;colon", "'single'", '"double"', "$HOME", "`uname`"]
    with StandaloneCluster(str(tmp_path / "cluster"), workers=2) as cluster:
        env = dict(os.environ, _SPARK_AUTH_SECRET=cluster.secret)
        submit = [os.path.join(ROOT, "spark-submit.sh"), "--profile", "standalone", "--master", cluster.master]
        out = subprocess.run([*submit, str(script), *odd_args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["argv"] == odd_args
        assert report["master"] == cluster.master and report["executors"] == 2
        assert all("rxspark.zip" in o for o in report["origins"])  # shipped, not the installed copy
        dice = subprocess.run([*submit, "examples/dice.py", "--seed", "777", "--games", "2000", "--chunk-size", "500"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert dice.returncode == 0, dice.stderr[-3000:]
    local = subprocess.run(
        [sys.executable, "examples/dice.py", "--master", "none", "--seed", "777", "--games", "2000", "--chunk-size", "500"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert dice_table(dice.stdout) == dice_table(local.stdout)
    assert "spark.authenticate" in (tmp_path / "cluster" / "daemon.properties").read_text()


def test_chunk_pickles_without_its_in_memory_calls():
    import pickle

    chunk = Chunk(index=0, start=0, stop=2, calls_blob=b"x")
    chunk.calls = object()
    assert pickle.loads(pickle.dumps(chunk)).calls is None


# ------------------------------------------------------------------ on the two-executor cluster


def test_payload_is_deserialized_once_per_worker_process(spark_cluster):
    big = np.ones(50 * 1024 * 1024 // 8)  # a 50 MB exec object

    def task(i):
        import os

        import rxspark.worker

        return os.getpid(), rxspark.worker.stats["payload_loads"], float(BIG[i])  # noqa: F821

    out = rx_exec(task, rx_elem_arg(range(200)), exec_objects={"BIG": big}, task_chunk_size=5, compute_context=spark_cluster)
    loads_seen = defaultdict(set)
    for pid, loads, value in out:
        assert value == 1.0
        loads_seen[pid].add(loads)
    # 40 chunks ran in few worker processes, and no process loaded the payload more than once for this job.
    assert len(loads_seen) < 40
    assert all(len(seen) == 1 for seen in loads_seen.values()), dict(loads_seen)


def crash_once(x, marker_dir):
    """Kill this Python worker the first time each task runs: an infrastructure failure."""
    import os

    import rxspark

    marker = os.path.join(marker_dir, f"task-{x}")
    value = rxspark.rng().uniform()
    if x % 3 == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return x, value


def test_a_crashed_python_worker_is_retried_with_the_same_numbers(spark_cluster, tmp_path):
    kwargs = dict(task_chunk_size=2, rng_seed=99, compute_context=spark_cluster)
    disturbed = rx_exec(crash_once, rx_elem_arg(range(12)), marker_dir=str(tmp_path), **kwargs)
    assert len(list(tmp_path.iterdir())) == 4  # tasks 0, 3, 6, 9 each crashed once
    undisturbed = rx_exec(crash_once, rx_elem_arg(range(12)), marker_dir=str(tmp_path), **kwargs)
    assert disturbed == undisturbed
    assert disturbed == rx_exec(crash_once, rx_elem_arg(range(12)), marker_dir=str(tmp_path), task_chunk_size=2, rng_seed=99)
