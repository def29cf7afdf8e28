"""Shared fixtures: the compute contexts the conformance suite runs on.

Every context is created once per test session (Spark sessions take seconds
to start) and closed at the end.
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

import rxspark  # noqa: E402

# Spark workers do not see the tests' sys.path: ship the test helpers by value.
cloudpickle.register_pickle_by_value(tasks)

LOCAL_CONTEXTS = ["seq", "localpar", "dopar-thread"]


@pytest.fixture(scope="session")
def _contexts():
    made: dict[str, rxspark.ComputeContext] = {}
    yield made
    for cc in made.values():
        cc.close()


def make_context(name: str, made: dict) -> rxspark.ComputeContext:
    if name not in made:
        if name == "seq":
            made[name] = rxspark.RxLocalSeq()
        elif name == "localpar":
            made[name] = rxspark.RxLocalParallel(2)
        elif name == "dopar-thread":
            made[name] = rxspark.RxForeachDoPar(ThreadPoolExecutor(2))
        else:
            raise KeyError(name)
    return made[name]


@pytest.fixture(params=LOCAL_CONTEXTS)
def cc(request, _contexts):
    """Each compute context of the conformance suite."""
    return make_context(request.param, _contexts)


@pytest.fixture(autouse=True)
def _reset_active_context():
    previous = rxspark.rx_get_compute_context()
    yield
    rxspark.rx_set_compute_context(previous)
