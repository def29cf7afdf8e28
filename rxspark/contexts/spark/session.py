"""Finding, starting and stopping the SparkSession of an RxSpark context.

``RxSpark()`` attaches to this process's running session (a notebook,
``spark-submit``) or starts one. Before starting a JVM it checks what would
otherwise fail slowly or obscurely: Java (17 or newer), and that a standalone
or Kubernetes master answers. A new session gets defaults that make the
embedded and local masters work out of the box (the driver's interpreter on
the workers, loopback addresses, retries of crashed Python workers, quiet
logs); the context's arguments and ``extra_spark_config`` always win.

These functions read the context's settings (:class:`SessionSettings`) and
keep no state: the context holds its session and whether it started it.
pyspark is imported only here and only when a session is needed.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Protocol

from ... import _compat
from ..._java import MIN_JAVA, java_version
from ...errors import RxArgumentError, RxSparkUnavailableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOG4J2_PROPERTIES = os.path.join(_PACKAGE_DIR, "conf", "log4j2.properties")
_LOCAL_MASTER = re.compile(r"^local(\[.*\])?$|^local-cluster\[.*\]$")
_LOCAL_THREADS = re.compile(r"^local(?:\[(\*|\d+)\])?$")
DEFAULT_LOCAL_ATTEMPTS = "4"


class SessionSettings(Protocol):
    """What a new session is made from (``RxSpark``'s arguments of the same names)."""

    master: str | None
    app_name: str
    num_executors: int | None
    executor_cores: int | None
    executor_mem: str | None
    driver_mem: str | None
    executor_overhead_mem: str | None
    extra_spark_config: dict[str, Any]
    startup_timeout: float
    python_env: str | None


def import_pyspark() -> Any:
    try:
        with warnings.catch_warnings():
            # pyspark warns at import about pandas versions it has not certified;
            # rxspark does not use pyspark's pandas integration.
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
            import pyspark
            import pyspark.sql  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyspark is a core dependency
        raise RxSparkUnavailableError("pyspark is not installed: pip install 'pyspark>=3.5,<5'") from exc
    return pyspark


# ---------------------------------------------------------------- startup checks


def check_java() -> None:
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


def check_master(master: str) -> None:
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


# ---------------------------------------------------------------- configuration


def java_option(name: str, path: str) -> str:
    """``-Dname=path`` for extraJavaOptions, which Spark splits at whitespace unless quoted.

    A path with spaces (an installation under "My Documents") is double-quoted;
    log4j2 takes a plain path as well as a ``file:`` URL.
    """
    option = f"-D{name}={path}"
    if not re.search(r"[\s'\"\\]", path):
        return option
    return '"' + option.replace("\\", "\\\\").replace('"', '\\"') + '"'


def with_retries(master: str, conf: Any) -> str:
    """``local[N]`` as ``local[N,F]``: Spark runs each task once on a local master whatever
    ``spark.task.maxFailures`` says, so a crashed Python worker would fail the job. F is
    ``spark.task.maxFailures`` when set, else 4 (Spark's default on clusters)."""
    match = _LOCAL_THREADS.match(master)
    if not match:
        return master
    attempts = conf.get("spark.task.maxFailures", None) or DEFAULT_LOCAL_ATTEMPTS
    return f"local[{match.group(1) or 1},{attempts}]"


def is_local(master: str) -> bool:
    return bool(_LOCAL_MASTER.match(master))


def spark_config(settings: SessionSettings, master: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The Spark properties a new session gets: (defaults, explicit).

    Defaults apply only where nothing else (spark-submit, the environment)
    set the property; explicit ones (constructor arguments and
    ``extra_spark_config``) always apply.
    """
    master = master or settings.master or "local[*]"
    defaults: dict[str, str] = {"spark.ui.showConsoleProgress": "false"}
    if not os.environ.get("PYSPARK_PYTHON"):
        # Otherwise workers may run another python3, without this environment's packages.
        defaults["spark.pyspark.python"] = sys.executable
        defaults["spark.pyspark.driver.python"] = sys.executable
    if is_local(master):
        # Stay on loopback, and let workers import what the driver can (scripts' own modules).
        defaults["spark.driver.host"] = "127.0.0.1"
        defaults["spark.driver.bindAddress"] = "127.0.0.1"
        defaults["spark.executorEnv.PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.exists(p))
    if os.path.exists(LOG4J2_PROPERTIES):
        defaults["spark.driver.extraJavaOptions"] = java_option("log4j2.configurationFile", LOG4J2_PROPERTIES)
    explicit: dict[str, str] = {}
    for prop, value in (
        ("spark.executor.instances", settings.num_executors),
        ("spark.executor.cores", settings.executor_cores),
        ("spark.executor.memory", settings.executor_mem),
        ("spark.driver.memory", settings.driver_mem),
        ("spark.executor.memoryOverhead", settings.executor_overhead_mem),
    ):
        if value is not None:
            explicit[prop] = str(value)
    explicit.update({k: str(v) for k, v in settings.extra_spark_config.items()})
    return defaults, explicit


# ---------------------------------------------------------------- python_env: the executors' environment

ENV_ALIAS = "environment"
ENV_PYTHON = f"./{ENV_ALIAS}/bin/python"


def archive_spec(archive: str) -> str:
    """``archive#environment``: the archive as ``spark.archives`` / ``--archives`` names it."""
    return f"{archive.split('#', 1)[0]}#{ENV_ALIAS}"


def resolve_python_env(python_env: str | None) -> str | None:
    """The archive to ship: ``"pack"`` packs the current environment (once, while unchanged)."""
    if python_env != "pack":
        return python_env
    from ...pack import packed_environment

    return packed_environment()


def python_env_config(archive: str, conf: Any = None) -> dict[str, str]:
    """The properties that ship ``archive`` and make ``./environment/bin/python`` the executors' Python."""
    archives = [a for a in ((conf.get("spark.archives", None) or "") if conf is not None else "").split(",") if a]
    archives = [a for a in archives if not a.endswith(f"#{ENV_ALIAS}")] + [archive_spec(archive)]
    return {
        "spark.archives": ",".join(archives),
        "spark.pyspark.python": ENV_PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": ENV_PYTHON,
    }


def runs_python_env(session: Any) -> bool:
    """Whether a running classic session's executors already run a shipped ``./environment``."""
    try:
        return session.sparkContext.pythonExec == ENV_PYTHON
    except Exception:  # noqa: BLE001 - not a classic session
        return False


def ship_python_env_connect(session: Any, python_env: str) -> None:
    """On Spark Connect: upload the archive as a session artifact and run Python UDFs with its interpreter.

    Raises:
        RxArgumentError: The archive is a URI (Connect uploads only local files).
    """
    archive = resolve_python_env(python_env)
    assert archive is not None
    if "://" in archive.split("#", 1)[0] and not archive.startswith("file://"):
        raise RxArgumentError(
            f"RxSpark: on Spark Connect, python_env must be a local file (the client uploads it); got {archive!r}"
        )
    session.addArtifacts(archive_spec(archive), archive=True)
    session.conf.set("spark.sql.execution.pyspark.python", f"{ENV_ALIAS}/bin/python")


# ---------------------------------------------------------------- parallelism before the start

_LOCAL_CLUSTER = re.compile(r"^local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,")


def java_cores() -> int | None:
    """What Java's ``availableProcessors()`` says here (CPU affinity and a cgroup CPU quota), None if unsure."""
    for variable in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"):
        if "ActiveProcessorCount" in os.environ.get(variable, ""):
            return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    if cores < 1:
        return None
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, quota)) if quota else cores


