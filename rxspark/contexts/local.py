"""Local compute contexts: sequential in this process, and a local process pool."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from ..options import cores_to_use, get_option
from ..worker import ChunkCanceled, FilePayload, InlinePayload, LocalPayload, PayloadRef, forget, run_chunk
from .base import ComputeContext, check_positive_int
from .executor import ExecutorContext

if TYPE_CHECKING:
    from ..jobs import RxJob


class RxLocalSeq(ComputeContext):
    """Run every task sequentially in this process (the default context).

    Args:
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False);
            a non-waiting job runs in a background thread.
        console_output, auto_cleanup, packages_to_load, share_dir: See :class:`ComputeContext`.
    """

    name = "RxLocalSeq"

    def _run_chunks(self, job: RxJob) -> None:
        ref = LocalPayload(job.job_id, job.plan.payload)
        try:
            for chunk in job.plan.chunks:
                if job.should_stop():
                    return
                try:
                    result = run_chunk(ref, chunk, serialize_results=False, stop=job.stop_event)
                except ChunkCanceled:
                    return
                job.deliver(result)
        finally:
            forget(ref.key)


# Payloads larger than this are written once to a private file instead of
# travelling with every chunk submitted to a local process pool.
SPILL_BYTES = 1 << 20


class RxLocalParallel(ExecutorContext):
    """Run chunks in a pool of local worker processes.

    The pool is started on first use, reused across jobs, and stopped by
    ``close()``. A worker process that dies is replaced and its chunk run again
    (up to ``rx_options()["max_chunk_attempts"]`` times); user exceptions are
    never retried. Canceling a job stops its running chunks by restarting the pool.

    Args:
        num_workers: Number of processes; None uses ``rx_options()["num_cores_to_use"]``.
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        **kwargs: ``console_output``, ``auto_cleanup``, ``packages_to_load``, ``share_dir``.
    """

    name = "RxLocalParallel"

    def __init__(self, num_workers: int | None = None, wait: bool = True, **kwargs: Any) -> None:
        check_positive_int("RxLocalParallel", "num_workers", num_workers)
        super().__init__(wait=wait, **kwargs)
        self.num_workers = num_workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def parallelism(self) -> int:
        return self.num_workers or cores_to_use()

    def _executor(self) -> Executor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.parallelism(), mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _payload_ref(self, job: RxJob) -> PayloadRef:
        blob = job.plan.payload_blob
        if len(blob) <= SPILL_BYTES:
            return InlinePayload(job.job_id, blob)
        path = os.path.join(self._private_dir(), f"{job.job_id}.payload")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(blob)
        return FilePayload(job.job_id, path)

    def _release_payload(self, ref: PayloadRef) -> None:
        if isinstance(ref, FilePayload):
            try:
                os.unlink(ref.path)
            except FileNotFoundError:
                pass

    def _local_processes(self) -> bool:
        return True

    def _max_attempts(self) -> int:
        return get_option("max_chunk_attempts")

    def _is_worker_loss(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def _recover(self, broken: Executor) -> None:
        with self._pool_lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False)

    def _stop_running(self) -> None:
        """Stop running chunks: terminate the pool's processes; a new pool starts on next use.

        Chunks of other jobs on the pool fail with ``BrokenProcessPool`` and
        are run again (worker loss), so they are delayed, not lost.
        """
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public way to stop a running call; its worker
        # processes are the only handle (CPython 3.14 adds terminate_workers()).
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False)

    def close(self) -> None:
        """Stop the pool: at once if jobs are still running on it, else after the workers exit."""
        with self._jobs_lock:
            busy = bool(self._jobs)
        if busy:
            self._stop_running()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        super().close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "num_workers": self.num_workers}

    def __repr__(self) -> str:
        return f"RxLocalParallel(num_workers={self.num_workers}, wait={self.wait})"
