"""Helpers and fixtures of the reliability suite.

Every wait here is a poll with a deadline; every child process has a timeout.
Spark tests use the session's shared ``spark_cluster`` (local-cluster with two
executor JVMs, ``spark.task.maxFailures`` 4) or their own cluster or driver in
a subprocess, since a process can hold only one SparkContext.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import cloudpickle
import pytest
from helpers import eventually  # noqa: F401 - re-exported to the reliability tests

from rxspark import RxLocalParallel

from . import faults

cloudpickle.register_pickle_by_value(faults)

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError):
        # A process reaped between open() and read() makes the read fail with ESRCH
        # (seen once in a fresh-clone run while the collected pool's workers exited).
        return False


def executor_jvms(app_id: str) -> dict[int, str]:
    """The live executor JVMs of a Spark application: pid -> executor id (found through /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in argv and app_id in argv:
            found[int(entry)] = argv[argv.index("--executor-id") + 1]
    return {pid: ex for pid, ex in found.items() if pid_alive(pid)}


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that can import rxspark and the test helpers."""
    path = os.pathsep.join(p for p in (TESTS, ROOT, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, SPARK_LOCAL_IP="127.0.0.1")
    env.update(extra)
    return env


def run_child(args, timeout=180, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=kwargs.pop("env", child_env()), **kwargs
    )


@pytest.fixture(autouse=True)
def _private_store(share_dir):
    """Every reliability test gets a private job store (non-waiting jobs write records)."""
    return share_dir


@pytest.fixture
def log_dir(tmp_path):
    path = tmp_path / "log"
    path.mkdir()
    return str(path)


@pytest.fixture
def jobs():
    """Non-waiting jobs a test starts; any still running at teardown is canceled, so a failed
    test cannot leave endless tasks that hold the shared cluster's executors."""
    started: list = []
    yield started
    for job in started:
        if not job.done():
            job.cancel()
            job.wait_done(60)


@pytest.fixture
def localpar():
    """A fresh two-process pool per test: crash tests break pools on purpose."""
    cc = RxLocalParallel(2)
    yield cc
    cc.close()


class Child:
    """A child process whose stdout lines ``TAG {json}`` are read with deadlines."""

    def __init__(self, args, env=None):
        import queue
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or child_env()
        )
        self.lines: queue.Queue = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []

        def pump(stream, sink, queue_=None):
            for line in stream:
                sink.append(line)
                if queue_ is not None:
                    queue_.put(line)

        self._threads = [
            threading.Thread(target=pump, args=(self.proc.stdout, self.stdout, self.lines), daemon=True),
            threading.Thread(target=pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def expect(self, tag: str, timeout: float = 120.0) -> dict:
        """The payload of the next ``tag`` line (earlier lines are skipped)."""
        import json
        import queue

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {tag} line within {timeout} s; stderr:\n{''.join(self.stderr)[-3000:]}")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        f"the child exited ({self.proc.returncode}) before {tag}; stderr:\n{''.join(self.stderr)[-3000:]}"
                    ) from None
                continue
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    @property
    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)
