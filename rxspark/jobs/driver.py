"""The driver of a detached job: ``python -m rxspark.jobs.driver --share-dir STORE JOB_ID``.

It loads the stored job (signature and rxspark version checked), builds its
context from the stored recipe (a Spark application of its own for
``RxSpark``), takes the job's lease and runs it as a non-waiting job of this
process: its record, checkpoints and results go to the store, where any
process collects them. A cancel request (``rx_cancel_job``, ``rxspark job
cancel``) stops it, its workers or Spark application with it. A chunk already
checkpointed (a driver started again on a job half done) does not run again.

Started by :func:`rxspark.jobs.detach.submit_detached`, which waits for nothing;
also the primary resource of ``spark-submit --deploy-mode cluster``
(:func:`rxspark.jobs.detach.cluster_command`), where it runs as a script: its
imports are absolute.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any


def build_context(recipe: dict[str, Any] | None) -> Any:
    """The compute context a stored recipe describes (``ComputeContext.recipe``)."""
    if recipe is None:
        from rxspark.contexts.local import RxLocalSeq

        return RxLocalSeq()
    module_name, _, name = recipe["class"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    return cls(**recipe.get("kwargs", {}))


def run(share_dir: str, job_id: str) -> int:
    """Run stored job ``job_id`` to its end; return the process's exit code (0: the job ended, whatever its outcome)."""
    from rxspark.jobs import store as _store
    from rxspark.jobs.durable import Checkpoints
    from rxspark.jobs.resume import resumed_job

    store = _store.store_for(share_dir)
    frozen, _ = Checkpoints(store, job_id).load()
    context = build_context(frozen.context)
    try:
        job = resumed_job(store, job_id, context)
        job.start_background()
        status = job.wait_done()
        print(f"rxspark driver: job {job_id} {status}", flush=True)
    finally:
        context.close()
        _upload_log(store, job_id)
    return 0


def _upload_log(store: Any, job_id: str) -> None:
    """A store elsewhere (S3, HDFS) gets the driver's log when it ends (a local one has it all along)."""
    path = os.environ.get("RXSPARK_DRIVER_LOG")
    if store.local or not path or not os.path.exists(path):
        return
    from rxspark.jobs.durable import LOG

    try:
        sys.stdout.flush()
        with open(path, "rb") as f:
            store.write_bytes(job_id, LOG, f.read())
        os.unlink(path)
    except Exception as exc:  # noqa: BLE001 - the job's outcome is stored already
        print(f"rxspark driver: could not store the log {path}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rxspark.jobs.driver", description="Run a stored rxspark job.")
    parser.add_argument("--share-dir", required=True, help="the job store (a directory or a URI)")
    parser.add_argument("--wait-go", action="store_true", help="wait for a line on stdin first (the local submitter's signal)")
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    if args.wait_go:
        sys.stdin.readline()  # the submitter says "go" once the record names this process (EOF if it died)
    return run(args.share_dir, args.job_id)


if __name__ == "__main__":
    sys.exit(main())
