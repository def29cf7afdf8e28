"""RxSpark, the compute context of Apache Spark, and the module functions around it.

``RxSpark`` validates its arguments, holds the session (found, started or
given: session.py) and whether rxspark started it, and hands the work to the
engine that accepts the session's kind (:data:`ENGINES`). Connecting,
disconnecting and the active context go through ``rxspark._active``.
"""

from __future__ import annotations

import contextlib
import html as _html
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

from ... import _active, progress
from ...errors import RxArgumentError, RxArgumentTypeError, RxSparkUnavailableError
from ...pack import check_python_env
from .. import registry
from ..base import ComputeContext, JobSink, check_positive_int
from . import session as sessions
from .classic import ClassicEngine
from .connect import ConnectEngine, is_connect_session
from .engine import SparkEngine

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

# The engines, asked in order which one runs a session's jobs: the one place an engine is chosen.
ENGINES: tuple[type[SparkEngine], ...] = (ConnectEngine, ClassicEngine)


def _engine_class(session: Any) -> type[SparkEngine] | None:
    return next((engine for engine in ENGINES if engine.accepts(session)), None)


class RxSpark(ComputeContext):
    """Run ``rx_exec`` jobs on Apache Spark.

    With no ``spark`` session given, attaches to the active SparkSession (a
    notebook, ``spark-submit``) or starts one: the embedded ``local[*]`` unless
    ``master`` says otherwise. A session rxspark started is stopped by
    ``close()``; one it attached to never is.

    Args:
        spark: A SparkSession to use.
        master: Master URL for a new session (``local[*]``, ``local-cluster[2,1,1024]``,
            ``spark://host:7077``, ``yarn``, ``k8s://https://host:443``). A local master
            gets a retry count (``local[*]`` runs as ``local[*,4]``, or with
            ``spark.task.maxFailures``), so crashed Python workers are retried there too.
        app_name: Application name of a new session.
        num_executors: ``spark.executor.instances``.
        executor_cores: ``spark.executor.cores``.
        executor_mem: ``spark.executor.memory`` (e.g. ``"4g"``).
        driver_mem: ``spark.driver.memory``.
        executor_overhead_mem: ``spark.executor.memoryOverhead``.
        extra_spark_config: Any other Spark properties, as a dict.
        packages_to_load: Modules imported on every worker for every job.
        console_output: Print each task's output on the driver when results are collected.
        auto_cleanup: Delete job artifacts once results are returned.
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        share_dir: Where job records and shared data are kept.
        progress: Show a progress bar: None (only when interactive), True or False.
        startup_timeout: Seconds to wait for a new session and its executors.
        remote: A Spark Connect URL (``sc://host:15002``): connect to that server
            instead of starting a JVM here (needs ``pyspark[connect]`` or ``pyspark-client``).
            On Connect, ``num_executors``, ``executor_cores``, ``executor_mem``,
            ``driver_mem``, ``executor_overhead_mem`` and ``extra_spark_config``
            properties other than ``spark.sql.*`` cannot be applied by a client and
            raise ``RxArgumentError``.
        python_env: The Python environment the executors run, for clusters whose nodes lack
            your packages: the path or URI of a packed environment archive (``.tar.gz``, ``.tgz``,
            ``.tar`` or ``.zip``; made by ``rxspark pack``, venv-pack or conda-pack), shipped with
            the application (``spark.archives``, or an archive artifact on Connect) and run as
            ``./environment/bin/python``; ``"pack"`` packs the current environment once (reused
            while it does not change: :func:`rxspark.pack.packed_environment`). None: the nodes'
            own Python (``PYSPARK_PYTHON``). A classic session rxspark attaches to cannot change
            its executors' Python: start it with the archive instead (docs/guide/yarn.md).

    Raises:
        RxSparkUnavailableError: On first use, when Spark cannot start (no Java,
            Java too old, unreachable master ...), with the fix in the message.
    """

    name = "RxSpark"

    def __init__(
        self,
        spark: SparkSession | None = None,
        master: str | None = None,
        app_name: str = "rxspark",
        num_executors: int | None = None,
        executor_cores: int | None = None,
        executor_mem: str | None = None,
        driver_mem: str | None = None,
        executor_overhead_mem: str | None = None,
        extra_spark_config: dict[str, Any] | None = None,
        packages_to_load: list[str] | None = None,
        console_output: bool = False,
        auto_cleanup: bool = True,
        wait: bool = True,
        share_dir: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
        startup_timeout: float = 120.0,
        remote: str | None = None,
        python_env: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            wait=wait,
            console_output=console_output,
            auto_cleanup=auto_cleanup,
            packages_to_load=packages_to_load,
            share_dir=share_dir,
            progress=progress,
        )
        if spark is not None and _engine_class(spark) is None:
            raise RxArgumentTypeError(f"RxSpark: spark must be a SparkSession, got {type(spark).__name__}")
        if remote is not None and not (isinstance(remote, str) and remote.startswith("sc://")):
            raise RxArgumentError(f"RxSpark: remote must be a Spark Connect URL like 'sc://host:15002', got {remote!r}")
        if remote is not None and (spark is not None or master is not None):
            raise RxArgumentError("RxSpark: give at most one of spark, master and remote")
        if master is not None and (not isinstance(master, str) or not master):
            raise RxArgumentError(f"RxSpark: master must be a Spark master URL string, got {master!r}")
        if not isinstance(app_name, str) or not app_name:
            raise RxArgumentError(f"RxSpark: app_name must be a non-empty string, got {app_name!r}")
        check_positive_int("RxSpark", "num_executors", num_executors)
        check_positive_int("RxSpark", "executor_cores", executor_cores)
        for arg, value in (("executor_mem", executor_mem), ("driver_mem", driver_mem), ("executor_overhead_mem", executor_overhead_mem)):
            if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d+[kmgtp]?b?", value.lower())):
                raise RxArgumentError(f"RxSpark: {arg} must be a size like '512m' or '4g', got {value!r}")
        if extra_spark_config is not None and (
            not isinstance(extra_spark_config, dict) or not all(isinstance(k, str) for k in extra_spark_config)
        ):
            raise RxArgumentTypeError("RxSpark: extra_spark_config must be a dict of Spark property name -> value")
        self.master = master
        self.app_name = app_name
        self.num_executors = num_executors
        self.executor_cores = executor_cores
        self.executor_mem = executor_mem
        self.driver_mem = driver_mem
        self.executor_overhead_mem = executor_overhead_mem
        self.extra_spark_config = dict(extra_spark_config or {})
        self.startup_timeout = startup_timeout
        self.remote = remote
        self.python_env = check_python_env(python_env)
        self._lock = threading.RLock()
        # The session and its engine are set together (both None before first use and after close()).
        self._spark: SparkSession | None = None
        self._engine: SparkEngine | None = None
        self._owned = False
        if remote is not None:
            self._check_connect_settings()
        if spark is not None:
            self._use(spark, owned=False)
        elif remote is None and master is None and "pyspark" in sys.modules:
            # A session already runs here (a notebook's, spark-submit's): attach now, which costs
            # nothing, so the context says where it runs from the start.
            active = sessions.running_session()
            if active is not None:
                self._use(active, owned=False)

    # ------------------------------------------------------------ the session

    def spark_config(self, master: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
        """The Spark properties a new session gets: (defaults, explicit).

        Defaults apply only where nothing else (spark-submit, the environment)
        set the property; explicit ones (constructor arguments and
        ``extra_spark_config``) always apply.
        """
        return sessions.spark_config(self, master)

    def connect(self) -> RxSpark:
        """Start (or attach to) the Spark application now."""
        self._running_engine()
        return self

    @property
    def session(self) -> SparkSession:
        """The SparkSession (started or attached on first use)."""
        return self._running_engine().session

    @property
    def spark_context(self) -> SparkContext:
        """The SparkContext of a classic session (a Connect session has none; use :attr:`session`)."""
        session = self.session
        if is_connect_session(session):
            raise RxSparkUnavailableError(
                "RxSpark: this is a Spark Connect session, which has no SparkContext; "
                "use rx_get_spark_session() (or RxSpark.session) for the SparkSession"
            )
        return session.sparkContext

    @property
    def is_connect(self) -> bool:
        """Whether the context runs on a Spark Connect session (starts or attaches to the session)."""
        return isinstance(self._running_engine(), ConnectEngine)

    def _check_connect_settings(self) -> None:
        """Settings a Connect client cannot apply raise RxArgumentError naming them."""
        bad = [
            arg
            for arg in ("num_executors", "executor_cores", "executor_mem", "driver_mem", "executor_overhead_mem")
            if getattr(self, arg) is not None
        ]
        bad += [f"extra_spark_config[{key!r}]" for key in self.extra_spark_config if not key.startswith("spark.sql.")]
        if bad:
            raise RxArgumentError(
                f"RxSpark: a Spark Connect client cannot apply {', '.join(bad)} (they are the server's settings; "
                "set them where the Connect server is started). Only spark.sql.* properties can be set from here."
            )

    @property
    def owns_session(self) -> bool:
        """Whether rxspark started the session (and will stop it on close)."""
        return self._owned

    def _use(self, session: SparkSession, owned: bool) -> SparkEngine:
        engine_class = _engine_class(session)
        if engine_class is None:
            raise RxArgumentTypeError(f"RxSpark: spark must be a SparkSession, got {type(session).__name__}")
        if engine_class is ConnectEngine:
            self._check_connect_settings()
            for key, value in self.extra_spark_config.items():
                session.conf.set(key, str(value))
            if self.python_env is not None:
                sessions.ship_python_env_connect(session, self.python_env)
        elif self.python_env is not None and not owned and not sessions.runs_python_env(session):
            raise RxArgumentError(
                "RxSpark: python_env applies to a Spark application rxspark starts; this session is already "
                "running and its executors' Python cannot change. Start the application with the archive: "
                f"spark-submit --archives '{sessions.archive_spec(self.python_env)}' --conf "
                f"spark.pyspark.python={sessions.ENV_PYTHON} (or spark-submit.sh --python-env PATH), "
                "or let RxSpark(master=..., python_env=...) start it"
            )
        self._spark, self._owned, self._engine = session, owned, engine_class(session)
        if not owned and progress.wanted(self.progress):
            _hint_console_progress(self._engine)
        return self._engine

    def _running_engine(self) -> SparkEngine:
        """The engine of a running session: attached to, or started, now if need be."""
        with self._lock:
            if self._engine is not None and self._engine.alive():
                return self._engine
            if self.remote is not None:
                started, owned = sessions.start_connect(self.remote)
                return self._use(started, owned=owned)
            active = sessions.attach(self)
            if active is not None:
                return self._use(active, owned=False)
            started, master = sessions.start(self)
            engine = self._use(started, owned=True)  # owned from here on: close() stops it even if the wait fails
            sessions.wait_for_executors(started, master, self)
            return engine

    def close(self) -> None:
        """Stop the Spark application if rxspark started it (never one it attached to)."""
        with self._lock:
            if self._spark is not None and self._owned:
                sessions.stop(self._spark)
            self._spark, self._engine, self._owned = None, None, False
        super().close()

    # ------------------------------------------------------------ backend interface

    def parallelism(self) -> int:
        """The session's default parallelism (the default number of chunks).

        Before a session runs here, a local master's is told without starting one
        (``local[N]``: N, ``local[*]``: the cores Java sees, ``spark.default.parallelism``
        when given), so ``rx_exec(..., wait=False)`` returns at once and the
        session starts in the job's own thread (:meth:`prepare`).
        """
        with self._lock:
            if self._engine is None or not self._engine.alive():
                predicted = sessions.predicted_parallelism(self)
                if predicted is not None:
                    return predicted
        return self._running_engine().parallelism()

    def prepare(self, job: JobSink) -> None:
        """Start (or attach to) the session, in the job's thread while the job is queued."""
        if self._engine is None:
            job.note_progress("starting Spark")
        self._running_engine()

    def slots(self) -> int:
        """How many tasks can run at once on the current executors."""
        return self._running_engine().slots()

    def nodes(self) -> list[str]:
        """Executor addresses (host:port), found by a small barrier job and cached per executor set."""
        return self._running_engine().nodes()

    def run_chunks(self, job: JobSink) -> None:
        self._running_engine().run_chunks(job)

    def cancel(self, job: JobSink) -> None:
        engine = self._engine
        if engine is not None:
            engine.cancel(job)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"context": "RxSpark", "master": self.master or "local[*]", "app_name": self.app_name}
        if self.remote is not None:
            info["remote"] = self.remote
        engine = self._engine
        if engine is not None:
            info.update({k: v for k, v in engine.describe().items() if v is not None})
        else:
            defaults, explicit = self.spark_config()
            info["spark_conf"] = {**defaults, **explicit}
        return info

    def _recipe_kwargs(self) -> dict[str, Any]:
        """A Spark application of its own with the same master and settings (classic), or the same server (Connect)."""
        kwargs: dict[str, Any] = {
            "app_name": self.app_name,
            "num_executors": self.num_executors,
            "executor_cores": self.executor_cores,
            "executor_mem": self.executor_mem,
            "driver_mem": self.driver_mem,
            "executor_overhead_mem": self.executor_overhead_mem,
            "extra_spark_config": dict(self.extra_spark_config),
        }
        remote, master = self.remote, self.master
        engine = self._engine
        if remote is None and master is None and engine is not None:  # an attached session: where it runs
            where = engine.master()
            if where.startswith("sc://"):
                remote = where
            else:
                master = where
        if remote is not None:
            kwargs = {"app_name": self.app_name, "remote": remote}
        else:
            kwargs["master"] = master
        if self.python_env is not None:  # a path or URI (or "pack": packed again where the driver runs)
            kwargs["python_env"] = os.fspath(self.python_env)
        return kwargs

    def _where(self) -> str:
        """The running session's master (Connect: its server's URL), else what a new session would get."""
        engine = self._engine
        if engine is not None:
            try:
                return engine.master()
            except Exception:  # noqa: BLE001 - a stopped session: say what was asked for
                pass
        return self.remote or self.master or "local[*]"

    def ui_url(self) -> str | None:
        engine = self._engine
        return engine.ui_url() if engine is not None else None

    def __repr__(self) -> str:
        state = "started" if self._owned else ("attached" if self._spark is not None else "not started")
        return f"RxSpark(master={self._where()!r}, {state}, wait={self.wait})"

    def _html_rows(self) -> list[tuple[str, str]]:
        state = "started" if self._owned else ("attached" if self._spark is not None else "not started")
        rows = [("master", f"<code>{_html.escape(self._where())}</code>"), ("session", state)]
        engine = self._engine
        if engine is not None:
            with contextlib.suppress(Exception):
                info = engine.describe()
                for key in ("application_id", "spark_version"):
                    if info.get(key):
                        rows.append((key.replace("_", " "), _html.escape(str(info[key]))))
        return rows + super()._html_rows()


