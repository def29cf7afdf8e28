"""Task functions for the job tests (importable by worker processes, pickled by value for Spark)."""

from __future__ import annotations

import time


def logged_sleep(x, log_path, seconds=0.5):
    """Note that task ``x`` started (one line in ``log_path``), then sleep."""
    with open(log_path, "a") as f:
        f.write(f"{x}\n")
    time.sleep(seconds)
    return x


def shout(x):
    print(f"task says {x}")
    return x * 10


def started(log_path) -> int:
    """How many tasks wrote to ``log_path`` so far."""
    try:
        with open(log_path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def durable_task(x, log_path, seconds=0.3):
    """Log ``x`` with this process's pid (one line per run of the task), sleep, and draw from the task's stream."""
    import os

    import rxspark

    with open(log_path, "a") as f:
        f.write(f"{x} {os.getpid()}\n")
    time.sleep(seconds)
    return x * 1000 + float(rxspark.rng().random())


def runs(log_path) -> list[int]:
    """The task indices logged by ``durable_task`` in ``log_path``, in the order they ran."""
    try:
        with open(log_path) as f:
            return [int(line.split()[0]) for line in f if line.strip()]
    except FileNotFoundError:
        return []
