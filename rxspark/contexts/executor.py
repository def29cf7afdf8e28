"""Contexts that run chunks on a ``concurrent.futures.Executor``.

:class:`ExecutorContext` holds the loop shared by the local process pool and
:class:`RxForeachDoPar`: submit every chunk, deliver results as they complete,
resubmit chunks whose worker died (when the executor can recover), and cancel
what is left when the job stops.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RxArgumentTypeError, RxError, RxJobError, RxWorkerLostError
from ..worker import ChunkCanceled, InlinePayload, LocalPayload, PayloadRef, forget, run_chunk
from .base import ComputeContext, check_positive_int

if TYPE_CHECKING:
    from ..jobs import RxJob
    from ..plan import Chunk


@dataclass
class FileStopFlag:
    """A stop signal that worker processes on this machine can see: the file exists.

    Process pools must not have their futures cancelled: in CPython 3.11 a
    pool that breaks while a cancelled future is pending loses its manager
    thread and every other future hangs. Chunks of a stopped job check this
    flag instead (at start, then at most every 50 ms between tasks) and end early.
    """

    path: str
    _seen: bool = False
    _checked: float = 0.0

    def is_set(self) -> bool:
        if not self._seen:
            now = time.monotonic()
            if now - self._checked >= 0.05:
                self._checked = now
                self._seen = os.path.exists(self.path)
        return self._seen

    def set(self) -> None:
        with open(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600), "w"):
            pass

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _remove_when_done(flag: FileStopFlag, futures: list[Future[Any]]) -> None:
    """Delete the flag once the last of ``futures`` is done (they read it until then)."""
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_: Future[Any]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            flag.remove()

    for future in futures:
        future.add_done_callback(one_done)


class ExecutorContext(ComputeContext):
    """Shared run loop of the executor-based contexts."""

    in_process = False
    # Seconds a canceled job's running chunks get to notice their stop flag
    # before the pool's processes are terminated.
    cancel_grace_seconds = 2.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jobs: dict[str, dict[Future[Any], tuple[Chunk, Executor]]] = {}
        self._stops: dict[str, Any] = {}
        self._jobs_lock = threading.Lock()
        self._private: str | None = None
        self._private_lock = threading.Lock()
        self._private_cleanup: weakref.finalize | None = None

    def _private_dir(self) -> str:
        """A directory only this user can read, removed by ``close()``, or when this context is
        garbage-collected or the interpreter exits, whichever comes first."""
        private = self._private
        if private is None:
            with self._private_lock:
                if self._private is None:
                    path = tempfile.mkdtemp(prefix="rxspark-")  # mode 0700
                    # Holds the path, not the context: an unclosed context is still collected.
                    self._private_cleanup = weakref.finalize(self, shutil.rmtree, path, ignore_errors=True)
                    self._private = path
                private = self._private
        return private

    def _local_processes(self) -> bool:
        """Whether chunks run in processes of this machine (stop flags work, futures must not be cancelled)."""
        return False

    def _stop_flag(self, job: RxJob) -> Any:
        if self.in_process:
            return job.stop_event
        if self._local_processes():
            return FileStopFlag(os.path.join(self._private_dir(), f"{job.job_id}.stop"))
        return None

    # Hooks for subclasses.
    def _executor(self) -> Executor:
        raise NotImplementedError

    def _payload_ref(self, job: RxJob) -> PayloadRef:
        if self.in_process:
            return LocalPayload(job.job_id, job.plan.payload)
        return InlinePayload(job.job_id, job.plan.payload_blob)

    def _release_payload(self, ref: PayloadRef) -> None:
        if isinstance(ref, LocalPayload):
            forget(ref.key)

    def _max_attempts(self) -> int:
        return 1

    def _is_worker_loss(self, exc: BaseException) -> bool:
        return False

    def _recover(self, broken: Executor) -> None:
        """Make the next ``_executor()`` usable after ``broken`` lost a worker."""

    def _task(self, ref: PayloadRef, chunk: Chunk, stop: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The function (and its arguments) the executor runs for one chunk."""
        return run_chunk, (ref, chunk, not self.in_process, None, stop)

    def _crashed_chunks(self, job: RxJob, broken: Executor) -> set[int] | None:
        """Which of ``job``'s chunks had their own worker process die when ``broken`` lost a worker.

        Only those are charged an attempt; chunks that were queued, or whose
        process the broken pool stopped, run again for free. None when it
        cannot be told: then every chunk the loss hit is charged.
        """
        return None

    def _stop_running(self) -> None:
        """Stop chunks already running (if the executor allows it)."""

    # The run loop.
    def run_chunks(self, job: RxJob) -> None:
        ref = self._payload_ref(job)
        pending: dict[Future[Any], tuple[Chunk, Executor]] = {}
        crashes: dict[int, int] = {}  # chunk -> attempts that died with their worker
        blame: dict[Executor, set[int] | None] = {}  # broken executor -> its crashed chunks of this job
        finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()  # futures in the order they complete
        stop = self._stop_flag(job)

        def submit(chunk: Chunk) -> None:
            executor = self._executor()
            function, args = self._task(ref, chunk, stop)
            try:
                future = executor.submit(function, *args)
            except Exception as exc:  # a pool that lost a worker while idle, or a shut-down executor
                if not self._is_worker_loss(exc):
                    raise _executor_failure(exc, chunk, job, executor) from exc
                self._recover(executor)
                executor = self._executor()
                future = executor.submit(function, *args)
            pending[future] = (chunk, executor)
            future.add_done_callback(finished.put)

        with self._jobs_lock:
            self._jobs[job.job_id] = pending
            self._stops[job.job_id] = stop
        try:
            for chunk in job.plan.chunks:
                if job.should_stop():
                    return
                submit(chunk)
            while pending and not job.should_stop():
                # Futures one at a time as they complete: wait() on every pending future would cost
                # O(pending) per completion (O(chunks^2) per job) in this, the driver's busiest thread.
                future = finished.get()
                if future not in pending:
                    continue
                chunk, executor = pending.pop(future)
                if future.cancelled():
                    continue
                exc = future.exception()
                if exc is None:
                    result = future.result()
                    result.load_values()  # values the driver cannot load fail their tasks, not the job
                    job.deliver(result)
                elif isinstance(exc, ChunkCanceled) or job.should_stop():
                    continue
                elif self._is_worker_loss(exc):
                    if executor not in blame:
                        blame[executor] = self._crashed_chunks(job, executor)
                    crashed = blame[executor]
                    if crashed is None or chunk.index in crashed:
                        crashes[chunk.index] = crashes.get(chunk.index, 0) + 1
                    self._recover(executor)  # before raising too: the next job needs a working pool
                    if crashes.get(chunk.index, 0) >= self._max_attempts():
                        raise RxWorkerLostError(
                            f"chunk {chunk.index} (tasks {chunk.start}..{chunk.stop - 1}) of job {job.job_id}: "
                            f"the worker process died on each of {crashes[chunk.index]} attempts ({exc})"
                        ) from exc
                    submit(chunk)
                else:
                    raise _executor_failure(exc, chunk, job, executor) from exc
        finally:
            with self._jobs_lock:
                self._jobs.pop(job.job_id, None)
                self._stops.pop(job.job_id, None)
            leftover = list(pending)
            if isinstance(stop, FileStopFlag):
                if leftover:
                    stop.set()
                    _remove_when_done(stop, leftover)
                    if not job.cancelled():  # a failed job: its stuck chunks are stopped like a canceled job's
                        threading.Thread(target=self._stop_if_stuck, args=(leftover,), daemon=True).start()
            else:
                for future in leftover:
                    future.cancel()
            self._release_payload(ref)

    def cancel(self, job: RxJob) -> None:
        with self._jobs_lock:
            futures = list(self._jobs.get(job.job_id, {}))
            stop = self._stops.get(job.job_id)
        if isinstance(stop, FileStopFlag):
            stop.set()
            if futures:
                threading.Thread(target=self._stop_if_stuck, args=(futures,), daemon=True).start()
        else:
            for future in futures:
                future.cancel()  # running in-process chunks stop between tasks (job.stop_event)

    def _stop_if_stuck(self, futures: list[Future[Any]]) -> None:
        """A task that ignores the stop flag (say, an endless loop) gets its process stopped."""
        _, not_done = wait(futures, timeout=self.cancel_grace_seconds)
        if not_done:
            self._stop_running()

    def close(self) -> None:
        with self._private_lock:
            cleanup, self._private_cleanup, self._private = self._private_cleanup, None, None
        if cleanup is not None:
            cleanup()  # removes the directory now (a finalizer runs at most once)
        super().close()


