"""RxSpark on Spark Connect: what only a Connect session has.

The conformance suite and the job tests already run every rx_exec rule on the
"spark-connect" context (a client of a local Connect server on ``local[2,4]``,
started once per test session: conftest.py); these tests cover cancel,
payloads bigger than a gRPC message, retried worker crashes, the settings a
Connect client cannot apply and results over the server's limits.
"""

from __future__ import annotations

import os
import sys
import time

import cloudpickle
import numpy as np
import pytest

import rxspark
from rxspark import RxArgumentError, RxJobError, RxSpark, RxSparkUnavailableError, rx_elem_arg, rx_exec

pytestmark = pytest.mark.spark

# The Connect server's workers do not see the tests' sys.path: ship this module's functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def forever(x):
    while True:
        time.sleep(0.1)


def crash_once(x, marker_dir):
    """Kill this Python worker the first time each task runs: an infrastructure failure."""
    marker = os.path.join(marker_dir, f"task-{x}")
    value = rxspark.rng().uniform()
    if x % 3 == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return x, value


def draw(n):
    return rxspark.rng().uniform(size=n).tolist()


def big_sum():
    return float(BIG.sum())  # noqa: F821 - an exec object


def big_result(n):
    return b"x" * n


def test_a_connect_session_runs_on_the_connect_engine(spark_connect):
    from rxspark.contexts.spark.connect import ConnectEngine

    assert spark_connect.is_connect and isinstance(spark_connect._engine, ConnectEngine)
    session = rxspark.rx_get_spark_session(spark_connect)
    assert type(session).__module__.startswith("pyspark.sql.connect")
    attached = RxSpark(spark=session)
    assert attached.session is session and not attached.owns_session
    assert rx_exec(pow, rx_elem_arg(range(5)), 2, compute_context=attached) == [0, 1, 4, 9, 16]
    attached.close()
    assert rx_exec(pow, 3, 2, compute_context=spark_connect) == [9]  # still running
    assert spark_connect.parallelism() == 2  # local[2,4], probed once
    assert spark_connect.describe()["master"] == "local[2,4]"


def test_rx_get_pyspark_connection_says_to_use_rx_get_spark_session(spark_connect):
    with pytest.raises(RxSparkUnavailableError, match="rx_get_spark_session"):
        rxspark.rx_get_pyspark_connection(spark_connect)
    with pytest.raises(RxSparkUnavailableError, match="rx_get_spark_session"):
        _ = spark_connect.spark_context


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        (dict(num_executors=2), "num_executors"),
        (dict(executor_mem="4g"), "executor_mem"),
        (dict(executor_cores=2, driver_mem="1g"), "executor_cores, driver_mem"),
        (dict(extra_spark_config={"spark.executor.memory": "2g"}), "spark.executor.memory"),
    ],
)
def test_settings_a_connect_client_cannot_apply_raise(connect_url, spark_connect, kwargs, named):
    with pytest.raises(RxArgumentError, match=named):
        RxSpark(remote=connect_url, **kwargs)
    with pytest.raises(RxArgumentError, match=named):
        RxSpark(spark=spark_connect.session, **kwargs)


def test_spark_sql_properties_are_applied(connect_url, spark_connect):
    cc = RxSpark(remote=connect_url, extra_spark_config={"spark.sql.shuffle.partitions": "7"})
    assert cc.session.conf.get("spark.sql.shuffle.partitions") == "7"


def test_bad_remote_urls_raise():
    with pytest.raises(RxArgumentError, match="sc://"):
        RxSpark(remote="http://host:15002")
    with pytest.raises(RxArgumentError, match="at most one"):
        RxSpark(remote="sc://127.0.0.1:1", master="local[2]")


def test_cancel_of_never_ending_tasks_is_quick_and_the_session_stays_usable(spark_connect, share_dir):
    job = rx_exec(forever, rx_elem_arg(range(4)), compute_context=spark_connect, wait=False)
    deadline = time.monotonic() + 30
    while job.status() != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # the tasks run
    began = time.monotonic()
    assert rxspark.rx_cancel_job(job) is True
    assert rxspark.rx_wait_for_job(job, timeout=15) == "canceled"
    assert time.monotonic() - began < 10
    assert rx_exec(pow, rx_elem_arg(range(4)), 2, compute_context=spark_connect) == [0, 1, 4, 9]