def _cgroup_cpu_quota() -> int | None:
    import math

    try:  # cgroup v2
        with open("/sys/fs/cgroup/cpu.max") as f:
            limit, period = f.read().split()[:2]
        return None if limit == "max" else math.ceil(int(limit) / int(period))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            limit_us = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period_us = int(f.read())
        return None if limit_us <= 0 else math.ceil(limit_us / period_us)
    except (OSError, ValueError):
        return None


def predicted_parallelism(settings: SessionSettings) -> int | None:
    """The default parallelism a new local session of ``settings`` will have, told without starting it.

    None when it cannot be told for sure: a session already runs in this
    process (attach to it), Spark Connect, spark-submit, a cluster master, or
    Spark configuration this process does not see (spark-defaults.conf,
    ``PYSPARK_SUBMIT_ARGS``, the driver's Java options).
    """
    if getattr(settings, "remote", None) is not None:
        return None
    if any(os.environ.get(v) for v in ("PYSPARK_GATEWAY_PORT", "PYSPARK_SUBMIT_ARGS")):
        return None
    # A running session is attached to; a JVM left by a stopped one keeps its launch's properties.
    if "pyspark" in sys.modules and (_compat.gateway_started() or running_session() is not None):
        return None
    if _spark_defaults_file() or "spark.driver.extraJavaOptions" in settings.extra_spark_config:
        return None
    configured = settings.extra_spark_config.get("spark.default.parallelism")
    master = settings.master or "local[*]"
    if not is_local(master):
        return None
    if configured is not None:
        try:
            return max(1, int(configured))
        except (TypeError, ValueError):
            return None
    cluster = _LOCAL_CLUSTER.match(master)
    if cluster:
        return max(int(cluster.group(1)) * int(cluster.group(2)), 2)  # standalone's default: total cores, at least 2
    match = _LOCAL_THREADS.match(master.split(",")[0] + ("]" if "," in master else ""))
    if not match:
        return None
    threads = match.group(1)
    if threads is None:
        return 1
    return java_cores() if threads == "*" else int(threads)


