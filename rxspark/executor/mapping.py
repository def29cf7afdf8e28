"""``RxExecutor.map`` as one job: results chunk by chunk, in order, with no Future per call.

A map whose calls all fit in ``max_workers`` runs as one job; its iterator
takes each delivered chunk's values in turn and raises the first exception
in its turn, as ``Executor.map`` does. Closing the iterator, or its timeout,
cancels the calls not run yet.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any

from .. import rng as _rng
from ..contexts.base import ComputeContext
from ..errors import RxTaskError
from ..worker import ChunkResult
from .calls import _exception, _State, calls_job, take_values
from .run import CallsRun


class _MapRun:
    """The calls of one ``map``: one job; each delivered chunk waits here until the iterator takes it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.cond = threading.Condition(threading.Lock())
        self.chunks: dict[int, tuple[int, list[Any], dict[int, RxTaskError], dict[int, bytes]]] = {}  # by first call
        self.job: CallsRun | None = None
        self.done = False  # the job ended (every chunk that will come has come)
        self.closed = False  # the iterator was closed: the calls not yet run are cancelled
        self.failure: BaseException | None = None

    def close(self) -> None:
        """Cancel what is left (the iterator was closed, or shutdown(cancel_futures=True, wait=False))."""
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.chunks.clear()
            job = None if self.done else self.job
            self.cond.notify_all()
        if job is not None:
            job.cancel()


def _map_iterator(run: _MapRun, n: int, end_time: float | None) -> Iterator[Any]:
    """Executor.map's iterator over a _MapRun: results in order, the first exception raised in turn."""
    try:
        position = 0
        while position < n:
            with run.cond:
                while position not in run.chunks and not run.done and not run.closed:
                    if end_time is None:
                        run.cond.wait()
                    else:
                        remaining = end_time - time.monotonic()
                        if remaining <= 0:
                            raise FuturesTimeoutError()
                        run.cond.wait(remaining)
                entry = run.chunks.pop(position, None)
                if entry is None:  # the job ended without this chunk
                    failure = run.failure
                    if failure is None:
                        raise CancelledError()
                    raise failure
            stop, values, errors, causes = entry
            del entry
            for local in range(stop - position):
                error = errors.get(position + local)
                if error is not None:
                    raise _exception(error, causes.get(position + local))
                value = values[local]
                values[local] = None  # the iterator keeps no result it gave
                yield value
                del value
            position = stop
    finally:
        run.close()


def _run_map(
    state: _State, context: ComputeContext, spec: _rng.RngSpec | None, run: _MapRun, fn: Callable[..., Any],
    columns: list[Any], n: int, base: int,
) -> None:
    job: CallsRun | None = None
    failure: BaseException | None = None
    listener: _MapListener | None = None
    try:
        try:
            job = calls_job(context, spec, fn, tuple(columns), n, range(base, base + n), calls_per_chunk=state.calls_per_chunk)
        except BaseException as exc:  # noqa: BLE001 - e.g. arguments that do not fit fn: the iterator raises it
            failure = exc
        del columns[:]
        if job is not None:
            with run.cond:
                run.job = job
                stop = run.closed
            if stop:
                job.cancel()
            listener = _MapListener(state, run, job, context.console_output)
            job.listener = listener
            job.run()
            failure = job.failure
    finally:
        with run.cond:
            run.done = True
            run.failure = failure
            run.job = None
            run.cond.notify_all()
        released = listener.released if listener is not None else 0
        with state.lock:
            state.maps.discard(run)
        state.release(n - released)
        if job is not None:
            job.listener = None
        with state.lock:
            state.threads.discard(threading.current_thread())
            state.lock.notify_all()


class _MapListener:
    """Hands each delivered chunk of a map to its iterator, and lets go of the chunk's arguments."""

    def __init__(self, state: _State, run: _MapRun, job: CallsRun, echo: bool) -> None:
        self.state = state
        self.run = run
        self.job = weakref.ref(job)
        self.echo = echo
        self.released = 0

    def __call__(self, result: ChunkResult) -> None:
        values = take_values(self.job(), result, self.echo)
        run = self.run
        with run.cond:
            if not run.closed:
                run.chunks[result.start] = (result.stop, values, result.errors, result.causes)
                run.cond.notify_all()
        del values
        count = result.stop - result.start
        self.released += count
        self.state.release(count)
