"""The functions the benchmarks run as tasks.

They live in a module of their own (not in ``run.py``) so every engine ships
them the same way, by reference: Spark's Python workers, the local process
pools, loky and Dask import this module (``run.py`` puts ``benchmarks/`` and
``examples/`` on their path). The dice game is the one of ``examples/dice.py``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXAMPLES = os.path.join(os.path.dirname(_HERE), "examples")
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)

from dice import play_dice  # noqa: E402 - examples/ is put on the path just above

__all__ = [
    "play_dice",
    "play_dice_i",
    "trivial",
    "trivial_i",
    "mandelbrot",
    "vmandelbrot",
    "mandelbrot_axes",
    "make_table",
    "tag_sum",
    "tag_sum_exec",
    "tag_sum_shared",
]


def play_dice_i(_index: int) -> str:
    """``play_dice`` for engines that map over an iterable (Dask ``client.map``)."""
    return play_dice()


def trivial() -> int:
    """The cheapest task there is: what is left is the engine's own cost per task."""
    return 1


def trivial_i(_index: int) -> int:
    return 1


# ------------------------------------------------------------------ W2: Mandelbrot


def mandelbrot(x0: float, y0: float, lim: int) -> int:
    """Iterations before the point escapes (``lim`` if it never does): the guide's loop, in pure Python."""
    x, y = x0, y0
    iteration = 0
    while x * x + y * y < 4.0 and iteration < lim:
        x, y = x * x - y * y + x0, 2.0 * x * y + y0
        iteration += 1
    return iteration


def vmandelbrot(xs: list[float], y0: float, lim: int) -> list[int]:
    """One row of the image: the guide's ``vmandelbrot``."""
    return [mandelbrot(x0, y0, lim) for x0 in xs]


def mandelbrot_axes(size: int) -> tuple[list[float], list[float]]:
    """The guide's x in [-2, 0.6] and y in [-1.3, 1.3], ``size`` points each."""

    def linspace(lo: float, hi: float, n: int) -> list[float]:
        return [lo + (hi - lo) * i / (n - 1) for i in range(n)] if n > 1 else [lo]

    return linspace(-2.0, 0.6, size), linspace(-1.3, 1.3, size)


# ------------------------------------------------------------------ W3: a large shared table


def make_table(n_rows: int, seed: int = 20240601) -> Any:
    """The guide's table: ``tag`` drawn from A..G, ``a`` and ``b`` uniform on [0, 1)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    letters = np.array(list("ABCDEFG"))
    return pd.DataFrame({"tag": letters[rng.integers(0, 7, n_rows)], "a": rng.random(n_rows), "b": rng.random(n_rows)})


def tag_sum(d: Any, ztag: str) -> float:
    """The guide's ``filterTest``: the sum of ``a`` over the rows tagged ``ztag``."""
    return float(d["a"][d["tag"] == ztag].sum())


# Installed by rx_exec(exec_objects={"test_data": table}) as a global of a copy of tag_sum_exec.
test_data: Any = None


def tag_sum_exec(ztag: str) -> float:
    """``tag_sum`` on the table shipped as the exec object ``test_data``."""
    return tag_sum(test_data, ztag)


def tag_sum_shared(handle: Any, ztag: str) -> float:
    """``tag_sum`` on the table behind an ``rx_share`` handle (loaded once per worker process)."""
    return tag_sum(handle.value, ztag)
