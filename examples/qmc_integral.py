"""Quasi-Monte Carlo with rx_exec: a 5-D integral by plain Monte Carlo and by SOBOL and NIEDERR points.

The integrand is ``f(x) = prod_j (pi/2) sin(pi x_j)`` on ``[0, 1]^5``, whose
integral is exactly 1. For each ``n = 2**m``, ``--tasks`` tasks each evaluate f
at ``n / tasks`` points drawn with ``rxspark.rng().uniform(size=(points, 5))``
(the same call for every kind) and return their sum:

* plain Monte Carlo: ``rng_kind="PCG64"``, ``--replicates`` independent runs (each
  task its own stream), root-mean-square error about ``sigma / sqrt(n)``;
* quasi-Monte Carlo: ``rng_kind="SOBOL"`` and ``"NIEDERR"`` with
  ``rx_options(qrng_stream_points=n // tasks)``. Stream i is then the points
  ``[i n/tasks, (i+1) n/tasks)`` of the sequence, so the tasks together use exactly
  its first n points, the same estimate as one sequential QMC run, and the error
  falls about as ``1 / n`` (times powers of ``log n``).

The error of each estimate is plotted against n on log-log axes.

    python examples/qmc_integral.py                        # embedded Spark (local[*])
    python examples/qmc_integral.py --master none          # no Spark: RxLocalSeq
    python examples/qmc_integral.py --seed 1 --output docs/img/qmc_integral.png
    ./spark-submit.sh examples/qmc_integral.py --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import rxspark
from rxspark import RxLocalSeq, RxSpark, rx_exec, rx_options

QMC_KINDS = ("SOBOL", "NIEDERR")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "qmc_integral.png")


def integrand(x: np.ndarray) -> np.ndarray:
    """``prod_j (pi/2) sin(pi x_j)`` for each row of ``x``: its integral over the unit cube is 1."""
    return np.prod(0.5 * np.pi * np.sin(np.pi * x), axis=1)


def exact_sigma(dim: int) -> float:
    """Standard deviation of f(U) for uniform U: ``E f^2 = (pi^2 / 8)^dim``, ``E f = 1``."""
    return math.sqrt((math.pi**2 / 8) ** dim - 1)


def partial_sum(points: int, dim: int) -> float:
    """Sum of f over the task's next ``points`` points (pseudo- or quasi-random, whatever the job's rng_kind)."""
    x = rxspark.rng().uniform(size=(points, dim))
    return float(integrand(x).sum())


@contextlib.contextmanager
def stream_points(points: int) -> Iterator[None]:
    """``rx_options(qrng_stream_points=points)`` for the jobs started inside (read when rx_exec is called)."""
    before = rx_options()["qrng_stream_points"]
    rx_options(qrng_stream_points=points)
    try:
        yield
    finally:
        rx_options(qrng_stream_points=before)


def sequential_qmc(kind: str, n: int, dim: int) -> float:
    """The same QMC estimate from the first n points of the sequence, in one process (for the check)."""
    from rxspark import qrng

    return float(integrand(qrng.SEQUENCES[kind](dim).draw(n)).sum() / n)


def plot(result: dict[str, Any], path: str) -> str:
    """Log-log error against n: MC RMS error with sigma/sqrt(n), the QMC errors with a 1/n guide."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = np.asarray(result["n"], dtype=float)
    fig = Figure(figsize=(7, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.loglog(n, result["mc_rms_error"], "o-", color="tab:gray", ms=4,
              label=f"Monte Carlo (PCG64), RMS of {result['replicates']} runs")
    ax.loglog(n, result["sigma"] / np.sqrt(n), color="tab:gray", lw=0.8, ls="--", label=r"$\sigma/\sqrt{n}$")
    for kind, colour in zip(QMC_KINDS, ("tab:blue", "tab:orange")):
        ax.loglog(n, np.maximum(result["qmc_error"][kind], 1e-17), "s-", color=colour, ms=4, label=f"quasi-MC ({kind})")
    guide = result["qmc_error"]["SOBOL"][0] * n[0] / n
    ax.loglog(n, guide, color="tab:blue", lw=0.8, ls=":", label=r"$\propto 1/n$")
    ax.set_xlabel(f"points n (over {result['tasks']} tasks)")
    ax.set_ylabel("absolute error")
    ax.set_title(rf"Error of $\int_{{[0,1]^{{{result['dim']}}}}} \prod_j\, (\pi/2) \sin(\pi x_j)\, dx = 1$ against n")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--dim", type=int, default=5, help="dimensions of the integral")
    parser.add_argument("--tasks", type=int, default=16, help="tasks sharing each estimate (a power of 2)")
    parser.add_argument("--min-log2-n", type=int, default=6, help="smallest n is 2**this")
    parser.add_argument("--max-log2-n", type=int, default=17, help="largest n is 2**this")
    parser.add_argument("--replicates", type=int, default=16, help="independent Monte Carlo runs per n")
    parser.add_argument("--seed", type=int, default=None, help="rng_seed of the Monte Carlo runs (QMC points do not depend on it)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG to write ('none': no picture)")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.tasks & (args.tasks - 1):
        parser.error("--tasks must be a power of 2 (each task takes n / tasks points)")
    if 2**args.min_log2_n < args.tasks:
        parser.error("--min-log2-n too small: every task needs at least one point")

    ns = [2**m for m in range(args.min_log2_n, args.max_log2_n + 1)]
    tasks, reps, dim = args.tasks, args.replicates, args.dim
    result: dict[str, Any] = {"n": ns, "dim": dim, "tasks": tasks, "replicates": reps, "sigma": exact_sigma(dim),
                              "mc_rms_error": [], "qmc_estimate": {k: [] for k in QMC_KINDS},
                              "qmc_error": {k: [] for k in QMC_KINDS}, "output": None}

    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        started = time.perf_counter()
        for n in ns:
            per_task = n // tasks
            # Monte Carlo: replicate r is tasks [r*tasks, (r+1)*tasks), each task on its own stream.
            sums = rx_exec(partial_sum, per_task, dim, times_to_run=reps * tasks, rng_seed=args.seed,
                           rng_kind="PCG64", rng_scope="task")
            estimates = np.add.reduceat(np.asarray(sums), np.arange(0, reps * tasks, tasks)) / n
            result["mc_rms_error"].append(float(np.sqrt(np.mean((estimates - 1.0) ** 2))))
            # Quasi-Monte Carlo: the tasks' streams tile the first n points of the sequence.
            for kind in QMC_KINDS:
                with stream_points(per_task):
                    sums = rx_exec(partial_sum, per_task, dim, times_to_run=tasks, rng_seed=args.seed,
                                   rng_kind=kind, rng_scope="task")
                estimate = float(np.sum(sums) / n)
                result["qmc_estimate"][kind].append(estimate)
                result["qmc_error"][kind].append(abs(estimate - 1.0))
        result["elapsed"] = time.perf_counter() - started

    jobs = len(ns) * (1 + len(QMC_KINDS))
    print(f"{dim}-D integral (exact 1), n = 2^{args.min_log2_n}..2^{args.max_log2_n} over {tasks} tasks: "
          f"{jobs} jobs in {result['elapsed']:.2f} s on {type(context).__name__}")
    print(f"{'n':>8} {'MC RMS error':>13} {'SOBOL error':>12} {'NIEDERR error':>14}")
    for i, n in enumerate(ns):
        print(f"{n:>8} {result['mc_rms_error'][i]:>13.2e} {result['qmc_error']['SOBOL'][i]:>12.2e} "
              f"{result['qmc_error']['NIEDERR'][i]:>14.2e}")
    logn = np.log(ns)
    result["slope"] = {"MC": float(np.polyfit(logn, np.log(result["mc_rms_error"]), 1)[0])}
    for kind in QMC_KINDS:
        result["slope"][kind] = float(np.polyfit(logn, np.log(np.maximum(result["qmc_error"][kind], 1e-17)), 1)[0])
    print("log-log slopes: " + ", ".join(f"{k} {v:.2f}" for k, v in result["slope"].items())
          + " (MC: -1/2; QMC: about -1)")
    largest = ns[-1]
    result["ratio"] = {k: result["mc_rms_error"][-1] / max(result["qmc_error"][k][-1], 1e-17) for k in QMC_KINDS}
    print(f"at n = {largest}: QMC error " + ", ".join(f"{k} {r:.0f}x" for k, r in result["ratio"].items())
          + " smaller than MC's")
    result["sequential"] = {k: sequential_qmc(k, largest, dim) for k in QMC_KINDS}
    same = all(math.isclose(result["sequential"][k], result["qmc_estimate"][k][-1], rel_tol=1e-12) for k in QMC_KINDS)
    print(f"the {tasks} tasks' QMC estimates equal one sequential run over the first {largest} points: {same}")
    result["same_as_sequential"] = same
    if args.output and args.output.lower() != "none":
        result["output"] = plot(result, args.output)
        print(f"plot: {result['output']}")
    return result


if __name__ == "__main__":
    main()
