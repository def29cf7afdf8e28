"""Shared fixtures: the compute contexts the conformance suite runs on.

``cc`` is a session-scoped, parametrized fixture, so pytest groups all tests
by context and each Spark session starts once. PySpark allows one
SparkContext per process: the registry stops one classic Spark context before
it starts another. "spark-connect" is a client of a local Spark Connect server
(started once per test session, stopped by its pid at the end); a Connect
client session lives next to a classic one in the same process.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
sys.path.insert(0, os.path.dirname(__file__))

import tasks  # noqa: E402
from connect_server import ConnectServer, connect_unavailable  # noqa: E402

import rxspark  # noqa: E402

# Spark workers do not see the tests' sys.path: ship the test helpers by value.
cloudpickle.register_pickle_by_value(tasks)

LOCAL_CONTEXTS = ["seq", "localpar", "dopar-thread"]
SPARK_CONTEXTS = {
    "spark-local": dict(master="local[2]"),
    "spark-cluster": dict(master="local-cluster[2,1,1024]"),
}
ALL_CONTEXTS = LOCAL_CONTEXTS + [
    pytest.param("spark-local", marks=pytest.mark.spark),
    pytest.param("spark-cluster", marks=[pytest.mark.spark, pytest.mark.cluster]),
    pytest.param("spark-connect", marks=pytest.mark.spark),
]


class ConnectServers:
    """The test session's local Spark Connect server, started on first use."""

    def __init__(self) -> None:
        self.server: ConnectServer | None = None
        self.failed: str | None = None

    def url(self) -> str:
        if self.server is None:
            why = self.failed or connect_unavailable()
            if why:
                pytest.skip(why)
            try:
                self.server = ConnectServer().start()
            except Exception as exc:  # noqa: BLE001 - every Connect test skips with the reason
                self.failed = f"the local Spark Connect server did not start: {exc}"
                pytest.skip(self.failed)
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


CONNECT = ConnectServers()


class ContextRegistry:
    """Creates contexts on demand, keeps at most one Spark context alive."""

    def __init__(self) -> None:
        self.made: dict[str, rxspark.ComputeContext] = {}

    def get(self, name: str) -> rxspark.ComputeContext:
        if name in self.made:
            return self.made[name]
        if name in SPARK_CONTEXTS:
            for other in [n for n in self.made if n in SPARK_CONTEXTS]:
                self.made.pop(other).close()
            self.made[name] = rxspark.RxSpark(**SPARK_CONTEXTS[name], progress=False).connect()
        elif name == "spark-connect":
            self.made[name] = rxspark.RxSpark(remote=CONNECT.url(), progress=False).connect()
        elif name == "seq":
            self.made[name] = rxspark.RxLocalSeq()
        elif name == "localpar":
            self.made[name] = rxspark.RxLocalParallel(2)
        elif name == "dopar-thread":
            self.made[name] = rxspark.RxForeachDoPar(ThreadPoolExecutor(2))
        else:
            raise KeyError(name)
        return self.made[name]

    def close(self) -> None:
        for cc in self.made.values():
            cc.close()
        self.made.clear()


REGISTRY = ContextRegistry()


def pytest_sessionfinish(session, exitstatus):
    try:
        REGISTRY.close()
    finally:
        CONNECT.stop()


@pytest.fixture
def spark_connect():
    return REGISTRY.get("spark-connect")


@pytest.fixture(scope="session")
def connect_url() -> str:
    return CONNECT.url()


@pytest.fixture(scope="session")
def registry() -> ContextRegistry:
    return REGISTRY


@pytest.fixture(scope="session", params=ALL_CONTEXTS)
def cc_name(request) -> str:
    """Session-scoped, so pytest groups the tests by context (one Spark start each)."""
    return request.param


@pytest.fixture
def cc(cc_name):
    """Each compute context of the conformance suite (looked up anew: the registry may have replaced it)."""
    return REGISTRY.get(cc_name)


@pytest.fixture
def spark_local():
    return REGISTRY.get("spark-local")


@pytest.fixture
def spark_cluster():
    return REGISTRY.get("spark-cluster")


@pytest.fixture(scope="session", autouse=True)
def _private_share_dir(tmp_path_factory):
    """Job records and shares of the tests stay out of ~/.rxspark."""
    before = rxspark.rx_options()["share_dir"]
    rxspark.rx_options(share_dir=str(tmp_path_factory.mktemp("rxspark-share")))
    yield
    rxspark.rx_options(share_dir=before)


@pytest.fixture
def share_dir(tmp_path):
    """A private job store for one test, used by every context without its own share_dir."""
    path = str(tmp_path / "jobs")
    previous = rxspark.rx_options()["share_dir"]
    rxspark.rx_options(share_dir=path)
    yield path
    rxspark.rx_options(share_dir=previous)


@pytest.fixture(autouse=True)
def _reset_active_context():
    previous = rxspark.rx_get_compute_context()
    yield
    rxspark.rx_set_compute_context(previous)
