"""A local Spark Connect server for the tests: started once per test session, stopped by its process id.

The pyspark wheel ships ``sbin/start-connect-server.sh`` (4.3.0 does; 4.2.1, the
newest for Python 3.10, does not: then the ``spark-daemon.sh`` call the script
makes is made here); the server runs on
``local[2,4]`` (2 task slots, crashed Python workers retried), on a free
loopback port, with this interpreter as the workers' Python, and keeps its
logs and pid file in a private directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from helpers import free_port


def connect_unavailable() -> str | None:
    """Why a local Connect server cannot run here (None: it can)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Spark Connect tests need Java 17+ (none found)"
    from rxspark import _compat

    too_old = _compat.connect_unsupported()  # PySpark 3.5 (API.md: Connect needs 4.x)
    if too_old:
        return f"Spark Connect tests skip: {too_old}"
    try:
        import warnings

        import grpc  # noqa: F401

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pyspark's pandas version warning
            import pyspark.sql.connect.session  # noqa: F401
    except ImportError as exc:
        return f"Spark Connect tests need pyspark[connect] (grpcio, grpcio-status, googleapis-common-protos, zstandard): {exc}"
    return None


class ConnectServer:
    def __init__(self, python: str | None = None, master: str = "local[2,4]", conf: dict[str, str] | None = None) -> None:
        import pyspark

        self.home = os.path.dirname(pyspark.__file__)
        self.dir = tempfile.mkdtemp(prefix="rxspark-connect-server-")
        self.port = free_port()
        self.url = f"sc://127.0.0.1:{self.port}"
        self.python = python or sys.executable
        self.master = master
        self.conf = dict(conf or {})
        self.pid: int | None = None

    def start(self, timeout: float = 120.0) -> ConnectServer:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=self.home,
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_LOG_DIR=os.path.join(self.dir, "log"),
            SPARK_PID_DIR=os.path.join(self.dir, "pid"),
            SPARK_IDENT_STRING=f"rxspark{self.port}",
            PYSPARK_PYTHON=self.python,
        )
        env.pop("SPARK_REMOTE", None)
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.pyspark.python": self.python,
            "spark.ui.enabled": "false",
            **self.conf,
        }
        script = os.path.join(self.home, "sbin", "start-connect-server.sh")
        if os.path.exists(script):
            args = [script, "--master", self.master]
        else:  # the pyspark 4.2 wheel has no such script (checked on 4.2.1, the newest for Python 3.10): what it runs
            args = [os.path.join(self.home, "sbin", "spark-daemon.sh"), "submit",
                    "org.apache.spark.sql.connect.service.SparkConnectServer", "1", "--name", "Spark Connect server",
                    "--master", self.master]
        for key, value in conf.items():
            args += ["--conf", f"{key}={value}"]
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while self.pid is None and time.monotonic() < deadline:
            files = glob.glob(os.path.join(self.dir, "pid", "*.pid"))
            if files:
                with open(files[0]) as f:
                    text = f.read().strip()
                if text:
                    self.pid = int(text)
            time.sleep(0.2)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            if self.pid is not None and not _alive(self.pid):
                break
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the Spark Connect server did not start; see {self.dir}/log")

    def stop(self) -> None:
        if self.pid is not None and _alive(self.pid):
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(self.pid):
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
        self.pid = None
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
