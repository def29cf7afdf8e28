"""CPython's own concurrent.futures tests, run against RxExecutor on each compute context.

The executor-agnostic mixins of ``test/test_concurrent_futures.py`` (``ExecutorTest``,
``WaitTests``, ``AsCompletedTests``, ``ExecutorShutdownTest``) are loaded from where this
interpreter's test suite is installed (Debian: ``libpython3.X-testsuite``; see
``scripts/ensure-test-libs.sh``), never copied here. Its helper functions travel by value.
The only tests skipped start a child interpreter that imports the executor from
``concurrent.futures``, which cannot name RxExecutor.

unittest classes cannot take a parametrized fixture, so one class per mixin
and context is made here from the table in contexts.py
(``RxSparkConnectWaitTests`` ...), on every context but the two-executor
cluster: the executor sees only the compute context's interface, which
local[2] and Connect already exercise on Spark, and these classes, not grouped
by context as ``cc`` tests are, would switch the one classic SparkContext of
the process to the cluster and back.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import unittest

import cloudpickle
import contexts
import pytest

from rxspark import RxExecutor

_VERSION = "{}.{}".format(*sys.version_info[:2])
_CANDIDATES = [
    f"/usr/lib/python{_VERSION}/test/test_concurrent_futures.py",
    f"/usr/lib/python{_VERSION}/test/test_concurrent_futures/__init__.py",
    os.path.join(os.path.dirname(os.__file__), "test", "test_concurrent_futures.py"),
    os.path.join(sys.base_prefix, "lib", f"python{_VERSION}", "test", "test_concurrent_futures.py"),
]
_PATH = next((p for p in _CANDIDATES if os.path.isfile(p)), None)
if _PATH is None:
    pytest.skip(
        f"CPython {_VERSION}'s test_concurrent_futures.py is not installed (looked in {_CANDIDATES}); "
        f"Debian: apt-get install libpython{_VERSION}-testsuite (scripts/ensure-test-libs.sh does it as root)",
        allow_module_level=True,
    )
_spec = importlib.util.spec_from_file_location("cpython_test_concurrent_futures", _PATH)
cpython = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cpython
_spec.loader.exec_module(cpython)
cloudpickle.register_pickle_by_value(cpython)  # its helpers (mul, sleep_and_raise ...) must reach the workers

_CHILD = (
    "starts a child interpreter running `from concurrent.futures import {name}`, which cannot name "
    "RxExecutor (rxspark's executor lives in rxspark)"
)


class _Skips:
    """The tests of ExecutorShutdownTest that need the executor in ``concurrent.futures``."""

    @unittest.skip(_CHILD.format(name="RxExecutor"))
    def test_interpreter_shutdown(self):
        pass

    @unittest.skip(_CHILD.format(name="RxExecutor"))
    def test_submit_after_interpreter_shutdown(self):
        pass

    @unittest.skip(_CHILD.format(name="RxExecutor"))
    def test_hang_gh83386(self):
        pass


def _mixin(context_name: str) -> type:
    class RxMixin(cpython.ExecutorMixin):
        executor_type = RxExecutor

        @property
        def executor_kwargs(self):
            return {"compute_context": contexts.shared(context_name)}

    return RxMixin


_SUITES = {
    "ExecutorTest": (cpython.ExecutorTest,),
    "WaitTests": (cpython.WaitTests,),
    "AsCompletedTests": (cpython.AsCompletedTests,),
    "ShutdownTest": (_Skips, cpython.ExecutorShutdownTest),
}

for _name in contexts.names(cluster=False):
    _base = _mixin(_name)
    _label = "".join(part.capitalize() for part in _name.split("-"))
    for _suite, _bases in _SUITES.items():
        _cls_name = f"Rx{_label}{_suite}"
        globals()[_cls_name] = type(
            _cls_name,
            (_base, *_bases, cpython.BaseTestCase),
            {"pytestmark": list(contexts.CONTEXTS[_name].marks), "__module__": __name__},
        )
del _label, _name, _base, _suite, _bases, _cls_name