_hinted = False


def _hint_console_progress(engine: SparkEngine) -> None:
    """Once per process: an attached session shows Spark's own console bar as well as rxspark's."""
    global _hinted
    if _hinted:
        return
    try:
        on = engine.console_progress()
    except Exception:  # noqa: BLE001 - only a hint
        return
    if on:
        _hinted = True
        sys.stderr.write(
            "rxspark: this session also shows Spark's console progress ([Stage N: ...]); for one bar, start it with "
            ".config('spark.ui.showConsoleProgress', 'false') or use RxSpark(progress=False)\n"
        )


registry.register("spark", "RxSpark", factory=RxSpark)


# ---------------------------------------------------------------- module functions


def rx_spark_connect(**kwargs: Any) -> RxSpark:
    """Create an :class:`RxSpark` context, start its application now and make it the active context.

    Args:
        **kwargs: Arguments of :class:`RxSpark`.

    Returns:
        The connected context.
    """
    context = RxSpark(**kwargs).connect()
    _active.swap(context)
    return context


def rx_spark_disconnect(compute_context: RxSpark | None = None) -> None:
    """Stop the Spark application rxspark started (never one it attached to) and switch to ``RxLocalSeq``.

    Args:
        compute_context: The context to disconnect; default: the active one.
    """
    context = compute_context if compute_context is not None else _active.current()
    if isinstance(context, RxSpark):
        context.close()
    _active.swap(None)  # the default context, RxLocalSeq


def rx_get_pyspark_connection(compute_context: RxSpark | None = None) -> SparkContext:
    """The ``SparkContext`` behind an :class:`RxSpark` context (default: the active one)."""
    context = compute_context if compute_context is not None else _active.current()
    if not isinstance(context, RxSpark):
        raise RxArgumentTypeError(f"compute_context must be an RxSpark context, got {type(context).__name__}")
    return context.spark_context


def rx_get_spark_session(compute_context: RxSpark | None = None) -> SparkSession:
    """The SparkSession behind an :class:`RxSpark` context (default: the active one), classic or Spark Connect."""
    context = compute_context if compute_context is not None else _active.current()
    if not isinstance(context, RxSpark):
        raise RxArgumentTypeError(f"compute_context must be an RxSpark context, got {type(context).__name__}")
    return context.session
