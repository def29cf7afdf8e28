"""A driver process for the durable-job tests: runs one durable job on the context it is told, prints its id.

Usage: python durable_driver.py SHARE_DIR CONTEXT N_TASKS CHUNK_SIZE SECONDS LOG_PATH [CONNECT_URL]

CONTEXT is one of ``localpar``, ``spark-local``, ``spark-cluster``, ``spark-connect``. The job
(``durable_task`` over ``range(N_TASKS)``, ``rng_seed=SEED``) is started with ``wait=False`` and
the process then waits for it: the tests kill it half way and resume the job elsewhere.
"""

from __future__ import annotations

import sys

import cloudpickle
import jobtasks

import rxspark
from rxspark import rx_elem_arg, rx_exec

cloudpickle.register_pickle_by_value(jobtasks)

SEED = 20261206


def context(name: str, share_dir: str, url: str | None) -> rxspark.ComputeContext:
    if name == "localpar":
        return rxspark.RxLocalParallel(2, share_dir=share_dir)
    if name == "spark-local":
        return rxspark.RxSpark(master="local[2]", share_dir=share_dir, progress=False)
    if name == "spark-cluster":
        return rxspark.RxSpark(master="local-cluster[2,1,1024]", share_dir=share_dir, progress=False)
    if name == "spark-connect":
        return rxspark.RxSpark(remote=url, share_dir=share_dir, progress=False)
    raise SystemExit(f"unknown context {name}")


def submit(cc: rxspark.ComputeContext, n: int, chunk_size: int, seconds: float, log_path: str, **options):
    return rx_exec(
        jobtasks.durable_task,
        rx_elem_arg(range(n)),
        log_path=log_path,
        seconds=seconds,
        task_chunk_size=chunk_size,
        rng_seed=SEED,
        compute_context=cc,
        **options,
    )


def main(share_dir: str, name: str, n: str, chunk_size: str, seconds: str, log_path: str, url: str | None = None) -> None:
    cc = context(name, share_dir, url)
    job = submit(cc, int(n), int(chunk_size), float(seconds), log_path, wait=False, durable=True)
    print(job.job_id, flush=True)
    job.result(timeout=600)
    print("finished", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
