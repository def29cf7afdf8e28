"""The compute contexts the test suite runs on: one table, one entry per context.

Each entry is a factory plus what pytest must know about it: its marks (so
``-m "not spark and not cluster"`` starts no JVM), properties to pick a subset
by (``kind``, where its tasks run, whether it is a multi-executor cluster) and
what it needs on this machine (a missing need skips its tests, saying which).
Every test that runs on "each context" parametrizes from this table: the
conformance suite (conformance.py), the non-blocking job tests, RxExecutor,
the joblib backend, CPython's futures tests, the reliability suite's user
errors, and joblib's own suite (joblib_plugin.py). A new context joins all of
them with one entry in ``CONTEXTS``; a test that leaves it out says so by a
property or ``excluding=``, with the reason next to it.

Instances are shared for the whole test session -- a Spark ``local[2]``
session costs about 6 s to start, the Connect server about 18 s -- and made on
first use, so a run that selects no Spark test starts no JVM. PySpark allows
one classic SparkContext per process: making one classic Spark context closes
the other (tests parametrized through ``on()`` are grouped by context, so that
happens rarely). A Connect client session lives next to a classic one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from connect_server import ConnectServer, connect_unavailable

import rxspark


def _no_java() -> str | None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Spark tests need Java 17+ (none found; `make java` installs one)"
    return None


class ConnectServers:
    """The test session's local Spark Connect server (tests/connect_server.py), started on first use."""

    def __init__(self) -> None:
        self.server: ConnectServer | None = None
        self.failed: str | None = None

    def unavailable(self) -> str | None:
        """Why no Connect server can run here (None: it can, or it runs)."""
        return None if self.server is not None else self.failed or connect_unavailable()

    def url(self) -> str:
        if self.server is None:
            why = self.unavailable()
            if why:
                pytest.skip(why)
            try:
                self.server = ConnectServer().start()
            except Exception as exc:  # noqa: BLE001 - remembered: every later Connect test skips at once, saying why
                self.failed = f"the local Spark Connect server did not start: {exc}"
                pytest.skip(self.failed)
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


CONNECT = ConnectServers()


@dataclass(frozen=True)
class Context:
    """One entry of the table.

    Attributes:
        name: The test id (``test_x[localpar]``) and the key of ``shared()``.
        factory: Makes a ready context (a Spark one connected, so its start-up is not charged to a test).
        kind: ``"local"`` or ``"spark"``.
        runs_in: Where tasks run: ``"driver"`` (the caller's thread), ``"threads"`` (of the driver
            process) or ``"processes"`` (which a cancel can stop, a crash can lose).
        cluster: More than one executor (processes on other "nodes").
        classic_spark: Holds the process's one classic SparkContext.
        marks: pytest marks of every test on this context.
        needs: Why the context cannot run on this machine (None: it can).
    """

    name: str
    factory: Callable[[], rxspark.ComputeContext]
    kind: str
    runs_in: str
    cluster: bool = False
    classic_spark: bool = False
    marks: tuple = ()
    needs: Callable[[], str | None] = lambda: None


def _spark(**kwargs) -> Callable[[], rxspark.ComputeContext]:
    return lambda: rxspark.RxSpark(progress=False, **kwargs).connect()


CONTEXTS: dict[str, Context] = {
    c.name: c
    for c in [
        Context("seq", rxspark.RxLocalSeq, "local", "driver"),
        Context("localpar", lambda: rxspark.RxLocalParallel(2), "local", "processes"),
        Context("dopar-thread", lambda: rxspark.RxForeachDoPar(ThreadPoolExecutor(2)), "local", "threads"),
        # Before spark-local: tests grouped by context then end on local[2], the classic session
        # most Spark-only tests (test_spark.py, test_progress.py ...) use, which saves a restart.
        Context(
            "spark-cluster", _spark(master="local-cluster[2,1,1024]"), "spark", "processes", cluster=True,
            classic_spark=True, marks=(pytest.mark.spark, pytest.mark.cluster), needs=_no_java,
        ),
        Context(
            "spark-local", _spark(master="local[2]"), "spark", "processes", classic_spark=True,
            marks=(pytest.mark.spark,), needs=_no_java,
        ),
        # A client of the session's local Connect server (local[2,4]: 2 slots, crashed workers retried).
        Context(
            "spark-connect", lambda: rxspark.RxSpark(remote=CONNECT.url(), progress=False).connect(), "spark",
            "processes", marks=(pytest.mark.spark,), needs=CONNECT.unavailable,
        ),
    ]
}


def names(*, kind: str | None = None, runs_in: str | tuple[str, ...] | None = None, cluster: bool | None = None,
          excluding: tuple[str, ...] | set[str] = ()) -> list[str]:
    """The names of the table's contexts with the given properties, in table order (``runs_in``: one or several)."""
    if isinstance(runs_in, str):
        runs_in = (runs_in,)
    unknown = set(excluding) - set(CONTEXTS)
    if unknown:  # a renamed context must not silently rejoin a test that left it out
        raise KeyError(f"excluding names no context: {sorted(unknown)}; the contexts are {list(CONTEXTS)}")
    return [
        c.name
        for c in CONTEXTS.values()
        if (kind is None or c.kind == kind)
        and (runs_in is None or c.runs_in in runs_in)
        and (cluster is None or c.cluster == cluster)
        and c.name not in excluding
    ]


def params(*, marks: dict[str, pytest.MarkDecorator] | None = None, **selection) -> list:
    """``names(**selection)`` as pytest params carrying each context's marks, plus ``marks[name]`` for this test."""
    marks = dict(marks or {})
    selected = names(**selection)
    if set(marks) - set(selected):
        raise KeyError(f"marks for contexts not selected: {sorted(set(marks) - set(selected))}")
    return [
        pytest.param(name, marks=[*CONTEXTS[name].marks, *([marks[name]] if name in marks else [])], id=name)
        for name in selected
    ]


def on(*, marks: dict[str, pytest.MarkDecorator] | None = None, **selection) -> pytest.MarkDecorator:
    """Run a test that takes the ``cc`` fixture on a subset of the contexts (all of them without it).

    The names go to conftest's session-scoped ``cc_name`` fixture, so pytest
    groups these tests with every other test on the same context. ``marks``
    adds a mark on one context for this test only (an ``xfail(strict=True)``
    naming a known bug).
    """
    return pytest.mark.parametrize("cc_name", params(marks=marks, **selection), indirect=True)


class SharedContexts:
    """The session's contexts, made on first use, at most one classic Spark context alive."""

    def __init__(self) -> None:
        self.made: dict[str, rxspark.ComputeContext] = {}

    def get(self, name: str) -> rxspark.ComputeContext:
        if name in self.made:
            return self.made[name]
        entry = CONTEXTS[name]
        why = entry.needs()
        if why:
            pytest.skip(why)
        if entry.classic_spark:
            for other in [n for n in self.made if CONTEXTS[n].classic_spark]:
                self.made.pop(other).close()
        self.made[name] = entry.factory()
        return self.made[name]

    def close(self) -> None:
        """Close every context, then stop the Connect server (its clients first)."""
        try:
            for cc in self.made.values():
                cc.close()
            self.made.clear()
        finally:
            CONNECT.stop()


SHARED = SharedContexts()


def shared(name: str) -> rxspark.ComputeContext:
    """The session's context ``name`` (looked up anew each time: making a classic one replaces the other)."""
    return SHARED.get(name)
