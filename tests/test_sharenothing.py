"""rxspark on a cluster that shares nothing with the driver but the network (issue 25).

The cluster (tests/sharenothing.py): a standalone master and two workers,
each in a mount namespace of its own that hides ``/tmp``, ``/root`` and
``/work`` (the driver's files, its venv, pyenv's interpreters) and leaves
Debian's bare ``/usr/bin/python3``. What is checked on it:

- the conformance suite, with the executors' environment shipped by
  ``python_env`` (a venv packed by ``rxspark.pack``, rxspark installed editable);
- without ``python_env`` the job fails once, with the module the nodes lack
  and the fix (and, with the driver's interpreter path as the executors'
  Python, that the path does not exist there);
- ``rx_share`` into the driver's local directory fails naming the path and the
  fix; into an S3 store (moto's server, tests/s3server.py) it works;
- an attached session accepts ``python_env`` only if it was started with it;
- docs/guide/yarn.md's client-mode ``spark-submit.sh`` line runs on the cluster
  with only the master changed (tests/test_yarn_recipe.py reads the lines);
- on Spark Connect (the suite's local server) the archive travels as a session
  artifact and the Python workers run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import cloudpickle
import contexts
import numpy as np
import pytest
import tasks
import test_yarn_recipe as recipe
from conformance import ConformanceSuite
from s3server import s3_unavailable, serving
from sharenothing import NODE_PYTHON, REPO, NodeEnvironment, ShareNothingCluster, make_workdir, unavailable

import rxspark
from rxspark import RxSpark, RxTaskFailureWarning, rx_elem_arg, rx_exec, rx_share
from rxspark.errors import RxArgumentError, RxJobError, RxShareError, RxTaskError
from rxspark.rng import VSL_KINDS

WHY = unavailable()
pytestmark = [
    pytest.mark.spark,
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(WHY is not None, reason=str(WHY)),
]


@pytest.fixture(scope="module")
def cluster():
    with ShareNothingCluster(make_workdir(), workers=2, cores=1, memory="1g") as running:
        yield running


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The node environment packed by docs/guide/yarn.md's own command line, run with that environment's rxspark."""
    node = NodeEnvironment().ensure()
    command = next(c for c in recipe.pack_lines() if "--python-prefix" in c)
    assert recipe._value(command, "--python-prefix") == os.path.dirname(os.path.dirname(NODE_PYTHON))
    where = tmp_path_factory.mktemp("nodeenv")
    done = subprocess.run(
        [os.path.join(node.prefix, "bin", "rxspark"), *command[1:]], cwd=where, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    path = done.stdout.strip()
    assert path == str(where / recipe._value(command, "--output")) and os.path.isfile(path)
    return path


@pytest.fixture(scope="module")
def s3():
    why = s3_unavailable()
    if why:
        pytest.skip(why)
    with serving() as server:  # the driver writes the store too
        yield server


class Sessions:
    """The module's Spark applications on the cluster: one alive at a time (the cluster's cores, PySpark's one SparkContext)."""

    def __init__(self) -> None:
        self.current: tuple[str, RxSpark] | None = None

    def get(self, key: str, make) -> RxSpark:
        if self.current is not None and self.current[0] == key:
            return self.current[1]
        self.close()
        for name in [n for n in contexts.SHARED.made if contexts.CONTEXTS[n].classic_spark]:
            contexts.SHARED.made.pop(name).close()
        self.current = (key, make().connect())
        return self.current[1]

    def close(self) -> None:
        if self.current is not None:
            self.current[1].close()
            self.current = None


@pytest.fixture(scope="module")
def sessions():
    made = Sessions()
    yield made
    made.close()


# A deterministic failure: one attempt per task is enough to see it.
ONE_ATTEMPT = {"spark.task.maxFailures": "1"}


def _on(cluster, extra_spark_config=None, **kwargs) -> RxSpark:
    return RxSpark(
        master=cluster.master, num_executors=2, executor_cores=1, executor_mem="512m", progress=False,
        extra_spark_config={**cluster.auth_config(), **(extra_spark_config or {})}, **kwargs,
    )


@pytest.fixture
def env_cc(sessions, cluster, archive, s3):
    """The cluster with the node environment shipped (and the S3 store's credentials on the executors)."""
    executor_env = {f"spark.executorEnv.{k}": v for k, v in s3.env().items()}
    return sessions.get("python_env", lambda: _on(cluster, python_env=archive, extra_spark_config=executor_env))


class TestShareNothingConformance(ConformanceSuite):
    """The conformance suite on the share-nothing cluster, executors running the shipped environment."""

    @pytest.fixture
    def cc(self, env_cc, request):
        callspec = getattr(request.node, "callspec", None)
        if callspec is not None and callspec.params.get("kind") in VSL_KINDS:
            pytest.skip("the shipped node environment leaves out mkl-random (Intel VSL kinds)")
        return env_cc


# This module's task functions travel by value: the nodes cannot import tests/.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def handle_sum(handle):
    return float(handle.value.sum())


def _where(_):
    import os
    import sys

    def seen(path):
        return os.listdir(path) if os.path.isdir(path) else []

    return sys.executable, os.getcwd(), seen("/work"), seen(REPO), os.path.exists(sys_executable)


sys_executable = sys.executable


def test_executors_run_the_shipped_environment_and_see_none_of_the_drivers_files(env_cc):
    out = rx_exec(_where, rx_elem_arg(range(4)), compute_context=env_cc)
    for executable, cwd, work, checkout, driver_python in out:
        assert executable == os.path.join(cwd, "environment", "bin", "python")
        assert os.path.realpath(executable) != os.path.realpath(sys.executable)
        assert work == []  # /work (every checkout, its .venv) is an empty private tmpfs on the node
        assert checkout == [] and not driver_python  # so is this checkout and its venv, wherever they are
    assert len({cwd for _, cwd, *_ in out}) == 2  # two executors, each with its own unpacked copy


def test_attaching_with_python_env_to_a_session_started_with_it(env_cc, archive):
    assert RxSpark(spark=env_cc.session, python_env=archive).python_env == archive  # started with it: accepted


def test_a_share_in_the_drivers_local_directory_fails_naming_the_path_and_the_fix(env_cc, tmp_path):
    handle = rx_share(np.arange(10.0), share_dir=str(tmp_path / "local-share"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RxTaskFailureWarning)
        out = rx_exec(handle_sum, rx_elem_arg([handle, handle]), compute_context=env_cc)
    assert all(isinstance(r, RxTaskError) for r in out)
    message = str(out[0])
    assert handle.uri in message
    assert "not visible from this machine" in message and "s3://" in message
    assert rx_exec(handle_sum, rx_elem_arg([handle]), compute_context=rxspark.RxLocalSeq()) == [45.0]


def test_a_share_in_an_s3_store_is_read_on_every_node(env_cc, s3):
    handle = rx_share(np.arange(10.0), share_dir=s3.fresh_uri("shares"))
    assert handle.uri.startswith("s3://")
    assert rx_exec(handle_sum, rx_elem_arg([handle] * 4), compute_context=env_cc) == [45.0] * 4
    handle.delete()
    with pytest.raises(RxShareError):
        handle.value  # noqa: B018 - loading is the point


# The applications below run without the environment: last, so the one above starts once.


def test_without_python_env_the_job_fails_once_naming_the_module_and_the_fix(sessions, cluster, monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", NODE_PYTHON)  # the nodes' own Python: no rxspark, numpy, cloudpickle
    cc = sessions.get("bare", lambda: _on(cluster, extra_spark_config=ONE_ATTEMPT))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RxJobError) as failed:
            rx_exec(tasks.add, rx_elem_arg(range(6)), 1, compute_context=cc)
    message = str(failed.value)
    with pytest.raises(RxArgumentError, match="python_env applies to a Spark application rxspark starts"):
        RxSpark(spark=cc.session, python_env="pack")  # a running session's executors keep their Python
    assert "cannot import the module 'rxspark'" in message
    assert "python_env='pack'" in message and "rxspark pack" in message
    assert not [w for w in caught if issubclass(w.category, RxTaskFailureWarning)]  # one error, not one per task


def test_the_drivers_interpreter_path_is_reported_missing_on_the_nodes(sessions, cluster, monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # what rxspark defaults to without PYSPARK_PYTHON
    cc = sessions.get("driver-python", lambda: _on(cluster, extra_spark_config=ONE_ATTEMPT))
    with pytest.raises(RxJobError) as failed:
        rx_exec(tasks.add, rx_elem_arg(range(4)), 1, compute_context=cc)
    message = str(failed.value)
    assert f"cannot start the Python {sys.executable!r}" in message
    assert "python_env" in message and "PYSPARK_PYTHON" in message


def test_the_guides_client_mode_submit_line_runs_with_only_the_master_changed(sessions, cluster, archive):
    sessions.close()  # the submitted application needs the cluster's cores
    line = next(c for c in recipe.submit_lines() if "--deploy-mode" not in c)
    command = [archive if word == recipe._value(line, "--python-env") else word for word in recipe.on_standalone(line, cluster.master)]
    env = dict(os.environ, _SPARK_AUTH_SECRET=cluster.secret, SPARK_LOCAL_IP="127.0.0.1")
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    done = subprocess.run(
        [os.path.join(REPO, command[0][2:]), *command[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "10000 games in" in done.stdout and "on RxSpark" in done.stdout, done.stdout


_PACK_DRIVER = """
import json, os, sys
from rxspark import RxSpark, rx_elem_arg, rx_exec
from rxspark.pack import default_output

def where(_):
    import sys, numpy
    return sys.executable, numpy.__file__.startswith(sys.prefix)

auth = {"spark.authenticate": "true", "spark.authenticate.secret": os.environ["NODE_TEST_SECRET"]}
with RxSpark(master=sys.argv[1], python_env="pack", num_executors=2, executor_cores=1, executor_mem="512m",
             extra_spark_config=auth, progress=False) as cc:
    out = rx_exec(where, rx_elem_arg(range(4)), compute_context=cc)
print(json.dumps({"out": out, "archive": default_output()}))
"""


def test_python_env_pack_ships_the_drivers_own_environment(sessions, cluster, tmp_path):
    """A driver in the node environment (made from the nodes' Python) with python_env="pack": it packs itself."""
    sessions.close()  # the driver's application needs the cluster's cores
    node = NodeEnvironment().ensure()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), SPARK_LOCAL_IP="127.0.0.1", NODE_TEST_SECRET=cluster.secret)
    done = subprocess.run([node.python, "-c", _PACK_DRIVER, cluster.master], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["archive"].startswith(str(tmp_path / "cache" / "rxspark" / "envs")) and os.path.isfile(report["archive"])
    for executable, numpy_inside in report["out"]:
        assert executable.endswith("/environment/bin/python") and numpy_inside


def _interpreter(_):
    import sys

    import numpy

    return sys.executable, sys.prefix, numpy.__file__.startswith(sys.prefix)


def test_on_spark_connect_python_env_ships_the_archive_as_a_session_artifact(archive):
    """The test session's local Connect server (not the share-nothing cluster): its Python workers run the archive."""
    why = contexts.CONNECT.unavailable()
    if why:
        pytest.skip(why)
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    session = ConnectSession.builder.remote(contexts.CONNECT.url()).create()  # a session of its own
    try:
        cc = RxSpark(spark=session, python_env=archive, progress=False)
        out = rx_exec(_interpreter, rx_elem_arg(range(2)), compute_context=cc)
        for executable, prefix, numpy_inside in out:
            assert executable.endswith(os.path.join("environment", "bin", "python")) and numpy_inside
            assert os.path.realpath(prefix) != os.path.realpath(sys.prefix)
        assert session.conf.get("spark.sql.execution.pyspark.python") == "environment/bin/python"
    finally:
        session.stop()
