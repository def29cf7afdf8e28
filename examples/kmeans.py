"""Naive parallel k-means of the rxExec guide: split nstart over 20 tasks, keep the best.

5000 x 50 standard-normal data, 10 centers, at most 35 iterations. Each of
the 20 tasks runs k-means from ``--nstart`` random starts (initial centers
drawn from the data with ``rxspark.rng()``) and returns its best solution;
the driver keeps the one with the smallest total within-cluster sum of
squares. For comparison, one sequential run with all 20 x nstart starts.

The k-means is a small NumPy implementation of Lloyd's algorithm (R's
``kmeans`` defaults to Hartigan-Wong). The tasks use ``rng_scope="task"``:
with ``--seed`` each task has its own stream, so the result is the same on
every run, context and chunk size.

    python examples/kmeans.py                            # embedded Spark (local[*])
    python examples/kmeans.py --seed 777                 # two runs give identical results
    python examples/kmeans.py --master none --tasks 4 --nstart 5
    ./spark-submit.sh examples/kmeans.py --seed 777
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

# One BLAS thread per process: the parallelism comes from the tasks (the guide's
# setMKLthreads(1)); threaded BLAS in every worker only fights over the cores.
# Spark's Python workers get OMP_NUM_THREADS=spark.task.cpus anyway; this covers
# the driver's sequential run and local contexts. Must precede importing NumPy.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import rxspark  # noqa: E402
from rxspark import RxLocalSeq, RxSpark, rx_exec  # noqa: E402

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "kmeans.png")


def kmeans(x: np.ndarray, centers: int, iter_max: int = 10, nstart: int = 1, rng: Any = None) -> dict[str, Any]:
    """Lloyd's k-means from ``nstart`` random starts; the solution with the smallest total within SS.

    Args:
        x: Data, one row per point.
        centers: Number of clusters.
        iter_max: Most iterations per start.
        nstart: Number of random starts (initial centers: distinct rows of ``x``).
        rng: Generator for the starts; default ``rxspark.rng()`` (inside an rx_exec task).

    Returns:
        Like R's kmeans object: ``centers``, ``cluster`` (labels), ``size``,
        ``withinss``, ``tot_withinss``, ``iter``, ``converged``.
    """
    rng = rxspark.rng() if rng is None else rng
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    x_sq = np.einsum("ij,ij->i", x, x)
    rows = np.arange(n)
    best: dict[str, Any] | None = None
    for _ in range(nstart):
        c = x[rng.choice(n, size=centers, replace=False)].copy()
        labels = None
        converged = False
        iterations = 0
        for iterations in range(1, iter_max + 1):  # noqa: B007 - the count is reported
            distances = x_sq[:, None] - 2.0 * (x @ c.T) + np.einsum("ij,ij->i", c, c)[None, :]
            new_labels = distances.argmin(axis=1)
            if labels is not None and np.array_equal(new_labels, labels):
                converged = True
                break
            labels = new_labels
            onehot = np.zeros((n, centers))
            onehot[rows, labels] = 1.0
            size = onehot.sum(axis=0)
            occupied = size > 0
            c[occupied] = (onehot.T @ x)[occupied] / size[occupied, None]  # an empty cluster keeps its center
        assert labels is not None
        withinss = np.bincount(labels, weights=((x - c[labels]) ** 2).sum(axis=1), minlength=centers)
        total = float(withinss.sum())
        if best is None or total < best["tot_withinss"]:
            best = {
                "centers": c,
                "cluster": labels,
                "size": np.bincount(labels, minlength=centers),
                "withinss": withinss,
                "tot_withinss": total,
                "iter": iterations,
                "converged": converged,
            }
    assert best is not None
    return best


def find_kmeans_best(results: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """The guide's findKmeansBest: the result with the smallest total within SS (first on ties)."""
    best = int(np.argmin([r["tot_withinss"] for r in results]))
    return best, results[best]


def make_data(rows: int, cols: int, seed: int | None) -> np.ndarray:
    """``matrix(rnorm(rows * cols), nrow = rows)``."""
    return np.random.default_rng(seed).standard_normal((rows, cols))


