"""Shared fixtures: the compute contexts (from the table in contexts.py) and a private job store.

``cc`` is each context of the table, through the session-scoped ``cc_name``
fixture, so pytest groups all tests by context and each Spark session starts
once; ``contexts.on(...)`` narrows a test to a subset. The named fixtures
(``spark_local``, ``spark_cluster``, ``spark_connect``) are the same shared
instances, for the tests of one backend.
"""

from __future__ import annotations

import os
import sys

import cloudpickle
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
sys.path.insert(0, os.path.dirname(__file__))

import contexts  # noqa: E402
import jobtasks  # noqa: E402
import tasks  # noqa: E402

import rxspark  # noqa: E402

# Spark workers do not see the tests' sys.path: ship the test helpers by value.
cloudpickle.register_pickle_by_value(tasks)
cloudpickle.register_pickle_by_value(jobtasks)

# The local contexts, under the name test_rng.py imports them by.
LOCAL_CONTEXTS = contexts.names(kind="local")


def pytest_sessionfinish(session, exitstatus):
    contexts.SHARED.close()


@pytest.fixture(scope="session")
def registry() -> contexts.SharedContexts:
    return contexts.SHARED


@pytest.fixture(scope="session", params=contexts.params())
def cc_name(request) -> str:
    """Session-scoped, so pytest groups the tests by context (one Spark start each)."""
    return request.param


@pytest.fixture
def cc(cc_name):
    """Each compute context of the table (looked up anew: making a classic Spark context replaces the other)."""
    return contexts.shared(cc_name)


@pytest.fixture
def spark_local():
    return contexts.shared("spark-local")


@pytest.fixture
def spark_cluster():
    return contexts.shared("spark-cluster")


@pytest.fixture
def spark_connect():
    return contexts.shared("spark-connect")


@pytest.fixture(scope="session")
def connect_url() -> str:
    return contexts.CONNECT.url()


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