def test_a_150_mb_exec_object_travels_as_an_artifact(spark_connect):
    big = np.ones(150 * 2**20 // 8)  # 150 MiB: over the ~128 MiB gRPC cap of a plan's closure
    began = time.monotonic()
    results = rx_exec(big_sum, times_to_run=4, exec_objects={"BIG": big}, compute_context=spark_connect)
    assert results == [float(big.size)] * 4
    assert time.monotonic() - began < 120


def test_a_crashed_python_worker_is_retried_with_identical_results(spark_connect, tmp_path):
    kwargs = dict(task_chunk_size=2, rng_seed=99, compute_context=spark_connect)
    disturbed = rx_exec(crash_once, rx_elem_arg(range(12)), marker_dir=str(tmp_path), **kwargs)
    assert len(list(tmp_path.iterdir())) == 4  # tasks 0, 3, 6, 9 each crashed once
    undisturbed = rx_exec(crash_once, rx_elem_arg(range(12)), marker_dir=str(tmp_path), **kwargs)
    assert disturbed == undisturbed
    reference = rx_exec(crash_once, rx_elem_arg(range(12)), marker_dir=str(tmp_path), task_chunk_size=2,
                        rng_seed=99, compute_context=rxspark.RxLocalSeq())
    assert disturbed == reference


def test_a_result_over_the_limit_fails_fast_naming_the_limit(spark_connect, monkeypatch):
    from rxspark.contexts.spark import connect

    engine = spark_connect._engine
    monkeypatch.setattr(type(engine), "result_limit", lambda self: 8 * 2**20)
    began = time.monotonic()
    with pytest.raises(RxJobError, match=r"over the Spark Connect limit of 8\.0 MiB per chunk"):
        rx_exec(big_result, rx_elem_arg([10, 20 * 2**20, 10, 10]), compute_context=spark_connect)
    assert time.monotonic() - began < 30
    assert connect.DEFAULT_CHUNK_RESULT_LIMIT == 256 * 2**20
    assert rx_exec(big_result, 3, compute_context=spark_connect) == [b"xxx"]  # still usable


def test_the_default_result_limit_follows_max_result_size():
    from rxspark.contexts.spark.connect import parse_size

    assert parse_size("1g", 0) == 2**30
    assert parse_size("512m", 0) == 512 * 2**20
    assert parse_size("4096", 0) == 4096
    assert parse_size(None, 7) == 7


@pytest.fixture(scope="module")
def server_without_rxspark(tmp_path_factory):
    """A second Connect server whose workers run a Python that has numpy, pyarrow, cloudpickle, pyspark, not rxspark."""
    import subprocess
    import sysconfig

    from connect_server import ConnectServer, connect_unavailable

    why = connect_unavailable()
    if why:
        pytest.skip(why)
    venv = tmp_path_factory.mktemp("norx") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # This environment's packages as a plain path entry: its .pth files (rxspark's editable install) are not run.
    with open(os.path.join(site, "deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    server = ConnectServer(python=python).start()
    try:
        yield server
    finally:
        server.stop()


def test_workers_without_rxspark_get_it_as_an_artifact(server_without_rxspark):
    def _import_rxspark(batches):  # local: pyspark pickles it by value (its own cloudpickle ignores ours)
        import pyarrow as pa

        for _ in batches:
            pass
        try:
            import rxspark as found

            where = found.__file__
        except ImportError:
            where = "missing"
        yield pa.RecordBatch.from_arrays([pa.array([where])], names=["v"])

    cc = RxSpark(remote=server_without_rxspark.url, progress=False)
    try:
        session = cc.session
        (row,) = session.range(0, 1, 1, 1).mapInArrow(_import_rxspark, "v string").collect()
        assert row.v == "missing"  # the workers' Python has no rxspark of its own
        assert rx_exec(pow, rx_elem_arg(range(6)), 2, compute_context=cc) == [0, 1, 4, 9, 16, 25]
        seeded = dict(times_to_run=5, rng_seed=3, task_chunk_size=2)
        remote = rx_exec(draw, 2, compute_context=cc, **seeded)
        assert remote == rx_exec(draw, 2, compute_context=rxspark.RxLocalSeq(), **seeded)
        (row,) = session.range(0, 1, 1, 1).mapInArrow(_import_rxspark, "v string").collect()
        assert row.v.endswith(os.path.join("rxspark", "__init__.py")) and "site-packages" not in row.v
        assert cc.owns_session  # a new session on its own server, not the test session's default one
    finally:
        cc.close()