def plot(result: dict[str, Any], path: str) -> str:
    """Total within SS of each task's best solution, the overall best, and the sequential run."""
    # A bare Figure draws off-screen without touching pyplot's backend, so a notebook's
    # inline plots keep working after an example ran in it.
    from matplotlib.figure import Figure

    ss = np.asarray(result["task_tot_withinss"])
    fig = Figure(figsize=(7, 4), dpi=110)
    ax = fig.subplots()
    colours = ["tab:orange" if i == result["best_task"] else "tab:blue" for i in range(len(ss))]
    ax.bar(np.arange(1, len(ss) + 1), ss, color=colours)
    if result.get("sequential"):
        ax.axhline(result["sequential"]["tot_withinss"], color="0.2", ls="--", lw=1,
                   label=f"sequential, nstart={result['sequential']['nstart']}")
        ax.legend(loc="upper right", fontsize=8)
    spread = max(ss.max() - ss.min(), 1.0)
    low = min(ss.min(), result["sequential"]["tot_withinss"]) if result.get("sequential") else ss.min()
    ax.set_ylim(low - spread * 0.3, ss.max() + spread * 0.5)
    ax.set_xticks(np.arange(1, len(ss) + 1, 1 if len(ss) <= 25 else 5))
    ax.set_xlabel("task (best of its nstart starts)")
    ax.set_ylabel("total within-cluster SS")
    ax.set_title(f"k-means, {result['tasks']} tasks x nstart {result['nstart']}: best is task {result['best_task'] + 1}")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's size options (shared with nonblocking.py)."""
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--centers", type=int, default=10)
    parser.add_argument("--iter-max", type=int, default=35)
    parser.add_argument("--tasks", type=int, default=20, help="tasks (numTimes in the guide)")
    parser.add_argument("--nstart", type=int, default=20, help="random starts per task")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    add_arguments(parser)
    parser.add_argument("--chunk-size", type=int, default=None, help="tasks per chunk (default: spread over the workers)")
    parser.add_argument("--seed", type=int, default=None, help="seeds the data and rng_seed: reruns give identical results")
    parser.add_argument("--no-sequential", dest="sequential", action="store_false", help="skip the sequential comparison")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG to write ('none': no picture)")
    args = parser.parse_args(argv)

    x = make_data(args.rows, args.cols, args.seed)
    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        started = time.perf_counter()
        results = rx_exec(kmeans, x, centers=args.centers, iter_max=args.iter_max, nstart=args.nstart,
                          times_to_run=args.tasks, task_chunk_size=args.chunk_size,
                          rng_seed=args.seed, rng_scope="task")
        elapsed = time.perf_counter() - started
    best_task, best = find_kmeans_best(results)
    task_ss = [r["tot_withinss"] for r in results]
    print(f"{args.tasks} tasks x nstart {args.nstart} on {args.rows} x {args.cols} data, {args.centers} centers: "
          f"{elapsed:.2f} s on {type(context).__name__}")
    print(f"tasks' best total within SS: min {min(task_ss):.2f}, max {max(task_ss):.2f}; "
          f"best: task {best_task + 1}, {best['iter']} iterations, cluster sizes {best['size'].tolist()}")
    result: dict[str, Any] = {
        "best": best,
        "best_task": best_task,
        "task_tot_withinss": task_ss,
        "results": results,
        "tasks": args.tasks,
        "nstart": args.nstart,
        "elapsed": elapsed,
        "sequential": None,
        "output": None,
    }
    if args.sequential:
        total = args.tasks * args.nstart
        started = time.perf_counter()
        one = kmeans(x, args.centers, args.iter_max, nstart=total, rng=np.random.default_rng(args.seed))
        seq_elapsed = time.perf_counter() - started
        result["sequential"] = {"nstart": total, "tot_withinss": one["tot_withinss"], "elapsed": seq_elapsed}
        print(f"sequential kmeans(nstart={total}): {seq_elapsed:.2f} s, best total within SS {one['tot_withinss']:.2f} "
              f"(parallel {best['tot_withinss']:.2f}, {seq_elapsed / elapsed:.1f}x the time)")
    if args.output and args.output.lower() != "none":
        result["output"] = plot(result, args.output)
        print(f"plot: {result['output']}")
    return result


if __name__ == "__main__":
    main()
