"""Task functions of the reliability suite.

They live in a module (registered to be pickled by value) so spawned worker
processes and Spark executors can run them without seeing the tests' path.
Tasks that must be counted leave one marker file per execution in a
directory: ``start.<task>.<attempt>.<pid>.<token>`` when they begin and
``done.<task>...`` when they return, so a test can tell how often each task
ran, on which attempt, and in which process.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time

import numpy as np

import rxspark


def spark_attempt() -> int:
    """The Spark attempt number of the running task (0 outside Spark)."""
    try:
        from pyspark import TaskContext
    except ImportError:  # pragma: no cover - pyspark is a dependency
        return 0
    context = TaskContext.get()
    return context.attemptNumber() if context is not None else 0


def executor_jvm_pid() -> int | None:
    """The pid of the Spark executor JVM this Python worker descends from (None outside Spark)."""
    pid = os.getppid()
    for _ in range(4):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"CoarseGrainedExecutorBackend" in f.read():
                    return pid
            with open(f"/proc/{pid}/stat", "rb") as f:
                pid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
    return None


def mark(log_dir: str, kind: str, task: int, **info) -> str:
    """Leave a marker file for one event of one task execution; return its path."""
    attempt = spark_attempt()
    name = f"{kind}.{task}.{attempt}.{os.getpid()}.{secrets.token_hex(4)}"
    path = os.path.join(log_dir, name)
    with open(os.path.join(log_dir, "." + name), "w") as f:  # written aside, then renamed: readers see whole files
        json.dump({"task": task, "attempt": attempt, "pid": os.getpid(), "jvm": executor_jvm_pid(), **info}, f)
    os.rename(os.path.join(log_dir, "." + name), path)
    return path


def events(log_dir: str, kind: str) -> list[dict]:
    """Every marker of ``kind`` ("start" or "done") in ``log_dir``."""
    found = []
    for name in os.listdir(log_dir):
        if name.startswith(kind + "."):
            with open(os.path.join(log_dir, name)) as f:
                found.append(json.load(f))
    return found


def per_task(log_dir: str, kind: str) -> dict[int, int]:
    """How many ``kind`` markers each task left."""
    counts: dict[int, int] = {}
    for event in events(log_dir, kind):
        counts[event["task"]] = counts.get(event["task"], 0) + 1
    return counts


def _orphaned(parent: int) -> bool:
    return os.getppid() != parent


def seeded_work(x, log_dir, seconds=0.3, victim=-1, hold=60.0):
    """Draw from the task's stream, take ``seconds``, return the draws.

    The ``victim`` task blocks on its first Spark attempt (up to ``hold``
    seconds) so a test can kill the executor running it; it ends quietly if its
    parent process goes away meanwhile.
    """
    mark(log_dir, "start", x)
    draws = rxspark.rng().uniform(size=4).tolist()
    if x == victim and spark_attempt() == 0:
        parent = os.getppid()
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            if _orphaned(parent):
                os._exit(0)
            time.sleep(0.05)
    time.sleep(seconds)
    mark(log_dir, "done", x)
    return x, draws


def crash_first_attempt(x, marker_dir, every=4, how="segv"):
    """Kill this worker process the first time tasks ``x % every == 1`` run (an infrastructure fault)."""
    value = rxspark.rng().uniform()
    marker = os.path.join(marker_dir, f"crashed-{x}")
    if x % every == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        die(how)
    return x, value


def crash_always(x, bad=5, how="segv"):
    """Kill this worker process every time task ``bad`` runs."""
    if x == bad:
        die(how)
    return x


def die(how: str) -> None:
    if how == "segv":
        import ctypes

        ctypes.string_at(0)  # dereferences NULL: SIGSEGV
    os._exit(7)


def fail_some(x, bad, log_dir):
    """Raise a user exception in tasks ``bad``; count every execution."""
    mark(log_dir, "start", x)
    if x in bad:
        raise ValueError(f"task {x} refuses to work")  # THE FAILING LINE
    mark(log_dir, "done", x)
    return x * x


def fail_first_then_slow(x, log_dir, slow=8.0, rest=0.4):
    """Task 0 fails as soon as task 1 runs; task 1 takes ``slow`` seconds; the others ``rest`` seconds."""
    mark(log_dir, "start", x)
    if x == 0:
        deadline = time.monotonic() + 30
        while not any(name.startswith("start.1.") for name in os.listdir(log_dir)) and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("task 0 fails while task 1 runs")
    time.sleep(slow if x == 1 else rest)
    mark(log_dir, "done", x)
    return x


def unpicklable_in(x, bad=(1,)):
    """Tasks ``bad`` return an object that cannot be pickled."""
    if x in bad:
        import threading

        return {"lock": threading.Lock()}
    return x


def lock_result(x, bad=(1,)):
    if x in bad:
        import threading

        return threading.Lock()
    return x


def big_blob(i, nbytes):
    """``nbytes`` random bytes (seeded by ``i``) and their checksum computed where they were made."""
    blob = np.random.default_rng(i).bytes(nbytes)
    return i, hashlib.sha256(blob).hexdigest(), blob


def forever(x, log_dir, limit=300.0):
    """Never end (bounded by ``limit`` as a safety net); leave a start marker first."""
    mark(log_dir, "start", x)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.05)
    mark(log_dir, "done", x)
    return x


def wait_for_file(x, path, limit=60.0):
    """Block until ``path`` exists (bounded), so a test can look at a running job."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return x


def echo(*args, **kwargs):
    return args, kwargs


def pid_of(x):
    """The pid of the worker process that ran task ``x``."""
    return os.getpid(), x


class BadStr(Exception):
    """A user exception whose str() itself fails."""

    def __str__(self):
        raise RuntimeError("no str for you")


class Abort(BaseException):  # noqa: N818 - a user's own name
    """A user exception outside the Exception hierarchy."""


def raise_odd(x, log_dir, kind):
    """Task 1 raises an unusual user exception; every execution is counted."""
    mark(log_dir, "start", x)
    if x == 1:
        if kind == "bad-str":
            raise BadStr()
        raise Abort("task 1 aborts")
    return x


class Unloadable:
    """Pickles fine, cannot be unpickled (like an object whose class exists only on the workers)."""

    def __reduce__(self):
        return (int, ("not a number",))


def unloadable_in(x, bad=(1,)):
    return Unloadable() if x in bad else x
