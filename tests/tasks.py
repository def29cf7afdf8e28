"""Task functions used by the tests.

They live in a module (not in test files) so worker processes can import them
by reference, and they are registered to be pickled by value for Spark
workers, which do not see the tests' sys.path.
"""

from __future__ import annotations

import os
import random
import socket
import sys
import time

import numpy as np

import rxspark


def add(x, y=0, z=0):
    return x + y + z


def echo(*args, **kwargs):
    return (args, kwargs)


def identity(x):
    return x


def constant():
    return 42


def draw(size=3):
    # uniform() exists on numpy Generators and on mkl-random RandomStates alike.
    return rxspark.rng().uniform(size=size).tolist()


def draw_globals(size=3):
    """Uses only the stdlib and NumPy legacy global states."""
    return [random.random() for _ in range(size)] + np.random.rand(size).tolist()


def draw_both(size=2):
    return rxspark.rng().uniform(size=size).tolist() + [random.random() for _ in range(size)] + np.random.rand(size).tolist()


def uniforms(n=500):
    return rxspark.rng().uniform(size=n)


def fail_on(x, bad=(2,)):
    if x in bad:
        raise ValueError(f"bad value {x}")  # the failing line
    return x


def printer(x):
    print(f"out {x}")
    print(f"err {x}", file=sys.stderr)
    return x


def where():
    return socket.gethostname()


def pid_of(_=None):
    return os.getpid()


def uses_global(x):
    return x * SCALE  # noqa: F821 - provided through exec_objects


def uses_helper(x):
    return helper(x) + 1  # noqa: F821 - provided through exec_objects


def uses_package(x):
    return json.dumps({"x": x})  # noqa: F821 - provided through packages_to_load


def sleepy(seconds, value=None):
    time.sleep(seconds)
    return value


def counting(x, log_path):
    with open(log_path, "a") as f:
        f.write(f"{x}\n")
    return x


def unpicklable_result(x):
    if x == 1:
        import threading

        return threading.Lock()
    return x


def exit_process(x):
    if x == 1:
        sys.exit(3)
    return x
