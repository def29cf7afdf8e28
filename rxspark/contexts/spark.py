"""RxSpark: run chunks as the partitions of one Spark job.

The shape of a job on Spark:

* the payload (function, shared arguments, exec objects) is one broadcast
  variable, deserialized once per Python worker process and cached there;
* the chunks become an RDD with exactly one chunk per partition; without
  per-call arguments a chunk is only ``(index, start, stop)``;
* each partition runs :func:`rxspark.worker.run_chunk` and sends its
  :class:`~rxspark.worker.ChunkResult` back through an accumulator, which
  Spark merges on the driver as each task succeeds (once per partition, never
  for failed attempts), so results stream in as partitions finish;
* every ``rx_exec`` is one Spark job in its own job group (named after the
  function, cancellable); user exceptions are data, so Spark retries only
  infrastructure failures, and a retried partition replays the same RNG stream.

pyspark is imported only when a session is needed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import re
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._java import MIN_JAVA, java_version
from ..errors import RxArgumentError, RxArgumentTypeError, RxJobError, RxSparkUnavailableError, RxWorkerLostError
from ..worker import load_payload, run_chunk
from .base import ComputeContext, check_positive_int

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from ..jobs import RxJob

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG4J2_PROPERTIES = os.path.join(_PACKAGE_DIR, "conf", "log4j2.properties")
_LOCAL_MASTER = re.compile(r"^local(\[.*\])?$|^local-cluster\[.*\]$")


def _pyspark() -> Any:
    try:
        with warnings.catch_warnings():
            # pyspark warns at import about pandas versions it has not certified;
            # rxspark does not use pyspark's pandas integration.
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
            import pyspark
            import pyspark.sql  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyspark is a core dependency
        raise RxSparkUnavailableError("pyspark is not installed: pip install 'pyspark>=4,<5'") from exc
    return pyspark


# ---------------------------------------------------------------- worker side


@dataclass(frozen=True)
class BroadcastPayload:
    """The payload as a Spark broadcast variable (bytes), loaded once per worker process."""

    key: str
    broadcast: Any

    def load(self) -> Any:
        return load_payload(self.broadcast.value)  # fetch errors propagate (Spark retries); unpickling ones are the job's


def _channel_param() -> Any:
    from pyspark.accumulators import AccumulatorParam

    class ChunkChannel(AccumulatorParam):
        """Carries ChunkResults from tasks to the driver.

        On a worker the accumulator collects the partition's serialized
        results; on the driver each task's collection is handed to ``sink``
        (the job's queue) and nothing is kept.
        """

        def __init__(self, sink: Any = None) -> None:
            self.sink = sink

        def __getstate__(self) -> dict[str, Any]:
            return {}  # the sink stays on the driver

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.sink = None

        def zero(self, value: Any) -> list[bytes]:
            return []

        def addInPlace(self, acc: list[bytes], item: Any) -> list[bytes]:  # noqa: N802 - pyspark's name
            if self.sink is None:
                acc.append(item)
                return acc
            for blob in item:
                self.sink(blob)
            return acc

    return ChunkChannel


def _run_partition(ref: BroadcastPayload, channel: Any, iterator: Any) -> Any:
    for chunk in iterator:
        result = run_chunk(ref, chunk, serialize_results=True)
        channel.add(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return iter(())


def _run_once_per_node(ref: BroadcastPayload, channel: Any, chunks: list[Any], nodes: list[str], iterator: Any) -> Any:
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    addresses = [info.address for info in context.getTaskInfos()]
    mine = addresses[context.partitionId()]
    if addresses.index(mine) == context.partitionId() and mine in nodes:
        result = run_chunk(ref, chunks[nodes.index(mine)], serialize_results=True, node=mine)
        channel.add(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return iter(())


def _executor_addresses(iterator: Any) -> Any:
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    if context.partitionId() == 0:
        yield sorted({info.address for info in context.getTaskInfos()})


# ---------------------------------------------------------------- startup checks


def _check_java() -> None:
    major = java_version()
    if major is None:
        raise RxSparkUnavailableError(
            "Spark needs Java 17 or newer and no Java was found. Fix: install a Java 17+ runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME to one."
        )
    if major < MIN_JAVA:
        raise RxSparkUnavailableError(
            f"Spark needs Java 17 or newer; found Java {major}. Fix: install openjdk-17-jre-headless "
            "(or newer) and point JAVA_HOME at it."
        )


def _check_master(master: str) -> None:
    """Fail within seconds when a standalone or Kubernetes master cannot be reached."""
    if master.startswith("spark://"):
        endpoints = [hp.strip() for hp in master[len("spark://") :].split(",")]
    elif master.startswith("k8s://"):
        url = master[len("k8s://") :]
        url = url.split("://", 1)[-1]
        endpoints = [url.split("/", 1)[0] if ":" in url else url.split("/", 1)[0] + ":443"]
    elif master == "yarn":
        if not (os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")):
            raise RxSparkUnavailableError(
                "master='yarn' needs the cluster's configuration: set HADOOP_CONF_DIR (or YARN_CONF_DIR) "
                "to the directory holding yarn-site.xml and core-site.xml."
            )
        return
    else:
        return
    errors = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        try:
            with socket.create_connection((host or endpoint, int(port or 7077)), timeout=3):
                return
        except (OSError, ValueError) as exc:
            errors.append(f"{endpoint}: {exc}")
    raise RxSparkUnavailableError(
        f"cannot reach the Spark master {master} ({'; '.join(errors)}). Fix: start the master, or check "
        "the URL and that this machine can reach it."
    )


def _java_option(name: str, path: str) -> str:
    """``-Dname=path`` for extraJavaOptions, which Spark splits at whitespace unless quoted.

    A path with spaces (an installation under "My Documents") is double-quoted;
    log4j2 takes a plain path as well as a ``file:`` URL.
    """
    option = f"-D{name}={path}"
    if not re.search(r"[\s'\"\\]", path):
        return option
    return '"' + option.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LOCAL_THREADS = re.compile(r"^local(?:\[(\*|\d+)\])?$")
DEFAULT_LOCAL_ATTEMPTS = "4"


def _with_retries(master: str, conf: Any) -> str:
    """``local[N]`` as ``local[N,F]``: Spark runs each task once on a local master whatever
    ``spark.task.maxFailures`` says, so a crashed Python worker would fail the job. F is
    ``spark.task.maxFailures`` when set, else 4 (Spark's default on clusters)."""
    match = _LOCAL_THREADS.match(master)
    if not match:
        return master
    attempts = conf.get("spark.task.maxFailures", None) or DEFAULT_LOCAL_ATTEMPTS
    return f"local[{match.group(1) or 1},{attempts}]"


def _is_local(master: str) -> bool:
    return bool(_LOCAL_MASTER.match(master))


# ---------------------------------------------------------------- the context


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
    ) -> None:
        super().__init__(
            wait=wait,
            console_output=console_output,
            auto_cleanup=auto_cleanup,
            packages_to_load=packages_to_load,
            share_dir=share_dir,
        )
        if spark is not None and not hasattr(spark, "sparkContext"):
            raise RxArgumentTypeError(f"RxSpark: spark must be a SparkSession, got {type(spark).__name__}")
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
        if progress is not None and not isinstance(progress, bool):
            raise RxArgumentTypeError(f"RxSpark: progress must be None, True or False, got {progress!r}")
        self.master = master
        self.app_name = app_name
        self.num_executors = num_executors
        self.executor_cores = executor_cores
        self.executor_mem = executor_mem
        self.driver_mem = driver_mem
        self.executor_overhead_mem = executor_overhead_mem
        self.extra_spark_config = dict(extra_spark_config or {})
        self.progress = progress
        self.startup_timeout = startup_timeout
        self._spark: SparkSession | None = spark
        self._owned = False
        self._lock = threading.RLock()
        self._nodes: tuple[tuple[str, ...], list[str]] | None = None

    # ------------------------------------------------------------ session lifecycle

    def spark_config(self, master: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
        """The Spark properties a new session gets: (defaults, explicit).

        Defaults apply only where nothing else (spark-submit, the environment)
        set the property; explicit ones (constructor arguments and
        ``extra_spark_config``) always apply.
        """
        master = master or self.master or "local[*]"
        defaults: dict[str, str] = {"spark.ui.showConsoleProgress": "false"}
        if not os.environ.get("PYSPARK_PYTHON"):
            # Otherwise workers may run another python3, without this environment's packages.
            defaults["spark.pyspark.python"] = sys.executable
            defaults["spark.pyspark.driver.python"] = sys.executable
        if _is_local(master):
            # Stay on loopback, and let workers import what the driver can (scripts' own modules).
            defaults["spark.driver.host"] = "127.0.0.1"
            defaults["spark.driver.bindAddress"] = "127.0.0.1"
            defaults["spark.executorEnv.PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.exists(p))
        if os.path.exists(LOG4J2_PROPERTIES):
            defaults["spark.driver.extraJavaOptions"] = _java_option("log4j2.configurationFile", LOG4J2_PROPERTIES)
        explicit: dict[str, str] = {}
        for prop, value in (
            ("spark.executor.instances", self.num_executors),
            ("spark.executor.cores", self.executor_cores),
            ("spark.executor.memory", self.executor_mem),
            ("spark.driver.memory", self.driver_mem),
            ("spark.executor.memoryOverhead", self.executor_overhead_mem),
        ):
            if value is not None:
                explicit[prop] = str(value)
        explicit.update({k: str(v) for k, v in self.extra_spark_config.items()})
        return defaults, explicit

    def connect(self) -> RxSpark:
        """Start (or attach to) the Spark application now."""
        self._ensure_session()
        return self

    @property
    def session(self) -> SparkSession:
        """The SparkSession (started or attached on first use)."""
        return self._ensure_session()

    @property
    def spark_context(self) -> SparkContext:
        return self.session.sparkContext

    @property
    def owns_session(self) -> bool:
        """Whether rxspark started the session (and will stop it on close)."""
        return self._owned

    def _ensure_session(self) -> SparkSession:
        with self._lock:
            if self._spark is not None and self._spark.sparkContext._jsc is not None:
                return self._spark
            if self._closed and self._owned:
                self._closed = False
            _pyspark()
            from pyspark.sql import SparkSession

            active = _running_session()
            if active is not None:
                running = active.sparkContext.master
                if self.master is not None and running not in (self.master, _with_retries(self.master, active.sparkContext.getConf())):
                    raise RxArgumentError(
                        f"RxSpark: a SparkSession with master {active.sparkContext.master!r} is already active; "
                        f"stop it before starting one on {self.master!r}, or pass spark=that_session"
                    )
                self._spark, self._owned = active, False
                return active
            from pyspark import SparkConf, SparkContext

            # Under spark-submit the JVM already runs and holds the submitted
            # properties (master included): connect to it first so SparkConf sees them.
            submitted = "PYSPARK_GATEWAY_PORT" in os.environ or SparkContext._gateway is not None
            if submitted:
                SparkContext._ensure_initialized()
            conf = SparkConf()
            master = self.master or conf.get("spark.master", None) or "local[*]"
            if not submitted:
                _check_java()
            _check_master(master)
            if _is_local(master):
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            defaults, explicit = self.spark_config(master)
            for key, value in defaults.items():
                conf.setIfMissing(key, value)
            conf.setAll(list(explicit.items()))
            if not os.environ.get("PYSPARK_PYTHON"):
                # PySpark starts workers with $PYSPARK_PYTHON (else "python3", which may
                # lack this environment's packages), whatever spark.pyspark.python says.
                os.environ["PYSPARK_PYTHON"] = conf.get("spark.pyspark.python", None) or sys.executable
            master = _with_retries(master, conf)
            conf.setMaster(master)
            if self.app_name != "rxspark" or not conf.contains("spark.app.name"):
                conf.setAppName(self.app_name)
            builder = SparkSession.builder.config(conf=conf)
            started: dict[str, Any] = {}

            def start() -> None:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", FutureWarning)
                        started["session"] = builder.getOrCreate()
                except BaseException as exc:  # noqa: BLE001 - reported below
                    started["error"] = exc

            thread = threading.Thread(target=start, name="rxspark-spark-start", daemon=True)
            thread.start()
            thread.join(self.startup_timeout)
            if thread.is_alive():
                hint = ""
                if master.startswith("spark://") and conf.get("spark.authenticate", "false").lower() != "true":
                    # A master with spark.authenticate on drops applications that do not authenticate;
                    # they only see the registration time out.
                    hint = (
                        " If the cluster requires authentication, this application must use its secret: "
                        "spark.authenticate=true and the secret in _SPARK_AUTH_SECRET (or spark.authenticate.secret)."
                    )
                raise RxSparkUnavailableError(
                    f"Spark did not start within {self.startup_timeout:.0f} s on master {master}. Fix: check the "
                    f"master and its resources, or raise RxSpark(startup_timeout=...).{hint}"
                )
            if "error" in started:
                exc = started["error"]
                raise RxSparkUnavailableError(
                    f"Spark could not start on master {master}: {type(exc).__name__}: {str(exc).strip()[:500]}. "
                    "Fix: run `rxspark doctor` to check Java, PySpark and the master."
                ) from exc
            session = started["session"]
            self._spark, self._owned = session, True
            session.sparkContext.setLogLevel("ERROR")
            self._wait_for_executors(session, master)
            return session

    def _wait_for_executors(self, session: SparkSession, master: str) -> None:
        """On clusters, wait until the expected executors have registered."""
        if master.startswith("local[") or master == "local":
            return
        match = re.match(r"local-cluster\[(\d+)", master)
        expected = int(match.group(1)) if match else (self.num_executors or 1)
        jsc = session.sparkContext._jsc.sc()
        deadline = time.monotonic() + self.startup_timeout
        while jsc.getExecutorIds().size() < expected:
            if time.monotonic() > deadline:
                raise RxSparkUnavailableError(
                    f"only {jsc.getExecutorIds().size()} of {expected} executors registered within "
                    f"{self.startup_timeout:.0f} s on {master}. Fix: check the cluster's free cores and memory."
                )
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the Spark application if rxspark started it (never one it attached to)."""
        with self._lock:
            if self._spark is not None and self._owned:
                with contextlib.suppress(Exception):
                    self._spark.stop()
                self._spark = None
                self._owned = False
            elif self._spark is not None and not self._owned:
                self._spark = None
            self._nodes = None
        super().close()

    # ------------------------------------------------------------ backend interface

    def parallelism(self) -> int:
        return int(self.spark_context.defaultParallelism)

    def slots(self) -> int:
        """How many tasks can run at once on the current executors."""
        jsc = self.spark_context._jsc.sc()
        try:
            return int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile()))
        except Exception:  # noqa: BLE001 - internal API; fall back to the public figure
            return self.parallelism()

    def nodes(self) -> list[str]:
        """Executor addresses (host:port), found by a small barrier job and cached per executor set."""
        sc = self.spark_context
        ids = sc._jsc.sc().getExecutorIds()
        key = tuple(sorted(ids.apply(i) for i in range(ids.size())))
        if self._nodes is not None and self._nodes[0] == key:
            return list(self._nodes[1])
        slots = max(1, self.slots())
        sc.setJobDescription("rxspark: find executors")
        try:
            (addresses,) = sc.parallelize(range(slots), slots).barrier().mapPartitions(_executor_addresses).collect()
        finally:
            sc.setJobDescription(None)
        self._nodes = (key, addresses)
        return list(addresses)

    def run_chunks(self, job: RxJob) -> None:
        sc = self.spark_context
        plan = job.plan
        if not plan.chunks:
            return
        results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        accumulator = sc.accumulator([], _channel_param()(results.put))
        broadcast = sc.broadcast(plan.payload_blob)
        ref = BroadcastPayload(job.job_id, broadcast)
        done = object()

        def action() -> None:
            try:
                sc.setJobGroup(job.job_id, f"rxspark: {plan.function_name} ({plan.n_tasks} tasks)", interruptOnCancel=True)
                if plan.once_per_elem:
                    assert plan.nodes is not None
                    slots = max(1, self.slots())
                    run = _bind(_run_once_per_node, ref, accumulator, plan.chunks, plan.nodes)
                    sc.parallelize(range(slots), slots).barrier().mapPartitions(run).collect()
                else:
                    rdd = sc.parallelize(plan.chunks, len(plan.chunks))
                    rdd.foreachPartition(_bind(_run_partition, ref, accumulator))
                results.put(done)
            except BaseException as exc:  # noqa: BLE001 - handed to the job thread
                results.put(exc)

        runner = threading.Thread(target=action, name=f"rxspark-spark-{job.job_id}", daemon=True)
        bar = _progress_bar(self.progress, plan)
        runner.start()
        try:
            while True:
                try:
                    item = results.get(timeout=0.2)
                except queue.Empty:
                    if job.should_stop():
                        sc.cancelJobGroup(job.job_id)
                        return
                    continue
                if item is done:
                    break
                if isinstance(item, BaseException):
                    if job.should_stop():
                        return
                    raise _spark_failure(item, job)
                result = _chunk_result(item)
                job.deliver(result)
                if bar is not None:
                    bar.update(result.stop - result.start)
                if job.should_stop():
                    sc.cancelJobGroup(job.job_id)
                    return
            # Results that arrived after the action returned are still in the queue.
            while True:
                try:
                    item = results.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, bytes):
                    job.deliver(_chunk_result(item))
            if plan.once_per_elem and job.delivered() < len(plan.chunks):
                raise RxJobError(
                    f"once_per_elem: the executors changed during job {job.job_id} (expected {plan.nodes}); run it again"
                )
        except KeyboardInterrupt:
            sc.cancelJobGroup(job.job_id)
            raise
        finally:
            if bar is not None:
                bar.close()
            accumulator.accum_param.sink = None
            _forget_accumulator(accumulator)
            with contextlib.suppress(Exception):
                broadcast.unpersist(blocking=False)

    def cancel(self, job: RxJob) -> None:
        if self._spark is not None:
            with contextlib.suppress(Exception):
                self._spark.sparkContext.cancelJobGroup(job.job_id)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"context": "RxSpark", "master": self.master or "local[*]", "app_name": self.app_name}
        if self._spark is not None:
            sc = self._spark.sparkContext
            info.update(master=sc.master, application_id=sc.applicationId, spark_version=sc.version)
            info["spark_conf"] = dict(sc.getConf().getAll())
        else:
            defaults, explicit = self.spark_config()
            info["spark_conf"] = {**defaults, **explicit}
        return info

    def __repr__(self) -> str:
        state = "started" if self._owned else ("attached" if self._spark is not None else "not started")
        return f"RxSpark(master={self.master or 'local[*]'!r}, {state}, wait={self.wait})"


def _running_session() -> SparkSession | None:
    """The session of this process's running SparkContext, if any.

    ``SparkSession.getActiveSession()`` alone is not enough: it is per thread,
    and a session started in another thread (or by other code) would be missed
    and then wrongly taken over.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if SparkContext._active_spark_context is None:
        return None
    existing = getattr(SparkSession, "_instantiatedSession", None)
    if existing is not None and existing.sparkContext is SparkContext._active_spark_context:
        return existing
    return SparkSession(SparkContext._active_spark_context)


def _bind(function: Any, *args: Any) -> Any:
    """``functools.partial`` for Spark closures (partials of module functions pickle by reference)."""
    import functools

    return functools.partial(function, *args)


def _chunk_result(item: bytes) -> Any:
    """A ChunkResult from the channel, its values loaded (values the driver cannot load fail their tasks)."""
    result = pickle.loads(item)
    result.load_values()
    return result


def _forget_accumulator(accumulator: Any) -> None:
    from pyspark import accumulators

    accumulators._accumulatorRegistry.pop(accumulator.aid, None)


def _spark_failure(exc: BaseException, job: RxJob) -> BaseException:
    """Turn a failed Spark action into an rxspark error that says what happened."""
    text = str(exc)
    if "maxResultSize" in text:
        return RxJobError(
            f"job {job.job_id}: the results are larger than spark.driver.maxResultSize; raise it, e.g. "
            "RxSpark(extra_spark_config={'spark.driver.maxResultSize': '4g'}), or return smaller results "
            f"(Spark said: {_first_line(text)})"
        )
    match = re.search(r"Task (\d+) in stage [\d.]+ failed (\d+) times", text)
    if match:
        chunk = int(match.group(1))
        tasks = ""
        if chunk < len(job.plan.chunks):
            c = job.plan.chunks[chunk]
            tasks = f" (tasks {c.start}..{c.stop - 1})"
        worker_died = "Python worker exited unexpectedly" in text or "crashed" in text or "EOFException" in text
        cause = "the Python worker process died" if worker_died else "the Spark task failed"
        return RxWorkerLostError(
            f"chunk {chunk}{tasks} of job {job.job_id}: {cause} on each of {match.group(2)} attempts "
            f"(spark.task.maxFailures). Spark said: {_first_line(text)}"
        )
    return RxJobError(f"job {job.job_id}: the Spark job failed: {_first_line(text)}")


def _first_line(text: str) -> str:
    """What Spark said about a failed job, in one line.

    Py4J wraps Spark's exception in "An error occurred while calling ..."; the
    useful part is the reason of the last failed attempt, or else the first
    line of Spark's own message.
    """
    recent = re.search(r"most recent failure: (.+)", text)
    if recent:
        return recent.group(1).strip()[:400]
    for line in text.splitlines():
        line = line.strip().lstrip(":").strip()
        if line and not line.startswith("An error occurred while calling"):
            return line[:400]
    return text.strip()[:400]


def _progress_bar(progress: bool | None, plan: Any) -> Any:
    if progress is False or (progress is None and not _interactive()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            warnings.warn("progress=True needs tqdm: pip install 'rxspark[progress]'", stacklevel=3)
        return None
    return tqdm(total=plan.n_tasks, desc=f"rxspark {plan.function_name}", unit="task", leave=False)


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


# ---------------------------------------------------------------- module functions


def rx_spark_connect(**kwargs: Any) -> RxSpark:
    """Create an :class:`RxSpark` context, start its application now and make it the active context.

    Args:
        **kwargs: Arguments of :class:`RxSpark`.

    Returns:
        The connected context.
    """
    from ..api import rx_set_compute_context

    context = RxSpark(**kwargs).connect()
    rx_set_compute_context(context)
    return context


def rx_spark_disconnect(compute_context: RxSpark | None = None) -> None:
    """Stop the Spark application rxspark started (never one it attached to) and switch to ``RxLocalSeq``.

    Args:
        compute_context: The context to disconnect; default: the active one.
    """
    from ..api import rx_get_compute_context, rx_set_compute_context

    context = compute_context if compute_context is not None else rx_get_compute_context()
    if isinstance(context, RxSpark):
        context.close()
    rx_set_compute_context("local")


def rx_get_pyspark_connection(compute_context: RxSpark | None = None) -> SparkContext:
    """The ``SparkContext`` behind an :class:`RxSpark` context (default: the active one)."""
    from ..api import rx_get_compute_context

    context = compute_context if compute_context is not None else rx_get_compute_context()
    if not isinstance(context, RxSpark):
        raise RxArgumentTypeError(f"compute_context must be an RxSpark context, got {type(context).__name__}")
    return context.spark_context
