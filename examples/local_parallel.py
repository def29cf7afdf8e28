"""rx_exec on local processes and concurrent.futures executors, with reproducible random numbers.

The guide's "Use rxExec in the local compute context" and "Use rxExec with
foreach back ends": ``RxLocalParallel`` runs chunks in a pool of local
processes (as many as ``rx_options(num_cores_to_use=...)``), and
``RxForeachDoPar`` runs them on any ``concurrent.futures.Executor``.

With as many workers as tasks (``num_cores_to_use=5``, ``times_to_run=5``)
every task gets its own chunk and so its own random stream, and two runs with
``rng_seed=14`` give identical draws (``x1 == x2``). The same call on a
thread pool, a process pool and Spark (with the same chunk size) gives the
same numbers again.

    python examples/local_parallel.py                    # local contexts, then the embedded Spark
    python examples/local_parallel.py --master none      # local contexts only
    python examples/local_parallel.py --workers 3 --tasks 3
    ./spark-submit.sh examples/local_parallel.py
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np

import rxspark
from rxspark import RxForeachDoPar, RxLocalParallel, RxSpark, rx_exec, rx_options


def runif(n: int) -> np.ndarray:
    """R's ``runif(n)`` on the task's stream."""
    return np.asarray(rxspark.rng().uniform(size=n))


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None,
                        help="Spark master for the Spark comparison (default: the active session or local[*]); 'none' skips it")
    parser.add_argument("--workers", type=int, default=5, help="rx_options(num_cores_to_use=...) and executor sizes")
    parser.add_argument("--tasks", type=int, default=5, help="times_to_run")
    parser.add_argument("--draws", type=int, default=500, help="uniforms per task")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: tasks / workers, rounded up")
    parser.add_argument("--seed", type=int, default=14)
    default_kind = "MT2203" if importlib.util.find_spec("mkl_random") is not None else "PCG64"
    parser.add_argument("--rng-kind", default=default_kind, help=f"default here: {default_kind}")
    args = parser.parse_args(argv)

    call = dict(times_to_run=args.tasks, rng_kind=args.rng_kind, rng_seed=args.seed, task_chunk_size=args.chunk_size)
    chunk_size = args.chunk_size or math.ceil(args.tasks / args.workers)
    print(f"{args.tasks} tasks x {args.draws} uniforms, rng_kind={args.rng_kind}, rng_seed={args.seed}, "
          f"{args.workers} workers: chunks of {chunk_size} task(s)")
    times: dict[str, float] = {}
    matches: dict[str, bool] = {}
    previous = rx_options()["num_cores_to_use"]
    rx_options(num_cores_to_use=args.workers)
    try:
        with RxLocalParallel():  # num_workers=None: rx_options' num_cores_to_use
            started = time.perf_counter()
            x1 = rx_exec(runif, args.draws, **call)
            times["RxLocalParallel (1st run, starts the pool)"] = time.perf_counter() - started
            started = time.perf_counter()
            x2 = rx_exec(runif, args.draws, **call)
            times["RxLocalParallel (2nd run)"] = time.perf_counter() - started
        matches["RxLocalParallel x2"] = same(x1, x2)

        with ThreadPoolExecutor(args.workers) as threads:
            started = time.perf_counter()
            x = rx_exec(runif, args.draws, compute_context=RxForeachDoPar(threads), **call)
            times["RxForeachDoPar(ThreadPoolExecutor)"] = time.perf_counter() - started
            matches["RxForeachDoPar(ThreadPoolExecutor)"] = same(x1, x)

        # "spawn": forking a process that runs threads (or a JVM, under Spark) is unsafe.
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as processes:
            started = time.perf_counter()
            x = rx_exec(runif, args.draws, compute_context=RxForeachDoPar(processes), **call)
            times["RxForeachDoPar(ProcessPoolExecutor)"] = time.perf_counter() - started
            matches["RxForeachDoPar(ProcessPoolExecutor)"] = same(x1, x)
    finally:
        rx_options(num_cores_to_use=previous)

    if args.master != "none":
        with RxSpark(master=args.master).connect() as spark:
            started = time.perf_counter()
            # Spark's parallelism differs from the local pools': give the chunk size explicitly.
            x = rx_exec(runif, args.draws, compute_context=spark, **{**call, "task_chunk_size": chunk_size})
            times["RxSpark"] = time.perf_counter() - started
            matches["RxSpark"] = same(x1, x)

    for name, elapsed in times.items():
        print(f"  {name:<44} {elapsed:6.2f} s")
    print(f"x1 == x2 (RxLocalParallel, two runs): {matches['RxLocalParallel x2']}")
    for name, equal in matches.items():
        if name != "RxLocalParallel x2":
            print(f"{name} gives x1 again: {equal}")
    print(f"first draws of each task: {[round(float(v[0]), 4) for v in x1]}")
    return {"x1": x1, "x2": x2, "equal": matches["RxLocalParallel x2"], "matches": matches, "times": times}


if __name__ == "__main__":
    main()
