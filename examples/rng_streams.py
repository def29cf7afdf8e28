"""Parallel random number streams (the guide's "Parallel Random Number Generation").

The guide's independence check: 5 tasks each draw 500 uniforms from their own
stream; the 5 x 5 correlation matrix of the draws should show no correlation
(the largest absolute off-diagonal value is typically below 0.1 and never near
0.3). It is run with the default kind (PCG64) and with Intel's MT2203 (6024
independent substreams) when mkl-random is installed, and repeated
``--repeats`` times to show the spread. Then ``rng_seed="auto"`` and
``rng_kind="auto"``: a fresh seed is drawn and recorded on the job
(``job.rng_seed``), and replaying it gives the same numbers.

    python examples/rng_streams.py                       # embedded Spark (local[*])
    python examples/rng_streams.py --seed 14             # reproducible
    python examples/rng_streams.py --master none         # no Spark: RxLocalSeq
    ./spark-submit.sh examples/rng_streams.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import numpy as np

import rxspark
from rxspark import RxLocalSeq, RxSpark, rx_exec


def runif(n: int) -> np.ndarray:
    """R's ``runif(n)`` on the task's stream."""
    return np.asarray(rxspark.rng().uniform(size=n))


def max_abs_correlation(draws: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Largest absolute off-diagonal correlation between the streams, and the matrix."""
    corr = np.corrcoef(np.vstack(draws))
    off = corr.copy()
    np.fill_diagonal(off, 0.0)
    return float(np.abs(off).max()), corr


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--streams", type=int, default=5, help="tasks per check (timesToRun)")
    parser.add_argument("--draws", type=int, default=500, help="uniforms per task")
    parser.add_argument("--repeats", type=int, default=20, help="independent checks per kind")
    parser.add_argument("--chunk-size", type=int, default=None, help="tasks per chunk (streams are per task either way)")
    parser.add_argument("--seed", type=int, default=None, help="rng_seed of the checks (default: a fresh one, printed)")
    args = parser.parse_args(argv)

    kinds = ["PCG64"]
    if importlib.util.find_spec("mkl_random") is not None:
        kinds.append("MT2203")
    else:
        print("mkl-random is not installed: skipping MT2203 (pip install 'rxspark[mkl]')")
    n_tasks = args.streams * args.repeats
    result: dict[str, Any] = {"kinds": {}, "auto": {}}
    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        for kind in kinds:
            started = time.perf_counter()
            # rng_scope="task": every task has its own stream, whatever the chunking.
            job = rx_exec(runif, args.draws, times_to_run=n_tasks, task_chunk_size=args.chunk_size,
                          rng_kind=kind, rng_seed=args.seed, rng_scope="task", wait=False)
            draws = job.result()
            elapsed = time.perf_counter() - started
            checks = [max_abs_correlation(draws[r * args.streams:(r + 1) * args.streams]) for r in range(args.repeats)]
            largest = [c[0] for c in checks]
            result["kinds"][kind] = {"seed": job.rng_seed, "max_corr": largest, "corr": checks[0][1]}
            print(f"{kind:>7} (rng_seed={job.rng_seed}): {args.repeats} checks of {args.streams} streams x {args.draws} "
                  f"uniforms in {elapsed:.2f} s")
            print(f"        largest |correlation|: first check {largest[0]:.3f}, median {np.median(largest):.3f}, "
                  f"max {max(largest):.3f}; any > 0.3: {max(largest) > 0.3}; above 0.1 in {sum(v > 0.1 for v in largest)} "
                  f"of {args.repeats} checks")
        print("correlation matrix of the first PCG64 check:")
        print(np.array2string(result["kinds"]["PCG64"]["corr"], precision=3, suppress_small=True))

        # "auto": a fresh seed, recorded on the job so the run can be replayed.
        for argument in ("rng_seed", "rng_kind"):
            job = rx_exec(runif, args.draws, times_to_run=args.streams, wait=False, **{argument: "auto"})
            first = job.result()
            replay = rx_exec(runif, args.draws, times_to_run=args.streams, rng_seed=job.rng_seed)
            same = all(np.array_equal(a, b) for a, b in zip(first, replay))
            result["auto"][argument] = {"seed": job.rng_seed, "replayed": same}
            print(f'{argument}="auto": drew rng_seed={job.rng_seed} (kind {job.plan.rng.kind}); '
                  f"replaying it gives the same numbers: {same}")
    return result


if __name__ == "__main__":
    main()
