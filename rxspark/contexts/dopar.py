"""RxForeachDoPar: chunks on any caller's ``concurrent.futures.Executor``, through the pool run loop.

The executor is the caller's (threads, local processes, Dask, mpi4py ...):
:class:`ExecutorPool` uses it as it is, never shuts it down or replaces it,
and turns what goes wrong in it into rxspark errors that say what to do.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import _reaper
from ..errors import RxArgumentTypeError, RxError, RxJobError, RxWorkerLostError
from ..worker import ChunkResult, InlinePayload, LocalPayload, run_chunk
from . import registry
from .base import JobSink, check_positive_int
from .pool import ChunkPool, ExecutorContext, FileStopFlag, PrivateDir, Shipment

if TYPE_CHECKING:
    from ..plan import Chunk


def executor_failure(exc: BaseException, chunk: Chunk, job_id: str, executor: Any) -> BaseException:
    """An error of the executor itself (not of the user's function, which run_chunk catches) as an RxError."""
    if isinstance(exc, RxError):
        return exc
    where = f"chunk {chunk.index} (tasks {chunk.start}..{chunk.stop - 1}) of job {job_id}"
    kind = type(executor).__name__
    if isinstance(exc, BrokenExecutor):
        return RxWorkerLostError(
            f"{where}: a worker of the {kind} died and the executor cannot run anything any more ({exc}). "
            "rxspark does not own this executor, so it cannot replace it: create a new one (or use RxLocalParallel, "
            "which replaces dead workers and retries their chunks)" + _unguarded_script_hint(executor)
        )
    return RxJobError(f"{where}: the {kind} could not run it: {type(exc).__name__}: {exc}")


def _unguarded_script_hint(executor: Any) -> str:
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


def _run_in_local_process(*args: Any) -> ChunkResult:
    """``run_chunk`` in a worker process of a caller's local process pool, its reaper installed first.

    The reaper (rxspark/_reaper.py) bounds the worker's exit, so the caller's
    own ``shutdown(wait=True)`` does not wait on what rxspark's tasks left in it
    (a nested pool, a non-daemon thread), and ends the worker if the driver dies.
    """
    _reaper.install()
    return run_chunk(*args)


class ExecutorPool(ChunkPool):
    """A caller's executor, used as it is: rxspark never shuts it down or replaces it.

    Threads (``ThreadPoolExecutor``) share this process: the payload is not
    serialized and a stopped job's running chunks see its ``stop_event``
    between tasks. Process pools of this machine (``ProcessPoolExecutor``,
    loky) get a :class:`FileStopFlag` instead of cancelled futures, and their
    workers a reaper (:func:`_run_in_local_process`). Elsewhere (Dask, mpi4py)
    only queued chunks can be stopped, by cancelling their futures. A worker
    the executor lost fails the job: rxspark cannot repair an executor it does
    not own. :meth:`close` never waits on the executor.
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.in_process = isinstance(executor, ThreadPoolExecutor)
        self.local_processes = not self.in_process and (
            isinstance(executor, ProcessPoolExecutor) or type(executor).__module__.startswith("loky")
        )
        self._private = PrivateDir()

    def ship(self, job: JobSink) -> Shipment:
        if self.in_process:
            return Shipment(job.job_id, LocalPayload(job.job_id, job.plan.payload), job.stop_event)
        stop = FileStopFlag(self._private.join(f"{job.job_id}.stop")) if self.local_processes else None
        return Shipment(job.job_id, InlinePayload(job.job_id, job.plan.payload_blob), stop)

    def submit(self, shipment: Shipment, chunk: Chunk) -> Future[ChunkResult]:
        run = _run_in_local_process if self.local_processes else run_chunk
        try:
            return self.executor.submit(run, shipment.ref, chunk, not self.in_process, None, shipment.stop)
        except Exception as exc:  # a shut-down or broken executor
            raise executor_failure(exc, chunk, shipment.job_id, self.executor) from exc

    def lost(self, shipment: Shipment, chunk: Chunk, future: Future[ChunkResult], exc: BaseException) -> bool:
        raise executor_failure(exc, chunk, shipment.job_id, self.executor) from exc

    def stop(self, shipment: Shipment, futures: list[Future[ChunkResult]]) -> None:
        if isinstance(shipment.stop, FileStopFlag):
            shipment.stop.set()  # and no future.cancel() (see FileStopFlag)
            return
        for future in futures:
            future.cancel()

    def close(self, now: bool) -> None:
        self._private.remove()


class RxForeachDoPar(ExecutorContext):
    """Run chunks on any ``concurrent.futures.Executor``.

    Works with ``ThreadPoolExecutor`` (tasks run in this process),
    ``ProcessPoolExecutor``, loky's executor, Dask's ``client.get_executor()``,
    ``mpi4py.futures`` and the like. The executor belongs to the caller:
    rxspark never shuts it down, and ``close()`` does not wait on it. In the
    workers of a local process pool (``ProcessPoolExecutor``, loky) that ran
    rxspark's chunks, whatever the tasks left behind (a nested pool, a
    non-daemon thread) gets 2 s once the worker exits (the caller's
    ``shutdown``); then the worker's process tree is killed, so that shutdown
    does not hang on it. Those workers also end when this driver process dies.

    Args:
        executor: The executor to run chunks on.
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        num_workers: Parallelism to assume (default chunk count); read from the
            executor when it says (``_max_workers``), else the number of cores.
        **kwargs: ``console_output``, ``auto_cleanup``, ``packages_to_load``, ``share_dir``,
            ``progress`` (a bar per job: None, the default, shows it only when interactive).
    """

    name = "RxForeachDoPar"

    can_detach = False  # the caller's executor lives in the caller's process

    def __init__(self, executor: Executor, wait: bool = True, num_workers: int | None = None, **kwargs: Any) -> None:
        if not isinstance(executor, Executor) and not callable(getattr(executor, "submit", None)):
            raise RxArgumentTypeError(
                "RxForeachDoPar needs a concurrent.futures.Executor (ThreadPoolExecutor, ProcessPoolExecutor, "
                f"loky, dask client.get_executor() ...), got {type(executor).__name__}"
            )
        check_positive_int("RxForeachDoPar", "num_workers", num_workers)
        super().__init__(ExecutorPool(executor), wait=wait, **kwargs)
        self.executor = executor
        self.num_workers = num_workers

    def parallelism(self) -> int:
        if self.num_workers:
            return self.num_workers
        workers = getattr(self.executor, "_max_workers", None)
        return workers if isinstance(workers, int) and workers > 0 else (os.cpu_count() or 1)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "executor": type(self.executor).__name__}

    def __repr__(self) -> str:
        return f"RxForeachDoPar({type(self.executor).__name__}, wait={self.wait})"


registry.register(
    "dopar",
    "RxForeachDoPar",
    needs="needs an executor; pass RxForeachDoPar(executor) (e.g. RxForeachDoPar(concurrent.futures.ThreadPoolExecutor(4)))",
)
