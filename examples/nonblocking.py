"""The birthday and k-means studies as non-blocking jobs (the guide's "Work with results from non-blocking jobs").

With a non-waiting compute context (``wait=False``) ``rx_exec`` returns an
``RxJob`` at once. Both studies are submitted, their status is polled with
``rx_get_job_status`` (by job id, as another session would), the results are
fetched with ``rx_get_job_results``, and the best k-means solution is picked
on the driver. The same calls, blocking and with the jobs' seeds, give the
same results.

    python examples/nonblocking.py                       # embedded Spark (local[*])
    python examples/nonblocking.py --seed 777
    python examples/nonblocking.py --master none         # no Spark: RxLocalSeq(wait=False), a background thread
    ./spark-submit.sh examples/nonblocking.py --seed 777

Uses birthday.py and kmeans.py from this directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

# One BLAS thread per process, as in kmeans.py (must precede importing NumPy).
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import cloudpickle  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import birthday  # noqa: E402
import kmeans  # noqa: E402

from rxspark import (  # noqa: E402
    RxLocalSeq,
    RxSpark,
    rx_elem_arg,
    rx_exec,
    rx_get_job_results,
    rx_get_job_status,
)

# Workers (on a cluster: other machines) do not have birthday.py and kmeans.py:
# ship their functions by value, as functions of the main script are.
cloudpickle.register_pickle_by_value(birthday)
cloudpickle.register_pickle_by_value(kmeans)

DONE = ("finished", "failed", "canceled", "undetermined", "missing")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--ntests", type=int, default=2000, help="birthday: simulated parties per party size")
    parser.add_argument("--max-size", type=int, default=100, help="birthday: party sizes 2..max-size")
    parser.add_argument("--chunk-size", type=int, default=20, help="birthday: party sizes per chunk")
    kmeans.add_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="rng_seed of both jobs (default: 'auto', recorded on the jobs)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between status checks")
    parser.add_argument("--no-compare", dest="compare", action="store_false", help="skip the blocking rerun")
    args = parser.parse_args(argv)

    seed: int | str = "auto" if args.seed is None else args.seed
    sizes = list(range(2, args.max_size + 1))
    x = kmeans.make_data(args.rows, args.cols, args.seed)
    birthday_call = dict(ntests=args.ntests, task_chunk_size=args.chunk_size)
    kmeans_call = dict(centers=args.centers, iter_max=args.iter_max, nstart=args.nstart, times_to_run=args.tasks, rng_scope="task")

    context = RxLocalSeq(wait=False) if args.master == "none" else RxSpark(master=args.master, wait=False).connect()
    with context:
        started = time.perf_counter()
        jobs = {
            "birthday": rx_exec(birthday.pbirthday, rx_elem_arg(sizes), rng_seed=seed, **birthday_call),
            "kmeans": rx_exec(kmeans.kmeans, x, rng_seed=seed, **kmeans_call),
        }
        for name, job in jobs.items():
            print(f"submitted {name:<8} job {job.job_id} ({job.n_tasks} tasks, rng_seed={job.rng_seed})")

        history: list[dict[str, str]] = []
        shown = None
        while True:
            statuses = {name: rx_get_job_status(job.job_id) for name, job in jobs.items()}
            progress = {name: job.progress() for name, job in jobs.items()}
            if not history or statuses != history[-1]:
                history.append(statuses)
            if (statuses, progress) != shown:
                shown = (statuses, progress)
                line = "  ".join(f"{name}: {status} ({progress[name][0]}/{progress[name][1]} tasks)"
                                 for name, status in statuses.items())
                print(f"{time.perf_counter() - started:6.1f} s  {line}")
            if all(status in DONE for status in statuses.values()):
                break
            time.sleep(args.poll)

        probabilities = rx_get_job_results(jobs["birthday"].job_id)
        clusterings = rx_get_job_results(jobs["kmeans"].job_id)
        elapsed = time.perf_counter() - started
        best_task, best = kmeans.find_kmeans_best(clusterings)
        print(f"both jobs done in {elapsed:.2f} s on {type(context).__name__}")
        shown_sizes = [n for n in (23, 50) if n in sizes]
        print("birthday: P(shared birthday) " + ", ".join(
            f"{n} people {probabilities[sizes.index(n)]:.4f} (exact {birthday.exact_pbirthday(n):.4f})" for n in shown_sizes))
        print(f"kmeans: best of {len(clusterings)} tasks is task {best_task + 1}, total within SS {best['tot_withinss']:.2f}")

        result: dict[str, Any] = {
            "job_ids": {name: job.job_id for name, job in jobs.items()},
            "seeds": {name: job.rng_seed for name, job in jobs.items()},
            "status_history": history,
            "statuses": history[-1],
            "birthday": probabilities,
            "kmeans_best": best,
            "kmeans_best_task": best_task,
            "elapsed": elapsed,
            "blocking_equal": None,
        }
        if args.compare:
            # The same calls, waiting, with the seeds the jobs used.
            blocking_probabilities = rx_exec(birthday.pbirthday, rx_elem_arg(sizes), rng_seed=jobs["birthday"].rng_seed,
                                             wait=True, **birthday_call)
            blocking_clusterings = rx_exec(kmeans.kmeans, x, rng_seed=jobs["kmeans"].rng_seed, wait=True, **kmeans_call)
            _, blocking_best = kmeans.find_kmeans_best(blocking_clusterings)
            equal = blocking_probabilities == probabilities and all(
                np.array_equal(best[key], blocking_best[key]) for key in ("centers", "cluster", "withinss")
            )
            result["blocking_equal"] = equal
            print(f"blocking rerun with the same seeds gives the same results: {equal}")
    return result


if __name__ == "__main__":
    main()
