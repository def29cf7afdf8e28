"""Small helpers shared by the test modules: polling with a deadline, a free loopback port, and the job tests' looks into a job store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import jobtasks

from rxspark.jobs import store as job_store

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
SLOW_TASKS = 40  # x 0.5 s: a job that would take 20 s (10 s on two workers) if not canceled



def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def eventually(predicate, timeout=30.0, what="a condition", interval=0.02):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def settled(log, quiet=1.0, timeout=20.0):
    """How many tasks started (jobtasks.logged_sleep's ``log``), once that has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    count, since = jobtasks.started(log), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"tasks still start {timeout} s after the job was canceled"
        time.sleep(0.05)
        now = jobtasks.started(log)
        if now != count:
            count, since = now, time.monotonic()
    return count


def child_env() -> dict[str, str]:
    """The environment of a child Python that can import rxspark and the test helpers."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, ROOT, os.environ.get("PYTHONPATH", "")]))


def python(code, *args, timeout=120):
    """Run ``code`` in a fresh interpreter (another process than the job's owner); return its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, env=child_env(),
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def job_dirs(share_dir):
    """The ids of the jobs recorded in ``share_dir``."""
    return sorted(job_store.store_for(share_dir).job_ids())


def record_of(share_dir, job_id):
    with open(os.path.join(share_dir, job_id, "record.json")) as f:
        return json.load(f)
