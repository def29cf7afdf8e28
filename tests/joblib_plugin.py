"""A pytest plugin that runs joblib's own backend tests on the rxspark backend.

``python -m pytest --pyargs joblib.test.test_parallel -p joblib_plugin -k rxspark``
(with ``tests/`` on ``sys.path``): importing this plugin imports
``rxspark.joblib`` before joblib's test module is collected, so the module's
backend lists (built at import from ``joblib.parallel.BACKENDS``) include
``"rxspark"``. The backend's default compute context is the active one, set here
from ``RXSPARK_JOBLIB_CONTEXT``: the name of a context of tests/contexts.py
(``localpar``, the default; ``spark-local``, ``spark-connect`` ...; ``spark``
is ``spark-local``), made once for the run (a Connect server started for it)
and closed at its end.

joblib's own backends exist in every process; a third-party backend exists where
its module was imported. rxspark's workers import ``rxspark.joblib`` when they
unpickle a task, but a loky worker running ``Parallel(backend="rxspark")`` from
joblib's ``test_nested_loop`` imports only joblib's test module. So, as if
rxspark were installed site-wide, every Python process this run starts imports
``rxspark.joblib`` at startup: a ``sitecustomize`` in a temporary directory put
on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import contexts  # noqa: E402
import pytest  # noqa: E402

import rxspark  # noqa: E402
import rxspark.joblib  # noqa: E402,F401 - registers the backend before joblib's tests are collected

ALIASES = {"spark": "spark-local"}  # the name test_joblib_suite.py has used
_context: rxspark.ComputeContext | None = None
_site_dir: str | None = None
_SITECUSTOMIZE = """\
try:
    import rxspark.joblib  # registers the joblib backend "rxspark" in every process of the test run
except ImportError:
    pass
"""


def _make(name: str) -> rxspark.ComputeContext:
    entry = contexts.CONTEXTS.get(ALIASES.get(name, name))
    if entry is None:
        raise pytest.UsageError(
            f"RXSPARK_JOBLIB_CONTEXT must name a context of tests/contexts.py, one of {list(contexts.CONTEXTS)}, "
            f"got {name!r}"
        )
    why = entry.needs()
    if why:
        raise pytest.UsageError(f"RXSPARK_JOBLIB_CONTEXT={name}: {why}")
    try:
        return contexts.shared(entry.name)
    except pytest.skip.Exception as exc:  # the Connect server did not start: an error here, not a skip
        raise pytest.UsageError(f"RXSPARK_JOBLIB_CONTEXT={name}: {exc.msg}") from None


def _register_in_child_processes() -> None:
    global _site_dir
    _site_dir = tempfile.mkdtemp(prefix="rxspark-joblib-site-")
    with open(os.path.join(_site_dir, "sitecustomize.py"), "w") as f:
        f.write(_SITECUSTOMIZE)
    paths = [_site_dir, os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)


def pytest_configure(config) -> None:
    global _context
    _register_in_child_processes()
    # joblib's own configuration (not shipped in its wheel) declares these markers.
    config.addinivalue_line("markers", "thread_unsafe: not safe to run in parallel threads")
    config.addinivalue_line("markers", "no_cover: not run under coverage")
    _context = _make(os.environ.get("RXSPARK_JOBLIB_CONTEXT", "localpar"))
    rxspark.rx_set_compute_context(_context)


def pytest_report_header(config) -> str:
    return f"rxspark joblib backend on {_context!r}"


def pytest_unconfigure(config) -> None:
    global _context
    if _context is not None:
        rxspark.rx_set_compute_context("local")
        contexts.SHARED.close()  # and the Connect server, if one was started for the run
        _context = None
    if _site_dir is not None:
        shutil.rmtree(_site_dir, ignore_errors=True)