def _executor_failure(exc: BaseException, chunk: Chunk, job: RxJob, executor: Executor) -> BaseException:
    """An error of the executor itself (not of the user's function, which run_chunk catches) as an RxError."""
    if isinstance(exc, RxError):
        return exc
    where = f"chunk {chunk.index} (tasks {chunk.start}..{chunk.stop - 1}) of job {job.job_id}"
    kind = type(executor).__name__
    if isinstance(exc, BrokenExecutor):
        return RxWorkerLostError(
            f"{where}: a worker of the {kind} died and the executor cannot run anything any more ({exc}). "
            "rxspark does not own this executor, so it cannot replace it: create a new one (or use RxLocalParallel, "
            "which replaces dead workers and retries their chunks)" + _unguarded_script_hint(executor)
        )
    return RxJobError(f"{where}: the {kind} could not run it: {type(exc).__name__}: {exc}")


def _unguarded_script_hint(executor: Executor) -> str:
    """Why a caller's process pool may lose its workers at once in a plain script, and the fix.

    A ``ProcessPoolExecutor`` that starts workers by "spawn" or "forkserver"
    re-runs the ``__main__`` script in each of them; without an
    ``if __name__ == "__main__":`` guard, the script's own ``rx_exec`` runs
    there too, fails (a process may not start processes while it is being
    bootstrapped), and the worker dies. rxspark cannot change how a caller's
    executor starts its workers, so it says so.
    """
    if not isinstance(executor, ProcessPoolExecutor):
        return ""
    # There is no public accessor for a ProcessPoolExecutor's start method; the private one is read
    # only to word this message (when it is missing, the pool may well spawn: say it anyway).
    context = getattr(executor, "_mp_context", None)
    method = context.get_start_method() if context is not None and hasattr(context, "get_start_method") else None
    main = sys.modules.get("__main__")
    if method == "fork" or getattr(main, "__file__", None) is None:  # fork does not re-run a script; nor is there one
        return ""
    how = f'"{method}"' if method else '"spawn" or "forkserver"'
    return (
        f'. If the script runs rx_exec without an `if __name__ == "__main__":` guard, that is the cause: this executor '
        f"starts its workers by {how}, so each worker re-runs the script and dies in its own rx_exec. Put the script's "
        'code under `if __name__ == "__main__":`, or use RxLocalParallel, whose workers never re-run the script'
    )


