"""Contexts that run chunks on a pool of workers: one run loop, and the interface of the pool it drives.

:class:`ExecutorContext` runs a job's chunks on a :class:`ChunkPool`: it
submits every chunk, delivers results as they complete, runs a chunk again
when its worker was lost (charging an attempt only when the chunk's own worker
died), and stops what is left when the job stops. The pool decides how a
chunk travels, how it is stopped and what a lost worker means:

* ``ExecutorPool`` (dopar.py, behind ``RxForeachDoPar``): any caller's
  ``concurrent.futures.Executor``, used as it is, never shut down or replaced;
* ``LokyPool`` (local.py, behind ``RxLocalParallel``): rxspark's own process
  pool, which replaces dead workers, tells which chunk crashed, and stops a
  canceled job's stuck chunks by killing its processes.
"""

from __future__ import annotations

import abc
import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RxWorkerLostError
from ..worker import ChunkCanceled, ChunkResult, FilePayload, LocalPayload, PayloadRef, forget
from .base import ComputeContext, JobSink, deliver

if TYPE_CHECKING:
    from ..plan import Chunk


# ---------------------------------------------------------------- what pools share


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

    def remove_when_done(self, futures: list[Future[Any]]) -> None:
        """Delete the flag once the last of ``futures`` is done (they read it until then)."""
        if not futures:
            self.remove()
            return
        remaining = [len(futures)]
        lock = threading.Lock()

        def one_done(_: Future[Any]) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.remove()

        for future in futures:
            future.add_done_callback(one_done)


class PrivateDir:
    """A directory only this user can read (stop flags, payload files), made on first use.

    Removed by :meth:`remove`, or when its owner is garbage-collected, or at
    interpreter exit, whichever comes first.
    """

    def __init__(self) -> None:
        self._path: str | None = None
        self._lock = threading.Lock()
        self._cleanup: weakref.finalize | None = None

    def path(self) -> str:
        path = self._path
        if path is None:
            with self._lock:
                if self._path is None:
                    made = tempfile.mkdtemp(prefix="rxspark-")  # mode 0700
                    # Holds the path, not this object: an unclosed context is still collected.
                    self._cleanup = weakref.finalize(self, shutil.rmtree, made, ignore_errors=True)
                    self._path = made
                path = self._path
        return path

    def join(self, name: str) -> str:
        return os.path.join(self.path(), name)

    def remove(self) -> None:
        with self._lock:
            cleanup, self._cleanup, self._path = self._cleanup, None, None
        if cleanup is not None:
            cleanup()  # removes the directory now (a finalizer runs at most once)


@dataclass(frozen=True)
class Shipment:
    """What goes with every chunk of one job: its payload, and the flag its chunks watch.

    Attributes:
        job_id: The job's id.
        ref: How workers get the payload (``run_chunk``'s ``ref``).
        stop: ``run_chunk``'s ``stop``: the job's ``stop_event`` (threads of this process), a
            :class:`FileStopFlag` (processes of this machine), or None (workers cannot be told).
    """

    job_id: str
    ref: PayloadRef
    stop: Any


