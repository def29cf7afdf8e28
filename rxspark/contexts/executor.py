"""Contexts that run chunks on a ``concurrent.futures.Executor``.

:class:`ExecutorContext` holds the loop shared by the local process pool and
:class:`RxForeachDoPar`: submit every chunk, deliver results as they complete,
resubmit chunks whose worker died (when the executor can recover), and cancel
what is left when the job stops.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ..errors import RxArgumentTypeError, RxWorkerLostError
from ..worker import ChunkCanceled, InlinePayload, LocalPayload, PayloadRef, forget, run_chunk
from .base import ComputeContext, check_positive_int

if TYPE_CHECKING:
    from ..jobs import RxJob
    from ..plan import Chunk


class ExecutorContext(ComputeContext):
    """Shared run loop of the executor-based contexts."""

    in_process = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jobs: dict[str, dict[Future[Any], Chunk]] = {}
        self._jobs_lock = threading.Lock()

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

    def _stop_running(self) -> None:
        """Stop chunks already running (if the executor allows it)."""

    # The run loop.
    def _run_chunks(self, job: RxJob) -> None:
        ref = self._payload_ref(job)
        pending: dict[Future[Any], tuple[Chunk, Executor]] = {}
        attempts: dict[int, int] = {}
        stop = job.stop_event if self.in_process else None

        def submit(chunk: Chunk) -> None:
            executor = self._executor()
            attempts[chunk.index] = attempts.get(chunk.index, 0) + 1
            future = executor.submit(run_chunk, ref, chunk, not self.in_process, None, stop)
            pending[future] = (chunk, executor)

        with self._jobs_lock:
            self._jobs[job.job_id] = pending  # type: ignore[assignment]
        try:
            for chunk in job.plan.chunks:
                if job.should_stop():
                    return
                submit(chunk)
            while pending and not job.should_stop():
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    chunk, executor = pending.pop(future)
                    if future.cancelled():
                        continue
                    exc = future.exception()
                    if exc is None:
                        job.deliver(future.result())
                    elif isinstance(exc, ChunkCanceled) or job.should_stop():
                        continue
                    elif self._is_worker_loss(exc) and attempts[chunk.index] < self._max_attempts():
                        self._recover(executor)
                        submit(chunk)
                    elif self._is_worker_loss(exc):
                        raise RxWorkerLostError(
                            f"chunk {chunk.index} (tasks {chunk.start}..{chunk.stop - 1}) of job {job.job_id}: "
                            f"the worker process died on each of {attempts[chunk.index]} attempts ({exc})"
                        ) from exc
                    else:
                        raise exc
        finally:
            with self._jobs_lock:
                self._jobs.pop(job.job_id, None)
            for future in pending:
                future.cancel()
            self._release_payload(ref)

    def _cancel(self, job: RxJob) -> None:
        with self._jobs_lock:
            futures = list(self._jobs.get(job.job_id, {}))
        running = [f for f in futures if not f.cancel() and not f.done()]
        if running and not self.in_process:
            self._stop_running()


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