class RxForeachDoPar(ExecutorContext):
    """Run chunks on any ``concurrent.futures.Executor``.

    Works with ``ThreadPoolExecutor`` (tasks run in this process),
    ``ProcessPoolExecutor``, loky's executor, Dask's ``client.get_executor()``,
    ``mpi4py.futures`` and the like. The executor belongs to the caller: it is
    never shut down by rxspark.

    Args:
        executor: The executor to run chunks on.
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        num_workers: Parallelism to assume (default chunk count); read from the
            executor when it says (``_max_workers``), else the number of cores.
        **kwargs: ``console_output``, ``auto_cleanup``, ``packages_to_load``, ``share_dir``.
    """

    name = "RxForeachDoPar"

    def __init__(self, executor: Executor, wait: bool = True, num_workers: int | None = None, **kwargs: Any) -> None:
        if not isinstance(executor, Executor) and not callable(getattr(executor, "submit", None)):
            raise RxArgumentTypeError(
                "RxForeachDoPar needs a concurrent.futures.Executor (ThreadPoolExecutor, ProcessPoolExecutor, "
                f"loky, dask client.get_executor() ...), got {type(executor).__name__}"
            )
        check_positive_int("RxForeachDoPar", "num_workers", num_workers)
        super().__init__(wait=wait, **kwargs)
        self.executor = executor
        self.num_workers = num_workers
        # Threads share this process: no serialization, and a cancel stops running chunks between tasks.
        self.in_process = isinstance(executor, ThreadPoolExecutor)

    def _local_processes(self) -> bool:
        return isinstance(self.executor, ProcessPoolExecutor) or type(self.executor).__module__.startswith("loky")

    def parallelism(self) -> int:
        if self.num_workers:
            return self.num_workers
        workers = getattr(self.executor, "_max_workers", None)
        return workers if isinstance(workers, int) and workers > 0 else (os.cpu_count() or 1)

    def _executor(self) -> Executor:
        return self.executor

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "executor": type(self.executor).__name__}

    def __repr__(self) -> str:
        return f"RxForeachDoPar({type(self.executor).__name__}, wait={self.wait})"
