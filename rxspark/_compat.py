"""Every private pyspark or joblib attribute rxspark reads, in one place.

Some of what rxspark needs is behind private names (a classic session's JVM
handle, this process's SparkContext, joblib's backend classes) or behind
scheduler calls pyspark does not expose. Each is read here and only here, in a
small named function whose docstring says which versions it was checked on and
what it does when the name is gone, so a new pyspark or joblib breaks one
function, not the engines. The differences between Spark 3.5 and 4.x go here
too (:func:`pyspark_version`, :func:`connect_unsupported`). Checked on
pyspark 4.3.0 and 3.5.9 (the version matrix, ``make test-matrix``) and
joblib 1.6.0.
``tests/test_private_api.py`` fails when another module reads a private
pyspark or joblib attribute.

pyspark and joblib are imported only inside the functions: importing this
module costs nothing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys
from typing import Any

# ---------------------------------------------------------------- pyspark's version: 3.5 or 4.x

#: The oldest pyspark line with a Spark Connect client rxspark supports.
CONNECT_MIN = (4, 0)


def pyspark_version() -> tuple[int, int] | None:
    """``(major, minor)`` of the pyspark this process imports, or None when there is none.

    Reads the public ``pyspark.__version__`` (``"3.5.9"``, ``"4.1.0.dev0"``), so
    a cluster's own PySpark on ``sys.path`` without pip metadata (an EMR or
    Databricks driver) counts; imports pyspark.

    Fallback: None when pyspark is not importable or its version does not parse.
    """
    try:
        import pyspark
    except ImportError:
        return None
    parts = str(getattr(pyspark, "__version__", "")).split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def connect_unsupported() -> str | None:
    """Why this pyspark cannot be rxspark's Spark Connect client (None: it can).

    pyspark 3.5 ships a Connect client, but rxspark's Connect engine is built
    on and tested with the 4.x client and server only (the session's file
    artifacts, tags, ``mapInArrow`` with ``barrier=True``); the 3.5.9 wheel
    has no Connect server to test against (no spark-connect jar, no
    ``sbin/start-connect-server.sh``). API.md fixes it: Connect needs pyspark
    4.x; classic sessions work on 3.5.

    Fallback: None (no objection) when the version cannot be read.
    """
    version = pyspark_version()
    if version is None or version >= CONNECT_MIN:
        return None
    import pyspark

    return (
        f"Spark Connect needs PySpark {CONNECT_MIN[0]}.x; this is PySpark {pyspark.__version__}, which rxspark "
        "supports for classic sessions only (RxSpark(master=...) or spark=<classic session>). "
        "Fix: pip install 'pyspark[connect]>=4,<5', or use a classic session"
    )


# ---------------------------------------------------------------- Python 3.10


if sys.version_info >= (3, 11):
    JobTimeoutError = TimeoutError
else:

    class JobTimeoutError(concurrent.futures.TimeoutError, TimeoutError):  # noqa: N818 - the standard names
        """A wait that timed out: both ``concurrent.futures.TimeoutError`` and the built-in ``TimeoutError``.

        From Python 3.11 they are one class (and this is it); on 3.10 they are
        two, and a job's ``TimeoutError`` (``rx_wait_for_job``, ``RxJob.wait_done``)
        must be caught by either name, as on 3.11 (the version matrix's 3.10 cell).
        """


# ---------------------------------------------------------------- classic pyspark: the process's JVM


def active_spark_context() -> Any | None:
    """This process's running classic ``SparkContext``, or None.

    Reads ``SparkContext._active_spark_context`` (checked on pyspark 4.3.0):
    pyspark has no public accessor that does not start a context
    (``SparkContext.getOrCreate`` does).

    Fallback: None (no running context) when pyspark lacks the attribute, or
    is the Connect-only ``pyspark-client``, which has no ``SparkContext``.
    """
    try:
        from pyspark import SparkContext
    except ImportError:
        return None
    return getattr(SparkContext, "_active_spark_context", None)


def gateway_started() -> bool:
    """Whether this process already runs pyspark's JVM gateway (spark-submit started one, or an earlier session).

    Reads ``SparkContext._gateway`` (checked on pyspark 4.3.0).

    Fallback: False (no gateway known) when pyspark or the attribute is missing.
    """
    try:
        from pyspark import SparkContext
    except ImportError:
        return False
    return getattr(SparkContext, "_gateway", None) is not None


def launch_gateway() -> None:
    """Connect to (or start) pyspark's JVM gateway, so a new ``SparkConf`` reads the JVM's properties.

    Calls ``SparkContext._ensure_initialized()`` (checked on pyspark 4.3.0);
    under spark-submit that is how the submitted properties
    (the master included) reach ``SparkConf``.

    Fallback: nothing when the method is gone (the session's own start then
    launches the gateway; only properties set in the JVM alone go unseen).
    """
    from pyspark import SparkContext

    ensure = getattr(SparkContext, "_ensure_initialized", None)
    if ensure is not None:
        ensure()


def clear_launch_properties(properties: dict[str, str]) -> None:
    """Clear the JVM system properties named in ``properties`` that still hold the value given there.

    PySpark launches its JVM with a new ``SparkContext``'s properties as
    ``spark-submit --conf`` arguments, which makes them JVM system properties;
    every later ``SparkConf()`` in the process reads them back. Reaches the JVM
    through ``SparkContext._jvm`` (checked on pyspark 4.3.0 and 3.5.9; it
    outlives a stopped context).

    Fallback: nothing when there is no gateway (no JVM, nothing to clear).
    """
    from pyspark import SparkContext

    jvm = getattr(SparkContext, "_jvm", None)
    if jvm is None:
        return
    system = jvm.java.lang.System
    for key, value in properties.items():
        if system.getProperty(key) == value:
            system.clearProperty(key)


def instantiated_session() -> Any | None:
    """The classic ``SparkSession`` pyspark made last in this process (any thread), or None.

    Reads ``SparkSession._instantiatedSession`` (checked on pyspark 4.3.0).
    ``SparkSession.getActiveSession()`` is per thread and misses
    a session started in another one.

    Fallback: None; the caller then wraps the running ``SparkContext`` in a new session.
    """
    from pyspark.sql import SparkSession

    return getattr(SparkSession, "_instantiatedSession", None)


def java_spark_context(sc: Any) -> Any | None:
    """The ``JavaSparkContext`` behind a classic ``SparkContext`` (``sc._jsc``), or None once it is stopped.

    Checked on pyspark 4.3.0: ``SparkContext.stop()`` sets ``_jsc`` to None.
    rxspark reads it to tell a stopped context, and to reach the scheduler
    calls below.

    Fallback: None (reads as stopped).
    """
    return getattr(sc, "_jsc", None)


def _scala_context(sc: Any) -> Any:
    """The Scala ``SparkContext`` behind ``sc`` (``sc._jsc.sc()``); raises when it is stopped."""
    jsc = java_spark_context(sc)
    if jsc is None:
        raise RuntimeError("the SparkContext is stopped")
    return jsc.sc()


def max_concurrent_tasks(sc: Any) -> int | None:
    """How many tasks can run at once on the context's current executors, or None when unknown.

    Calls the Scala ``SparkContext.maxNumConcurrentTasks(ResourceProfile)``,
    ``private[spark]`` (checked on Spark 4.3.0): the figure Spark sizes
    barrier stages by.

    Fallback: None (callers use the default parallelism).
    """
    try:
        scala = _scala_context(sc)
        return int(scala.maxNumConcurrentTasks(scala.resourceProfileManager().defaultResourceProfile()))
    except Exception:  # noqa: BLE001 - an internal API: unknown rather than wrong
        return None


def executor_ids(sc: Any) -> list[str] | None:
    """The ids of the context's registered executors, or None when they cannot be read.

    Calls the Scala ``SparkContext.getExecutorIds()`` (a developer API; checked
    on Spark 4.3.0).

    Fallback: None (callers then do not cache per executor set, or stop waiting).
    """
    try:
        ids = _scala_context(sc).getExecutorIds()
        return [str(ids.apply(i)) for i in range(ids.size())]
    except Exception:  # noqa: BLE001 - a stopped context, or an internal API gone
        return None


def cancel_job_group(sc: Any, group: str) -> None:
    """Cancel the running and future jobs of job group ``group``. Never raises.

    Calls the Scala ``SparkContext.cancelJobGroupAndFutureJobs`` (checked on
    Spark 4.3.0; an older Spark may lack it): it also cancels a job of the
    group not submitted yet (a cancel that comes before the job's action
    reached Spark), and logs no warning when the group has no active job.

    Fallback (a Spark without it, or a stopped context): the public ``sc.cancelJobGroup``,
    which cancels only the group's active jobs; errors are swallowed.
    """
    try:
        _scala_context(sc).cancelJobGroupAndFutureJobs(group)
    except Exception:  # noqa: BLE001 - an older Spark, or a stopped context
        with contextlib.suppress(Exception):
            sc.cancelJobGroup(group)


def console_progress_bar(sc: Any) -> bool | None:
    """Whether Spark draws its console progress bar in this context, or None when that cannot be read.

    Calls the Scala ``SparkContext.progressBar`` (``private[spark]``, an
    ``Option``; checked on Spark 4.3.0).

    Fallback: None (callers read ``spark.ui.showConsoleProgress`` instead).
    """
    try:
        return bool(_scala_context(sc).progressBar().isDefined())
    except Exception:  # noqa: BLE001 - an internal API
        return None


def drop_accumulator(accumulator: Any) -> None:
    """Forget ``accumulator`` on the driver, so neither it nor what it references outlives its job.

    pyspark keeps every accumulator of the process in
    ``pyspark.accumulators._accumulatorRegistry`` and never removes one
    (checked on pyspark 4.3.0); its update server ignores updates for ids
    no longer there.

    Fallback: nothing when the registry is gone (an accumulator per job stays in memory).
    """
    from pyspark import accumulators

    registry = getattr(accumulators, "_accumulatorRegistry", None)
    if isinstance(registry, dict):
        registry.pop(accumulator.aid, None)


# ---------------------------------------------------------------- Spark Connect client


def default_connect_session() -> Any | None:
    """The Spark Connect session of this process: the active one of this thread, else the default one.

    Reads ``pyspark.sql.connect.session.SparkSession._default_session`` beside the
    public ``getActiveSession()`` (checked on pyspark 4.3.0).

    Fallback: the active session only, or None when the Connect client is not installed.
    """
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession

        return ConnectSession.getActiveSession() or getattr(ConnectSession, "_default_session", None)
    except Exception:  # noqa: BLE001 - a client without Connect dependencies
        return None


def connect_endpoint(session: Any) -> str | None:
    """``host:port`` of a Spark Connect session's server, or None when the client does not say.

    Reads ``session.client._builder.endpoint`` (checked on pyspark 4.3.0); the
    client has no public accessor for the server it talks to.

    Fallback: None.
    """
    try:
        return str(session.client._builder.endpoint)
    except Exception:  # noqa: BLE001 - another client version
        return None


# ---------------------------------------------------------------- joblib


def joblib_backend_bases() -> tuple[type, type, type, type]:
    """joblib's ``(AutoBatchingMixin, FallbackToBackend, ParallelBackendBase, SequentialBackend)``.

    From ``joblib.parallel``, which re-exports them for third-party backends
    (checked on joblib 1.6.0; rxspark accepts joblib 1.3 and later),
    else from where they are defined, the private ``joblib._parallel_backends``.

    Fallback: none past those two; a joblib without them is one rxspark does not support.

    Raises:
        ImportError: Neither module has them (a joblib rxspark does not support).
    """
    try:
        from joblib.parallel import AutoBatchingMixin, FallbackToBackend, ParallelBackendBase, SequentialBackend
    except ImportError:
        from joblib._parallel_backends import (  # type: ignore[no-redef]
            AutoBatchingMixin,
            FallbackToBackend,
            ParallelBackendBase,
            SequentialBackend,
        )
    return AutoBatchingMixin, FallbackToBackend, ParallelBackendBase, SequentialBackend


def joblib_multiprocessing() -> Any | None:
    """The ``multiprocessing`` module as joblib sees it: None when joblib runs without multiprocessing.

    Reads ``joblib._multiprocessing_helpers.mp`` (checked on joblib 1.6.0):
    None when ``JOBLIB_MULTIPROCESSING=0`` or the platform has no working
    semaphores.

    Fallback: the standard ``multiprocessing`` unless ``JOBLIB_MULTIPROCESSING`` is 0.
    """
    try:
        from joblib._multiprocessing_helpers import mp
    except ImportError:
        if not int(os.environ.get("JOBLIB_MULTIPROCESSING", 1)):
            return None
        import multiprocessing as mp
    return mp
