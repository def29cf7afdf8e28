"""Local compute contexts: sequential in this process, and a local process pool."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from ..options import cores_to_use, get_option
from ..worker import ChunkCanceled, FilePayload, InlinePayload, LocalPayload, PayloadRef, forget, run_chunk
from .base import ComputeContext, check_positive_int
from .executor import ExecutorContext

if TYPE_CHECKING:
    from ..jobs import RxJob
    from ..plan import Chunk


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
# Seconds to wait for the exit codes of a broken pool's processes (the pool is terminating them).
_EXIT_CODE_WAIT = 5.0


def _run_tracked(private_dir: str, ref: PayloadRef, chunk: Chunk, stop: Any) -> Any:
    """``run_chunk`` in a pool process, leaving ``<job>.<chunk>.running`` (this pid) while it runs.

    When the pool breaks, the markers left by processes that died on their own
    tell which chunk was running in the process that crashed.
    """
    marker: str | None = os.path.join(private_dir, f"{ref.key}.{chunk.index}.running")
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:  # only the attribution of crashes is lost
        marker = None
    try:
        return run_chunk(ref, chunk, True, None, stop)
    finally:
        if marker is not None:
            with contextlib.suppress(OSError):
                os.unlink(marker)


def _running_markers(private_dir: str) -> list[tuple[int, str, int]]:
    """(pid, job id, chunk index) of every ``.running`` marker in ``private_dir``."""
    found = []
    with contextlib.suppress(OSError):
        for name in os.listdir(private_dir):
            parts = name.rsplit(".", 2)
            if len(parts) != 3 or parts[2] != "running" or not parts[1].isdigit():
                continue
            try:
                with open(os.path.join(private_dir, name)) as f:
                    found.append((int(f.read()), parts[0], int(parts[1])))
            except (OSError, ValueError):  # a marker being written or removed
                continue
    return found


class RxLocalParallel(ExecutorContext):
    """Run chunks in a pool of local worker processes.

    The pool is started on first use, reused across jobs, and stopped by
    ``close()``. A worker process that dies is replaced and its chunk run again
    (up to ``rx_options()["max_chunk_attempts"]`` times); only the chunk whose
    process died is charged an attempt, not the others the broken pool took
    down with it. User exceptions are never retried. Canceling a job stops its running chunks by restarting the pool.

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
        # Pools this context terminated on purpose (cancel, close): nobody's chunk crashed.
        self._stopped: weakref.WeakSet[Executor] = weakref.WeakSet()
        # Each pool's pid -> process table, kept past the pool's shutdown (which drops it).
        self._process_tables: weakref.WeakKeyDictionary[Executor, dict[int, Any]] = weakref.WeakKeyDictionary()

    def parallelism(self) -> int:
        return self.num_workers or cores_to_use()

    def _executor(self) -> Executor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.parallelism(), mp_context=multiprocessing.get_context("spawn")
                )
                table = getattr(self._pool, "_processes", None)
                if isinstance(table, dict):
                    self._process_tables[self._pool] = table
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

    def _task(self, ref: PayloadRef, chunk: Chunk, stop: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _run_tracked, (self._private_dir(), ref, chunk, stop)

    def _crashed_chunks(self, job: RxJob, broken: Executor) -> set[int] | None:
        if broken in self._stopped:
            return set()
        # The pool's processes (private, but the only record of their exit codes): the one that
        # died on its own has its own exit code, the others get SIGTERM from the broken pool.
        processes = list((getattr(broken, "_processes", None) or self._process_tables.get(broken) or {}).items())
        if not processes:
            return None
        deadline = time.monotonic() + _EXIT_CODE_WAIT
        while any(p.exitcode is None for _, p in processes) and time.monotonic() < deadline:
            time.sleep(0.01)
        died = {pid for pid, p in processes if p.exitcode is not None and p.exitcode != -signal.SIGTERM}
        markers = [m for m in _running_markers(self._private_dir()) if m[0] in died]
        if not markers:
            return None  # it died outside any chunk (or cannot be told): charge every chunk it hit
        return {chunk for _, job_id, chunk in markers if job_id == job.job_id}

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
        self._stopped.add(pool)
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
