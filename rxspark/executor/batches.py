"""RxExecutor's batches: the dispatcher thread takes the calls queued close together and runs them as one job.

Each call's Future resolves as its chunk arrives (its :class:`~rxspark.executor.run.CallsRun`'s listener).
When every call of a running batch is cancelled, its job is canceled.

With ``linger=False`` on a context that ``accepts_feeds`` (the local pools), the
calls go to one open job instead (:mod:`rxspark.feed`): each dispatch adds its
calls to that job as new chunks, which run at once; the job closes when no call
is in flight, and the next call opens another.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .. import rng as _rng
from ..contexts.base import ComputeContext
from ..feed import open_plan, prepare
from ..worker import ChunkResult
from .calls import (
    _LINGER,
    _MAX_BATCH,
    _MAX_LINGER,
    _Batch,
    _call,
    _chunk_size,
    _fail,
    _Item,
    _State,
    _succeed,
    calls_job,
    take_values,
)
from .run import CallsRun


def _dispatch(state: _State, context: ComputeContext, spec: _rng.RngSpec | None) -> None:
    """Take batches of ready calls and start one job per batch (or feed the open job), until shut down and drained."""
    feeding = not state.linger and context.accepts_feeds
    while True:
        with state.lock:
            while not state.ready:
                if feeding and state.in_flight == 0:
                    _close_open_batch(state)  # idle: the open job ends (the next call opens another)
                if state.shutdown and not state.queue and not state.ready:
                    _close_open_batch(state)
                    return
                state.idle = True
                state.lock.wait()
            state.idle = False
        if state.linger:
            _linger(state)
        with state.lock:
            items: list[_Item] = []
            dropped = 0
            while state.ready and len(items) < _MAX_BATCH:
                item = state.ready.popleft()
                if item.future.cancelled():
                    dropped += 1
                else:
                    items.append(item)
            if dropped:
                state.in_flight -= dropped
                state.promote()
            if not items:
                continue
            if feeding:
                thread = None
            else:
                batch = _Batch([item.future for item in items])
                for slot, item in enumerate(items):
                    item.future._rx_batch = batch
                    item.future._rx_slot = slot
                state.batches.add(batch)
                state.jobs_started += 1
                thread = threading.Thread(
                    target=_run_batch, args=(state, context, spec, batch, items), name="rxspark-executor-batch", daemon=True
                )
                state.threads.add(thread)
        if feeding:
            _feed(state, context, spec, items)
            del items, item
            continue
        del items, item
        thread.start()
        del thread, batch


def _feed(state: _State, context: ComputeContext, spec: _rng.RngSpec | None, items: list[_Item]) -> None:
    """(The dispatcher) Add calls that have their slots to the open job as new chunks, opening one if need be.

    The calls of a chunk that cannot be serialized fail with an error naming what; the
    other chunks run. Feeding from ``submit`` itself, which would spare the dispatcher's
    hand-off, measured no quicker: the submitting thread is often the run loop's own.
    """
    size = _chunk_size(context, len(items), state.calls_per_chunk)
    for start in range(0, len(items), size):
        piece = items[start : start + size]
        try:
            chunk = prepare(spec, [(item.fn, item.args, item.kwargs) for item in piece], [item.index for item in piece] if spec is not None else None)
        except BaseException as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled: fail these calls
            for item in piece:
                item.future._rx_set(exception=exc)
            state.release(len(piece))
            continue
        with state.lock:  # the slots and the chunk together: task i of the job is slot i of its batch
            batch, thread = _joinable_batch(state, context, spec)
            dropped = 0
            for slot, item in enumerate(piece, len(batch.futures)):
                future = item.future
                if future.cancelled():  # meanwhile: its task runs, unseen (its cancel() saw no batch)
                    batch.futures.append(None)
                    dropped += 1
                    continue
                future._rx_batch = batch
                future._rx_slot = slot
                batch.futures.append(future)
            batch.live += len(piece) - dropped
            if dropped:
                state.in_flight -= dropped
                state.promote()
            assert batch.job is not None and batch.job.plan.feed is not None
            batch.job.plan.feed.add(chunk)  # open while the batch is (both close under this lock)
        if thread is not None:
            thread.start()
    del items[:]


def _joinable_batch(state: _State, context: ComputeContext, spec: _rng.RngSpec | None) -> tuple[_Batch, threading.Thread | None]:
    """(lock held) The open batch, or a new one with its job, and the job's thread to start."""
    batch = state.open_batch
    if batch is not None and not batch.closed:
        return batch, None
    job = CallsRun(open_plan(context.packages_to_load, spec), context)
    batch = _Batch([], open=True)
    batch.job = job
    job.listener = _Listener(state, batch, job, context.console_output)
    state.open_batch = batch
    state.batches.add(batch)
    state.jobs_started += 1
    thread = threading.Thread(target=_run_batch, args=(state, context, spec, batch, []), name="rxspark-executor-open", daemon=True)
    state.threads.add(thread)
    return batch, thread


