"""Local compute contexts: sequential in this process, and a local process pool."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool  # loky's pool errors derive from it
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

    def run_chunks(self, job: RxJob) -> None:
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
# Seconds to wait for the exit codes of a broken pool's processes (the pool is killing them).
_EXIT_CODE_WAIT = 5.0
# loky restarts a worker whose memory grew by more than this (when psutil is installed); rxspark's
# workers keep payloads and rx_share data cached on purpose, so only an explicit setting applies.
_LEAK_LIMIT_VARIABLE = "LOKY_MAX_MEMORY_LEAK_SIZE"


def _loky() -> Any:
    try:
        import loky
        import loky.process_executor
    except ImportError as exc:  # pragma: no cover - loky is a dependency
        raise ImportError("RxLocalParallel needs loky: pip install 'loky>=3.4'") from exc
    return loky


class _RecordingContext:
    """loky's own start method ("loky"), remembering every worker process it starts.

    "loky" starts each worker as a fresh ``sys.executable`` (fork+exec, so it
    is safe in a multithreaded driver) that never re-runs the user's
    ``__main__``: scripts without an ``if __name__ == "__main__":`` guard work.
    When a worker dies, loky's ``TerminatedWorkerError`` gives the exit codes
    but not the pids; the processes kept here give both (``pid``,
    ``exitcode``), so no private table of the executor is read.
    """

    def __init__(self, max_workers: int) -> None:
        self._base = _loky().backend.get_context("loky")
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._started: list[Any] = []

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the multiprocessing context API
        process = self._base.Process(*args, **kwargs)
        with self._lock:
            if len(self._started) >= 2 * self._max_workers:  # workers loky replaced after a clean exit
                self._started = [p for p in self._started if p.exitcode != 0]
            self._started.append(process)
        return process

    def processes(self) -> dict[int, Any]:
        with self._lock:
            return {p.pid: p for p in self._started if p.pid is not None}

    def __getattr__(self, name: str) -> Any:  # queues, locks, get_start_method ...: loky's own
        if name == "_base":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._base, name)


def _shutdown_pools(pools: set[Any]) -> None:
    """Finalizer of a garbage-collected RxLocalParallel (or one still open at exit): stop its pools."""
    for pool in list(pools):
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False)
    pools.clear()


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

    The pool (loky's process executor, one per context) is started on first
    use, reused across jobs, and stopped by ``close()`` or when the context is
    garbage-collected. Its workers are fresh interpreters (``sys.executable``)
    that never re-run the user's script, so scripts without an
    ``if __name__ == "__main__":`` guard work. A worker process that dies is replaced and its chunk run again
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
        self._pool: Executor | None = None
        self._pool_lock = threading.Lock()
        # Pools this context terminated on purpose (cancel, close): nobody's chunk crashed.
        self._stopped: weakref.WeakSet[Executor] = weakref.WeakSet()
        # Each pool's start method, which keeps its worker processes (and so their pids and exit codes).
        self._contexts: weakref.WeakKeyDictionary[Executor, _RecordingContext] = weakref.WeakKeyDictionary()
        # Pools not shut down yet; the finalizer holds this set, not the context, so a context
        # nobody references is collected and takes its pool with it.
        self._live_pools: set[Executor] = set()
        self._pools_finalizer = weakref.finalize(self, _shutdown_pools, self._live_pools)

    def parallelism(self) -> int:
        return self.num_workers or cores_to_use()

    def _executor(self) -> Executor:
        with self._pool_lock:
            if self._pool is None:
                workers = self.parallelism()
                context = _RecordingContext(workers)
                env = {} if _LEAK_LIMIT_VARIABLE in os.environ else {_LEAK_LIMIT_VARIABLE: "1e18"}
                # Not loky.get_reusable_executor(): that is one pool per process, and two contexts
                # (or a cancel in one) must not stop each other's pools.
                self._pool = _loky().ProcessPoolExecutor(max_workers=workers, context=context, env=env)
                self._contexts[self._pool] = context
                self._live_pools.add(self._pool)
            return self._pool

    def _shutdown_pool(self, pool: Executor, wait: bool, kill_workers: bool = False) -> None:
        self._live_pools.discard(pool)
        pool.shutdown(wait=wait, kill_workers=kill_workers)  # type: ignore[call-arg]  # loky's executor

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
        # The pool's processes: the one that died on its own has its own exit code, the others
        # get SIGKILL from the broken pool (loky kills them all once one dies).
        context = self._contexts.get(broken)
        processes = list(context.processes().items()) if context is not None else []
        if not processes:
            return None
        deadline = time.monotonic() + _EXIT_CODE_WAIT
        while any(p.exitcode is None for _, p in processes) and time.monotonic() < deadline:
            time.sleep(0.01)
        died = {pid for pid, p in processes if p.exitcode not in (None, -signal.SIGKILL)}
        markers = [m for m in _running_markers(self._private_dir()) if m[0] in died]
        if not markers:
            return None  # it died outside any chunk (or cannot be told): charge every chunk it hit
        return {chunk for _, job_id, chunk in markers if job_id == job.job_id}

    def _max_attempts(self) -> int:
        return get_option("max_chunk_attempts")

    def _is_worker_loss(self, exc: BaseException) -> bool:
        # A dead worker (TerminatedWorkerError, a BrokenProcessPool), or a pool this context stopped
        # (cancel, close) under a chunk or just before its submit (ShutdownExecutorError).
        return isinstance(exc, (BrokenProcessPool, _loky().process_executor.ShutdownExecutorError))

    def _recover(self, broken: Executor) -> None:
        with self._pool_lock:
            if self._pool is broken:
                self._pool = None
        self._shutdown_pool(broken, wait=False)

    def _stop_running(self) -> None:
        """Stop running chunks: kill the pool's processes; a new pool starts on next use.

        Chunks of other jobs on the pool fail with loky's ``ShutdownExecutorError``
        and are run again (worker loss), so they are delayed, not lost.
        """
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        self._stopped.add(pool)
        self._shutdown_pool(pool, wait=False, kill_workers=True)

    def close(self) -> None:
        """Stop the pool: at once if jobs are still running on it, else after the workers exit."""
        with self._jobs_lock:
            busy = bool(self._jobs)
        if busy:
            self._stop_running()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            self._shutdown_pool(pool, wait=True)
        super().close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "num_workers": self.num_workers}

    def __repr__(self) -> str:
        return f"RxLocalParallel(num_workers={self.num_workers}, wait={self.wait})"
