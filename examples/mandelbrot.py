"""The Mandelbrot set of the rxExec guide: a 240 x 240 grid, one task per row.

Each row of the image (one y value) is a per-call argument (``rx_elem_arg``);
the rows go to the workers in chunks of 48. The row function ``vmandelbrot``
calls the per-point function ``mandelbrot`` as a global, shipped to the
workers with ``exec_objects=["mandelbrot"]``, exactly as in the guide.

    python examples/mandelbrot.py                        # embedded Spark (local[*])
    python examples/mandelbrot.py --master none          # no Spark: RxLocalSeq
    python examples/mandelbrot.py --size 480 --limit 200 --output docs/img/mandelbrot.png
    ./spark-submit.sh examples/mandelbrot.py
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from rxspark import RxLocalSeq, RxSpark, rx_elem_arg, rx_exec

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "mandelbrot.png")


def mandelbrot(x0: float, y0: float, lim: int) -> int:
    """Iterations of z -> z^2 + c (c = x0 + i y0) before |z| >= 2, at most ``lim``."""
    x, y = x0, y0
    iterations = 0
    while x * x + y * y < 4 and iterations < lim:
        xtemp = x * x - y * y + x0
        y = 2 * x * y + y0
        x = xtemp
        iterations += 1
    return iterations


def vmandelbrot(xvec: list[float], y0: float, lim: int) -> list[int]:
    """One row of the image: ``mandelbrot`` (a global, sent as an exec object) along ``xvec``."""
    return [mandelbrot(x0, y0, lim) for x0 in xvec]


def plot(counts: np.ndarray, x_in: np.ndarray, y_in: np.ndarray, limit: int, path: str) -> str:
    """The guide's image: rainbow colours by iteration count, black inside the set."""
    # A bare Figure draws off-screen without touching pyplot's backend, so a notebook's
    # inline plots keep working after an example ran in it.
    import matplotlib
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    colours = matplotlib.colormaps.get_cmap("hsv")(np.linspace(0, 5 / 6, limit))  # R's rainbow(m): red .. magenta
    cmap = ListedColormap(np.vstack([colours, [0, 0, 0, 1]]))
    fig = Figure(figsize=(6, 6), dpi=100)
    ax = fig.subplots()
    ax.imshow(counts, cmap=cmap, vmin=0, vmax=limit, origin="lower", interpolation="nearest",
              extent=(x_in[0], x_in[-1], y_in[0], y_in[-1]), aspect="equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"Mandelbrot set, {len(x_in)} x {len(y_in)} points, limit {limit}")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--size", type=int, default=240, help="points along x and along y")
    parser.add_argument("--limit", type=int, default=100, help="iteration limit")
    parser.add_argument("--chunk-size", type=int, default=48, help="rows per chunk")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG to write ('none': no picture)")
    args = parser.parse_args(argv)

    x_in = np.linspace(-2.0, 0.6, args.size)
    y_in = np.linspace(-1.3, 1.3, args.size)
    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        started = time.perf_counter()
        rows = rx_exec(vmandelbrot, x_in.tolist(), rx_elem_arg(y_in.tolist()), args.limit,
                       task_chunk_size=args.chunk_size, exec_objects=["mandelbrot"])
        elapsed = time.perf_counter() - started
    counts = np.array(rows, dtype=np.int64)  # counts[j, i]: point (x_in[i], y_in[j])
    inside = int((counts == args.limit).sum())
    print(f"{args.size} x {args.size} points, limit {args.limit}: {len(rows)} rows in "
          f"{-(-len(rows) // args.chunk_size)} chunks, {elapsed:.2f} s on {type(context).__name__}")
    print(f"{inside} points ({inside / counts.size:.1%}) stay bounded; mean iterations {counts.mean():.2f}")
    result: dict[str, Any] = {"counts": counts, "x": x_in, "y": y_in, "limit": args.limit, "elapsed": elapsed, "output": None}
    if args.output and args.output.lower() != "none":
        result["output"] = plot(counts, x_in, y_in, args.limit, args.output)
        print(f"image: {result['output']}")
    return result


if __name__ == "__main__":
    main()