def _close_open_batch(state: _State) -> None:
    """(lock held) The open job takes no more calls: it ends once those it has came back."""
    batch, state.open_batch = state.open_batch, None
    if batch is not None:
        batch.closed = True
        if batch.job is not None and batch.job.plan.feed is not None:
            batch.job.plan.feed.close()


def _linger(state: _State) -> None:
    """Let a burst of submits finish (the batching window): wait while ready calls keep arriving."""
    deadline = time.monotonic() + _MAX_LINGER
    seen = -1
    while time.monotonic() < deadline:
        with state.lock:
            ready = len(state.ready)
            if ready == seen or not state.has_room() or ready >= _MAX_BATCH or state.shutdown:
                return
        seen = ready
        time.sleep(_LINGER)


def _run_batch(state: _State, context: ComputeContext, spec: _rng.RngSpec | None, batch: _Batch, items: list[_Item]) -> None:
    job: CallsRun | None = None
    failure: BaseException | None = None
    try:
        if batch.open:
            job = batch.job
        else:
            try:
                job = _make_job(state, context, spec, items)
            except BaseException as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled: fail its calls
                failure = exc
        del items[:]
        if job is not None and not batch.open:
            with state.lock:
                batch.job = job
                stop = batch.live == 0  # every call was cancelled meanwhile
            if stop:
                job.cancel()
            job.listener = _Listener(state, batch, job, context.console_output)
        if job is not None:
            job.run()  # the outcome is the calls' futures
            if failure is None:
                failure = job.failure  # an infrastructure failure the context could not retry
    finally:
        with state.lock:
            if batch.open:
                batch.closed = True  # no call joins it any more (the dispatcher checks, under the lock)
                if state.open_batch is batch:
                    _close_open_batch(state)
                elif job is not None and job.plan.feed is not None:
                    job.plan.feed.close()
            pending = [(slot, f) for slot, f in enumerate(batch.futures) if f is not None]
            batch.futures = []
            state.batches.discard(batch)
        for _slot, future in pending:
            if failure is not None:
                future._rx_set(exception=failure)
            else:
                future.cancel()  # its job was canceled before the call's result came back
        state.release(len(pending))
        del pending
        if job is not None:
            job.listener = None
        with state.lock:
            state.threads.discard(threading.current_thread())
            state.lock.notify_all()


def _make_job(state: _State, context: ComputeContext, spec: _rng.RngSpec | None, items: list[_Item]) -> CallsRun:
    functions: dict[int, int] = {}
    distinct: list[Callable[..., Any]] = []
    which = []
    for item in items:
        key = id(item.fn)
        if key not in functions:
            functions[key] = len(distinct)
            distinct.append(item.fn)
        which.append(functions[key])
    columns = (which, [item.args for item in items], [item.kwargs for item in items])
    return calls_job(
        context, spec, _call, columns, len(items), [item.index for item in items], shared=tuple(distinct),
        calls_per_chunk=state.calls_per_chunk,
    )


class _Listener:
    """Resolves the futures of a delivered chunk, and lets go of its arguments and values."""

    def __init__(self, state: _State, batch: _Batch, job: CallsRun, echo: bool) -> None:
        self.state = state
        self.batch = batch
        self.job = weakref.ref(job)
        self.echo = echo

    def __call__(self, result: ChunkResult) -> None:
        values = take_values(self.job(), result, self.echo)
        tasks = range(result.start, result.stop)
        with self.state.lock:  # once per chunk
            futures = self.batch.futures
            mine = [futures[task] if task < len(futures) else None for task in tasks]
            for task in tasks:
                if task < len(futures):
                    futures[task] = None
            resolved = [f for f in mine if f is not None]
            self.batch.live -= sum(1 for f in resolved if not f.cancelled())
        del futures, resolved
        released = 0
        errors, causes = result.errors, result.causes
        for local, task in enumerate(tasks):
            future = mine[local]
            if future is None:
                continue
            mine[local] = None
            released += 1
            error = errors.get(task)
            if error is not None:
                _fail(future, error, causes.get(task))
            else:
                _succeed(future, values, local)
            del future
        self.state.release(released)
