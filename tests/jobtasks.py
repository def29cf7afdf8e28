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