class ChunkPool(abc.ABC):
    """Where an :class:`ExecutorContext` runs chunks.

    The run loop calls, for each job: :meth:`ship` once; :meth:`submit` for
    each chunk (and again for a chunk whose worker was lost); :meth:`lost` for
    each chunk whose future failed; :meth:`stop` at most once, when the job
    stops with chunks in flight; :meth:`release` at the end. The context calls
    :meth:`close`. Pools implement the first four; calls may come from several
    jobs' threads at once.
    """

    @abc.abstractmethod
    def ship(self, job: JobSink) -> Shipment:
        """Prepare ``job``'s payload and stop flag for its chunks."""

    @abc.abstractmethod
    def submit(self, shipment: Shipment, chunk: Chunk) -> Future[ChunkResult]:
        """Start one chunk: a future of its :class:`~rxspark.worker.ChunkResult`.

        Raises:
            RxError: The pool cannot take it (the job fails with this error).
        """

    @abc.abstractmethod
    def lost(self, shipment: Shipment, chunk: Chunk, future: Future[ChunkResult], exc: BaseException) -> bool:
        """``chunk``'s future failed with ``exc``: was it a lost worker, and whose?

        User exceptions never get here (``run_chunk`` returns them as data).
        When this returns, the pool takes chunks again.

        Returns:
            True when the chunk's own worker process died (the chunk is charged
            an attempt), False when the chunk only went down with another's
            crash or a stop (it runs again, free).

        Raises:
            RxError: ``exc`` is not a lost worker this pool recovers from (the job fails with it).
        """

    @abc.abstractmethod
    def stop(self, shipment: Shipment, futures: list[Future[ChunkResult]]) -> None:
        """Stop a job's chunks in flight, queued and running (called once, from any thread)."""

    def max_attempts(self) -> int:
        """How many times a chunk may lose its own worker before the job fails."""
        return 1

    def doomed(self, future: Future[ChunkResult]) -> bool:
        """Whether ``future`` is still running on workers this pool gave up (it is bound to fail).

        The run loop holds a lost chunk back until no chunk of its job is doomed, so that
        the chunks one loss hit run again in their order. Pools that never replace workers keep
        the default (False).
        """
        return False

    def release(self, shipment: Shipment, leftover: list[Future[ChunkResult]]) -> None:
        """The job's run is over: drop its payload, and its stop flag once ``leftover`` are done."""
        ref = shipment.ref
        if isinstance(ref, LocalPayload):
            forget(ref.key)
        elif isinstance(ref, FilePayload):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ref.path)
        if isinstance(shipment.stop, FileStopFlag):
            shipment.stop.remove_when_done(leftover)

    def close(self, now: bool) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Release what the pool started; ``now``: jobs are still running on it (stop them)."""


# ---------------------------------------------------------------- the run loop


class _Run:
    """One job's chunks in flight, shared by the run loop and ``cancel()`` (which may come from any thread)."""

    def __init__(self, pool: ChunkPool, shipment: Shipment) -> None:
        self.pool = pool
        self.shipment = shipment
        # In the order they complete; None: a wake-up (see wake()).
        self.finished: queue.SimpleQueue[Future[ChunkResult] | None] = queue.SimpleQueue()
        self._pending: dict[Future[ChunkResult], Chunk] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, chunk: Chunk) -> bool:
        """Start ``chunk``; False when the run was stopped (then nothing starts any more)."""
        with self._lock:  # a stop snapshots what is pending: nothing may start behind its back
            if self._stopped:
                return False
            future = self.pool.submit(self.shipment, chunk)
            self._pending[future] = chunk
        future.add_done_callback(self.finished.put)
        return True

    def take(self, future: Future[ChunkResult]) -> Chunk | None:
        """The chunk of a finished future (None if it was taken already)."""
        with self._lock:
            return self._pending.pop(future, None)

    def in_flight(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def doomed(self) -> bool:
        """Whether a chunk in flight is on workers the pool gave up (it will fail and run again)."""
        with self._lock:
            pending = list(self._pending)
        return any(self.pool.doomed(future) for future in pending)

    def stop(self) -> None:
        """Stop the chunks in flight (once)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            futures = list(self._pending)
        self.pool.stop(self.shipment, futures)

    def wake(self) -> None:
        """Wake the run loop (it sees None among the finished futures)."""
        self.finished.put(None)  # type: ignore[arg-type]

    def end(self) -> list[Future[ChunkResult]]:
        """The run loop is done: stop what is still in flight (unless stopped already) and return it."""
        with self._lock:
            stopped, self._stopped = self._stopped, True
            leftover = list(self._pending)
        if leftover and not stopped:
            self.pool.stop(self.shipment, leftover)
        return leftover


class ExecutorContext(ComputeContext):
    """A context whose chunks run on a :class:`ChunkPool` (the run loop of RxForeachDoPar and RxLocalParallel).

    Args:
        pool: Where the chunks run.
        **kwargs: ``wait``, ``console_output``, ``auto_cleanup``, ``packages_to_load``, ``share_dir``.
    """

    accepts_feeds = True  # chunks are submitted one at a time anyway

    def __init__(self, pool: ChunkPool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = pool
        self._runs: dict[str, _Run] = {}
        self._runs_lock = threading.Lock()

    def run_chunks(self, job: JobSink) -> None:
        pool = self._pool
        shipment = pool.ship(job)
        run = _Run(pool, shipment)
        crashes: dict[int, int] = {}  # chunk -> attempts that died with their own worker
        chunks = job.plan.chunks
        feed = job.plan.feed  # an open plan: chunks keep coming until the feed closes
        with self._runs_lock:
            self._runs[job.job_id] = run
        try:
            if feed is not None:
                feed.watch(run.wake)
            sent = 0
            # Chunks whose worker was lost wait here until every other chunk of theirs that came back
            # meanwhile was seen, and none is left on the workers the loss doomed; then they run
            # again in chunk order (the order they failed in is the pool's: a late chunk must not
            # take the workers before an early one, which Executor.map's caller waits for first).
            held: list[Chunk] = []
            while True:
                closed = feed is None or feed.closed  # read first: every chunk added before the close is seen below
                # An open plan's chunks are read through its feed (a snapshot taken under the feed's lock).
                for chunk in (chunks[sent:] if feed is None else feed.since(sent)):
                    if job.should_stop() or not run.submit(chunk):
                        return
                    sent += 1
                if job.should_stop() or (closed and not held and not run.in_flight()):
                    return
                if held and run.finished.empty() and not run.doomed():
                    held.sort(key=lambda c: c.index)
                    for again in held:
                        if not run.submit(again):
                            return
                    held.clear()
                    continue
                # Futures one at a time as they complete: wait() on every pending future would cost
                # O(pending) per completion (O(chunks^2) per job) in this, the driver's busiest thread.
                future = run.finished.get()
                if future is None:
                    continue  # woken: chunks were added, the feed closed, or the job stopped
                chunk = run.take(future)
                if chunk is None or future.cancelled():
                    continue
                exc = future.exception()
                if exc is None:
                    result = future.result()
                    deliver(job, result)  # values the driver cannot load fail their tasks, not the job
                    continue
                if isinstance(exc, ChunkCanceled) or job.should_stop():
                    continue
                if pool.lost(shipment, chunk, future, exc):
                    crashes[chunk.index] = crashes.get(chunk.index, 0) + 1
                if crashes.get(chunk.index, 0) >= pool.max_attempts():
                    raise RxWorkerLostError(
                        f"chunk {chunk.index} (tasks {chunk.start}..{chunk.stop - 1}) of job {job.job_id}: "
                        f"the worker process died on each of {crashes[chunk.index]} attempts ({exc})"
                    ) from exc
                held.append(chunk)
        finally:
            if feed is not None:
                feed.watch(None)
            with self._runs_lock:
                self._runs.pop(job.job_id, None)
            pool.release(shipment, run.end())

    def cancel(self, job: JobSink) -> None:
        with self._runs_lock:
            run = self._runs.get(job.job_id)
        if run is not None:
            run.stop()  # in-process chunks already running stop between tasks (job.stop_event)
            run.wake()  # an open plan's run loop may be waiting for chunks, not results

    def close(self) -> None:
        """Release the pool: at once if jobs are still running on it, else once its workers are done."""
        with self._runs_lock:
            busy = bool(self._runs)
        self._pool.close(now=busy)
        super().close()