def _spark_defaults_file() -> bool:
    """Whether a spark-defaults.conf would configure a new session (then its properties are unknown here)."""
    import importlib.util

    dirs = [os.environ.get("SPARK_CONF_DIR")]
    if os.environ.get("SPARK_HOME"):
        dirs.append(os.path.join(os.environ["SPARK_HOME"], "conf"))
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.submodule_search_locations:
        dirs += [os.path.join(location, "conf") for location in spec.submodule_search_locations]
    return any(d and os.path.exists(os.path.join(d, "spark-defaults.conf")) for d in dirs)


# ---------------------------------------------------------------- attach, start, stop


def running_session(connect: bool = True) -> SparkSession | None:
    """The session of this process's running SparkContext (or, if ``connect``, its Spark Connect session), if any.

    A classic session comes first (active in this thread, else the session
    of this process's SparkContext), then a Connect session.

    ``SparkSession.getActiveSession()`` alone is not enough: it is per thread,
    and a session started in another thread (or by other code) would be missed
    and then wrongly taken over.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    sc = _compat.active_spark_context()  # None with pyspark-client too (Spark Connect only)
    if sc is None:
        return _active_connect_session() if connect else None
    existing = _compat.instantiated_session()
    if existing is not None and existing.sparkContext is sc:
        return existing
    return SparkSession(sc)


def _active_connect_session() -> Any:
    """The active (or default) Spark Connect session of this process, if pyspark's Connect client is loaded."""
    import sys as _sys

    if "pyspark.sql.connect.session" not in _sys.modules:
        return None  # nobody made one: do not import the Connect client (and its grpc) for nothing
    session = _compat.default_connect_session()
    if session is None or getattr(session, "is_stopped", False):
        return None
    return session


def attach(settings: SessionSettings) -> SparkSession | None:
    """This process's running session, when there is one (and it runs on ``settings.master``, if given).

    With no master, an active Spark Connect session is attached to as well.

    Raises:
        RxArgumentError: A session on another master is running.
    """
    import_pyspark()
    # A master asks for a classic session: a Connect session of this process is not one to attach to.
    active = running_session(connect=settings.master is None)
    if active is None:
        return None
    if type(active).__module__.startswith("pyspark.sql.connect"):
        return active
    running = active.sparkContext.master
    if settings.master is not None and running not in (
        settings.master,
        with_retries(settings.master, active.sparkContext.getConf()),
    ):
        raise RxArgumentError(
            f"RxSpark: a SparkSession with master {active.sparkContext.master!r} is already active; "
            f"stop it before starting one on {settings.master!r}, or pass spark=that_session"
        )
    return active


def start(settings: SessionSettings) -> tuple[SparkSession, str]:
    """Start a new session (and its application); returns it and the master it runs on.

    Raises:
        RxSparkUnavailableError: Java is missing or too old, the master cannot be reached, or
            Spark did not start within ``settings.startup_timeout`` seconds.
    """
    import_pyspark()
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    # Under spark-submit the JVM already runs and holds the submitted
    # properties (master included): connect to it first so SparkConf sees them.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ or _compat.gateway_started()
    launching = not submitted  # this start launches the JVM, with this session's properties
    _forget_launch()
    with warnings.catch_warnings():
        # The first call into the JVM imports pyspark.testing, which warns about pandas >= 3 (FutureWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if submitted:
            _compat.launch_gateway()
        conf = SparkConf()
    master = settings.master or conf.get("spark.master", None) or "local[*]"
    if not submitted:
        check_java()
    check_master(master)
    if is_local(master):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    defaults, explicit = spark_config(settings, master)
    for key, value in defaults.items():
        conf.setIfMissing(key, value)
    conf.setAll(list(explicit.items()))
    archive = resolve_python_env(getattr(settings, "python_env", None))
    if archive is not None:
        conf.setAll(list(python_env_config(archive, conf).items()))
    if not os.environ.get("PYSPARK_PYTHON") and archive is None:
        # PySpark starts workers with $PYSPARK_PYTHON (else "python3", which may
        # lack this environment's packages), whatever spark.pyspark.python says.
        os.environ["PYSPARK_PYTHON"] = conf.get("spark.pyspark.python", None) or sys.executable
    master = with_retries(master, conf)
    conf.setMaster(master)
    if settings.app_name != "rxspark" or not conf.contains("spark.app.name"):
        conf.setAppName(settings.app_name)
    builder = SparkSession.builder.config(conf=conf)
    if launching:  # recorded before the launch: a start that fails after it leaves them in the JVM too
        _LAUNCHED.update(dict(conf.getAll()))
    started: dict[str, Any] = {}

    def run() -> None:
        try:
            with warnings.catch_warnings(), _executor_python(ENV_PYTHON if archive is not None else None):
                warnings.simplefilter("ignore", FutureWarning)
                started["session"] = builder.getOrCreate()
        except BaseException as exc:  # noqa: BLE001 - reported below
            started["error"] = exc

    thread = threading.Thread(target=run, name="rxspark-spark-start", daemon=True)
    thread.start()
    thread.join(settings.startup_timeout)
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
            f"Spark did not start within {settings.startup_timeout:.0f} s on master {master}. Fix: check the "
            f"master and its resources, or raise RxSpark(startup_timeout=...).{hint}"
        )
    if "error" in started:
        exc = started["error"]
        raise RxSparkUnavailableError(
            f"Spark could not start on master {master}: {type(exc).__name__}: {str(exc).strip()[:500]}. "
            "Fix: run `rxspark doctor` to check Java, PySpark and the master."
        ) from exc
    session = started["session"]
    session.sparkContext.setLogLevel("ERROR")
    return session, master


