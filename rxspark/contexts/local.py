"""Local compute contexts: sequential in this process, and rxspark's own local process pool.

``RxLocalSeq`` runs every chunk here, in order. ``RxLocalParallel`` is the
shared run loop (pool.py) on a :class:`LokyPool`: loky worker processes
that never re-run the user's script, a replacement pool when a worker dies,
crash attribution from per-chunk marker files, a stop by kill for chunks
that ignore their stop flag, and a close that never waits on what tasks left
in the workers (with rxspark/_reaper.py in each worker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from concurrent.futures import Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool  # loky's pool errors derive from it
from multiprocessing import connection
from typing import TYPE_CHECKING, Any

from .. import _reaper
from ..options import cores_to_use, get_option
from ..worker import ChunkCanceled, ChunkResult, FilePayload, InlinePayload, LocalPayload, PayloadRef, forget, run_chunk
from . import registry
from .base import INLINE_PAYLOAD_BYTES, ComputeContext, JobSink, check_positive_int, deliver
from .dopar import executor_failure
from .pool import ChunkPool, ExecutorContext, FileStopFlag, PrivateDir, Shipment

if TYPE_CHECKING:
    from ..plan import Chunk


class RxLocalSeq(ComputeContext):
    """Run every task sequentially in this process (the default context).

    Args:
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False);
            a non-waiting job runs in a background thread.
        progress: A progress bar per job: False by default here (the default context runs
            every small call; ``True`` shows one, ``None`` only when interactive).
        console_output, auto_cleanup, packages_to_load, share_dir: See :class:`ComputeContext`.
    """

    name = "RxLocalSeq"

    def __init__(self, *, progress: bool | None = False, **kwargs: Any) -> None:
        super().__init__(progress=progress, **kwargs)

    def run_chunks(self, job: JobSink) -> None:
        ref = LocalPayload(job.job_id, job.plan.payload)
        try:
            for chunk in job.plan.chunks:
                if job.should_stop():
                    return
                try:
                    result = run_chunk(ref, chunk, serialize_results=False, stop=job.stop_event)
                except ChunkCanceled:
                    return
                deliver(job, result)
        finally:
            forget(ref.key)


# Payloads larger than this are written once to a private file instead of
# travelling with every chunk submitted to a local process pool (the contract's one limit).
SPILL_BYTES = INLINE_PAYLOAD_BYTES
# Seconds to wait for the exit codes of a broken pool's processes (the pool is killing them).
_EXIT_CODE_WAIT = 5.0
# loky restarts a worker whose memory grew by more than this (when psutil is installed); rxspark's
# workers keep payloads and rx_share data cached on purpose, so only an explicit setting applies.
_LEAK_LIMIT_VARIABLE = "LOKY_MAX_MEMORY_LEAK_SIZE"


def _loky() -> Any:
    try:
        import loky
        import loky.backend.utils
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


class LokyPool(ChunkPool):
    """rxspark's own pool of local worker processes (loky's process executor), one per RxLocalParallel.

    Started on first use and reused across jobs. A worker process that dies
    breaks the loky executor; the pool then starts a new one and tells which
    chunk's process died on its own (its exit code is its own, and its
    ``.running`` marker names the chunk), so only that chunk is charged an
    attempt. Chunks of a stopped job get a :class:`FileStopFlag`; those still
    running ``cancel_grace_seconds`` later get their processes killed (a new
    executor starts on next use, and other jobs' chunks on the killed one run
    again, free). Each worker runs rxspark's reaper (rxspark/_reaper.py): its
    exit is bounded, and it ends when this driver process dies.

    Args:
        num_workers: Number of processes; None: ``rx_options()["num_cores_to_use"]`` at first use.
    """

    # Seconds a stopped job's running chunks get to notice their stop flag before the processes are killed.
    cancel_grace_seconds = 2.0
    # Seconds close() waits for the workers to exit before it kills their process trees: a little
    # more than their own reaper gives them, which kills them first unless something blocks it.
    close_grace_seconds = _reaper.GRACE_SECONDS + 1.0

    def __init__(self, num_workers: int | None) -> None:
        self.num_workers = num_workers
        self._private = PrivateDir()
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        # Executors this pool killed on purpose (stop, close): nobody's chunk crashed.
        self._killed: weakref.WeakSet[Executor] = weakref.WeakSet()
        # Each executor's start method, which keeps its worker processes (and so their pids and exit codes).
        self._contexts: weakref.WeakKeyDictionary[Executor, _RecordingContext] = weakref.WeakKeyDictionary()
        # Which executor each chunk's future runs on, and what each broken executor's crash was.
        self._where: weakref.WeakKeyDictionary[Future[Any], Executor] = weakref.WeakKeyDictionary()
        self._blame: weakref.WeakKeyDictionary[Executor, set[tuple[str, int]] | None] = weakref.WeakKeyDictionary()
        # Executors not shut down yet; the finalizer holds this set, not the pool, so a context
        # nobody references is collected and takes its processes with it.
        self._live: set[Executor] = set()
        self._finalizer = weakref.finalize(self, _shutdown_pools, self._live)

    def workers(self) -> int:
        return self.num_workers or cores_to_use()

    # ------------------------------------------------------------ the ChunkPool interface

    def ship(self, job: JobSink) -> Shipment:
        blob = job.plan.payload_blob
        stop = FileStopFlag(self._private.join(f"{job.job_id}.stop"))
        if len(blob) <= SPILL_BYTES:
            return Shipment(job.job_id, InlinePayload(job.job_id, blob), stop)
        path = self._private.join(f"{job.job_id}.payload")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(blob)
        return Shipment(job.job_id, FilePayload(job.job_id, path), stop)

    def submit(self, shipment: Shipment, chunk: Chunk) -> Future[ChunkResult]:
        args = (self._private.path(), shipment.ref, chunk, shipment.stop)
        executor = self._current()
        try:
            future = executor.submit(_run_tracked, *args)
        except Exception as exc:  # an executor that lost a worker while idle, or that a stop killed just now
            if not _is_worker_loss(exc):
                raise executor_failure(exc, chunk, shipment.job_id, executor) from exc
            self._recover(executor)
            executor = self._current()
            future = executor.submit(_run_tracked, *args)
        self._where[future] = executor
        return future

    def lost(self, shipment: Shipment, chunk: Chunk, future: Future[ChunkResult], exc: BaseException) -> bool:
        broken = self._where.get(future)
        if not _is_worker_loss(exc):
            raise executor_failure(exc, chunk, shipment.job_id, broken) from exc
        if broken is None:  # not one of this pool's futures (never happens): charge it
            return True
        crashed = self._crashed(broken)
        self._recover(broken)  # before the caller may raise too: the next job needs a working pool
        return crashed is None or (shipment.job_id, chunk.index) in crashed

    def stop(self, shipment: Shipment, futures: list[Future[ChunkResult]]) -> None:
        shipment.stop.set()
        if futures:
            threading.Thread(target=self._kill_if_stuck, args=(futures,), name="rxspark-stop", daemon=True).start()

    def max_attempts(self) -> int:
        return get_option("max_chunk_attempts")

    def doomed(self, future: Future[ChunkResult]) -> bool:
        if future.done():
            return False
        executor = self._where.get(future)
        with self._lock:
            return executor is not None and executor is not self._executor

    def close(self, now: bool) -> None:
        """Stop the processes: at once if jobs are still running on them, else once the workers exit.

        Never waits on what tasks left in the workers: each worker's exit is
        bounded by its own reaper (rxspark/_reaper.py), and a worker still
        alive ``close_grace_seconds`` later has its process tree killed here.
        """
        if now:
            self._kill()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            self._retire(executor)
        self._private.remove()

    # ------------------------------------------------------------ the loky executor

    def _current(self) -> Executor:
        with self._lock:
            if self._executor is None:
                workers = self.workers()
                context = _RecordingContext(workers)
                env = {} if _LEAK_LIMIT_VARIABLE in os.environ else {_LEAK_LIMIT_VARIABLE: "1e18"}
                # Not loky.get_reusable_executor(): that is one pool per process, and two contexts
                # (or a cancel in one) must not stop each other's pools.
                # The reaper bounds each worker's exit and ends it with this driver (rxspark/_reaper.py).
                self._executor = _loky().ProcessPoolExecutor(
                    max_workers=workers, context=context, env=env, initializer=_reaper.install, initargs=(os.getpid(),)
                )
                self._contexts[self._executor] = context
                self._live.add(self._executor)
            return self._executor

    def _shutdown(self, executor: Executor, wait: bool, kill_workers: bool = False) -> None:
        self._live.discard(executor)
        executor.shutdown(wait=wait, kill_workers=kill_workers)  # type: ignore[call-arg]  # loky's executor

    def _retire(self, executor: Executor) -> None:
        """Shut ``executor`` down; workers that have not exited ``close_grace_seconds`` later are killed.

        loky's ``shutdown(wait=True)`` would join them however long their exit
        takes, and ``kill_workers=True`` would not give them the time to exit cleanly.
        """
        self._shutdown(executor, wait=False)  # sends every worker its stop sentinel
        context = self._contexts.get(executor)
        # A process's sentinel becomes ready when it ends (read without reaping it: loky's thread joins them).
        running: dict[Any, Any] = {}
        for process in context.processes().values() if context is not None else []:
            with contextlib.suppress(ValueError):  # a process object closed already
                running[process.sentinel] = process
        deadline = time.monotonic() + self.close_grace_seconds
        while running and (left := deadline - time.monotonic()) > 0:
            for sentinel in connection.wait(list(running), timeout=left):
                del running[sentinel]
        for process in running.values():
            with contextlib.suppress(Exception):  # it may end meanwhile
                _loky().backend.utils.kill_process_tree(process)

    def _recover(self, broken: Executor) -> None:
        """The next chunk goes to a new executor; ``broken`` is shut down."""
        with self._lock:
            if self._executor is broken:
                self._executor = None
        self._shutdown(broken, wait=False)

    def _crashed(self, broken: Executor) -> set[tuple[str, int]] | None:
        """(job id, chunk) of the chunks whose own process died when ``broken`` lost a worker.

        Only those are charged an attempt; chunks that were queued, or whose
        process the broken executor stopped, run again for free. None when it
        cannot be told: then every chunk the loss hit is charged. Worked out
        once per broken executor, for every job that had chunks on it.
        """
        if broken in self._killed:
            return set()
        if broken in self._blame:
            return self._blame[broken]
        # The executor's processes: the one that died on its own has its own exit code, the others
        # get SIGKILL from the broken executor (loky kills them all once one dies).
        context = self._contexts.get(broken)
        processes = list(context.processes().items()) if context is not None else []
        crashed: set[tuple[str, int]] | None = None
        if processes:
            deadline = time.monotonic() + _EXIT_CODE_WAIT
            while any(p.exitcode is None for _, p in processes) and time.monotonic() < deadline:
                time.sleep(0.01)
            died = {pid for pid, p in processes if p.exitcode not in (None, -signal.SIGKILL)}
            markers = [m for m in _running_markers(self._private.path()) if m[0] in died]
            # No marker: it died outside any chunk (or cannot be told): every chunk it hit is charged.
            crashed = {(job_id, chunk) for _, job_id, chunk in markers} if markers else None
        self._blame[broken] = crashed
        return crashed

    def _kill_if_stuck(self, futures: list[Future[Any]]) -> None:
        """A task that ignores the stop flag (say, an endless loop) gets its process killed."""
        _, not_done = wait(futures, timeout=self.cancel_grace_seconds)
        if not_done:
            self._kill()

    def _kill(self) -> None:
        """Kill the current executor's processes; a new executor starts on next use.

        Chunks of other jobs on it fail with loky's ``ShutdownExecutorError``
        and are run again (worker loss), so they are delayed, not lost.
        """
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        self._killed.add(executor)
        self._shutdown(executor, wait=False, kill_workers=True)


def _is_worker_loss(exc: BaseException) -> bool:
    # A dead worker (TerminatedWorkerError, a BrokenProcessPool), or an executor this pool killed
    # (stop, close) under a chunk or just before its submit (ShutdownExecutorError).
    return isinstance(exc, (BrokenProcessPool, _loky().process_executor.ShutdownExecutorError))


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
    Neither ``close()`` nor the interpreter's exit waits on what tasks left in
    the workers (a nested process pool, an open ``multiprocessing.Pool``, a
    non-daemon thread) for more than about 2 s: then each worker's process
    tree is killed. The workers also end within a second of this driver
    process's death (killed, say).

    Args:
        num_workers: Number of processes; None uses ``rx_options()["num_cores_to_use"]``.
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        **kwargs: ``console_output``, ``auto_cleanup``, ``packages_to_load``, ``share_dir``,
            ``progress`` (a bar per job: None, the default, shows it only when interactive).
    """

    name = "RxLocalParallel"

    def __init__(self, num_workers: int | None = None, wait: bool = True, **kwargs: Any) -> None:
        check_positive_int("RxLocalParallel", "num_workers", num_workers)
        self._loky = LokyPool(num_workers)
        super().__init__(self._loky, wait=wait, **kwargs)

    @property
    def num_workers(self) -> int | None:
        return self._loky.num_workers

    def parallelism(self) -> int:
        return self._loky.workers()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "num_workers": self.num_workers}

    def _recipe_kwargs(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers}

    def __repr__(self) -> str:
        return f"RxLocalParallel(num_workers={self.num_workers}, wait={self.wait})"


registry.register("local", "RxLocalSeq", factory=RxLocalSeq)
registry.register("localpar", "RxLocalParallel", factory=RxLocalParallel)