# The properties of the session whose start launched this process's JVM.
# PySpark hands them to spark-submit as --conf, so they stay in the JVM as
# system properties and every later SparkConf() would read them back: a
# cluster application started after a local one would inherit its loopback
# driver host and its executors' PYTHONPATH (the driver's own paths).
_LAUNCHED: dict[str, str] = {}


def _forget_launch() -> None:
    """Before a new application: drop what the JVM kept of the session that launched it.

    Only properties rxspark itself gave the launch are cleared (and only while
    they hold that value), never those of spark-submit, ``PYSPARK_SUBMIT_ARGS``
    or a session rxspark did not start; a property that
    ``conf/spark-defaults.conf`` sets too is cleared as well.
    """
    if not _LAUNCHED or _compat.active_spark_context() is not None:
        return
    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    _compat.clear_launch_properties({k: v for k, v in _LAUNCHED.items() if k not in submit_args})
    _LAUNCHED.clear()


@contextlib.contextmanager
def _executor_python(python: str | None) -> Any:
    """``PYSPARK_PYTHON`` while the SparkContext starts: it fixes its ``pythonExec``, the executors' Python."""
    if python is None:
        yield
        return
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = python
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = before


def start_connect(url: str) -> tuple[Any, bool]:
    """A Spark Connect session on ``url``: (session, whether rxspark made it).

    Uses the Connect client's own builder, so this process's classic session
    (if any) keeps working: pyspark's generic builder would switch the whole
    process to Connect mode.

    Raises:
        RxSparkUnavailableError: The Connect client is not installed, is PySpark 3.5's, or the server
            does not answer.
    """
    why = _compat.connect_unsupported()
    if why:
        raise RxSparkUnavailableError(f"RxSpark(remote={url!r}): {why}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError as exc:
        raise RxSparkUnavailableError(
            f"RxSpark(remote=...) needs the Spark Connect client: pip install 'pyspark[connect]>=4,<5' "
            f"(or pyspark-client). ({exc})"
        ) from exc
    existing = _active_connect_session()
    if existing is not None and _compat.connect_endpoint(existing) == _url_endpoint(url):
        return existing, False
    try:
        # create(), not getOrCreate(): that returns the default session whatever its server.
        session = ConnectSession.builder.remote(url).create()
        session.range(1).collect()  # fail here, not in the first job, when the server does not answer
    except Exception as exc:  # noqa: BLE001 - reported with the URL
        raise RxSparkUnavailableError(
            f"cannot reach the Spark Connect server {url}: {type(exc).__name__}: {str(exc).strip()[:400]}. "
            "Fix: start it (sbin/start-connect-server.sh) or check the URL."
        ) from exc
    return session, True


def _url_endpoint(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url.split(";", 1)[0].replace("sc://", "http://", 1))
    return f"{parsed.hostname}:{parsed.port or 15002}"


def wait_for_executors(session: SparkSession, master: str, settings: SessionSettings) -> None:
    """On clusters, wait until the expected executors have registered."""
    if master.startswith("local[") or master == "local":
        return
    match = re.match(r"local-cluster\[(\d+)", master)
    expected = int(match.group(1)) if match else (settings.num_executors or 1)
    sc = session.sparkContext
    deadline = time.monotonic() + settings.startup_timeout
    while True:
        ids = _compat.executor_ids(sc)
        if ids is None or len(ids) >= expected:
            return  # None: the count cannot be read; the first job waits for executors instead
        if time.monotonic() > deadline:
            raise RxSparkUnavailableError(
                f"only {len(ids)} of {expected} executors registered within "
                f"{settings.startup_timeout:.0f} s on {master}. Fix: check the cluster's free cores and memory."
            )
        time.sleep(0.1)


def stop(session: SparkSession) -> None:
    """Stop a session rxspark started (never call it on one it attached to)."""
    with contextlib.suppress(Exception):
        session.stop()
