"""The pieces RxExecutor's paths share: a call's Future, the executor's state, batching constants.

A call is an :class:`_Item` (its Future, function and arguments, and its
submission index, which names its RNG stream); a batch of calls is one job.
:class:`_State` is everything the executor's threads share.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, Any

import cloudpickle

from ..contexts.base import ComputeContext
from ..errors import RxTaskError
from ..plan import lay_out
from ..spec import JobSpec, rx_elem_arg
from .run import CallsRun

if TYPE_CHECKING:
    from ..worker import ChunkResult

# Batching window: after the first queued call, keep gathering while more keep arriving, checking
# every _LINGER seconds, for at most _MAX_LINGER seconds (a tight submit loop fills one batch).
_LINGER = 0.002
_MAX_LINGER = 0.05
# Most calls in one job (a batch): bounds the size of one plan.
_MAX_BATCH = 65536
# Chunks per unit of the context's parallelism in one batch: small enough that early calls
# resolve early, few enough that a chunk's overhead is shared by many calls.
_CHUNKS_PER_WORKER = 4
# On Spark a chunk is a Spark task, which costs tens of ms of scheduling and (de)serialisation on
# its own (W7: 10k dice games took 0.3 s as 2 chunks, 0.8 s as 8): one chunk per unit of
# parallelism there, as rx_exec chunks by default.
_SPARK_CHUNKS_PER_WORKER = 1


def _chunk_size(context: ComputeContext, n: int, calls_per_chunk: int | None = None) -> int:
    """Calls per chunk of a batch of n calls on this context (``calls_per_chunk`` when the caller set it)."""
    if calls_per_chunk is not None:
        return calls_per_chunk
    per_worker = _SPARK_CHUNKS_PER_WORKER if type(context).__module__.startswith("rxspark.contexts.spark") else _CHUNKS_PER_WORKER
    return max(1, math.ceil(n / (per_worker * max(1, context.parallelism()))))


def calls_job(
    context: ComputeContext,
    spec: Any,
    fn: Callable[..., Any],
    columns: tuple[Any, ...],
    n: int,
    streams: Any,
    shared: tuple[Any, ...] = (),
    calls_per_chunk: int | None = None,
) -> CallsRun:
    """The run of n calls ``fn(*column values, *shared)``, task-scoped streams named by ``streams`` (with a seed).

    Both of RxExecutor's paths run their calls so (a batch of submits, a map).
    """
    job_spec = JobSpec.create(
        fn,
        (*(rx_elem_arg(column) for column in columns), *shared),
        context_packages=context.packages_to_load,
        times_to_run=n,
        task_chunk_size=_chunk_size(context, n, calls_per_chunk),
        rng_seed=spec.seed if spec is not None else None,
        rng_kind=spec.kind if spec is not None else None,
        rng_scope="task",
        rng_streams=streams if spec is not None else None,
    )
    return CallsRun(lay_out(job_spec, context.parallelism, context.nodes), context)


def take_values(job: CallsRun | None, result: ChunkResult, echo: bool) -> list[Any]:
    """A delivered chunk's values, taken out of it; its calls' arguments are let go (and its output echoed)."""
    if job is not None:
        feed = job.plan.feed
        chunk = job.plan.chunks[result.index] if feed is None else feed.chunk(result.index)
        chunk.calls = None  # the calls' arguments: not needed any more
        chunk.calls_blob = None
    values = result.get_values()
    result.values = None  # the values go to the futures / the iterator only
    if echo and result.output:
        sys.stdout.write(result.output)
    return values


class RemoteTraceback(Exception):
    """The traceback text of a call that failed on a worker (the ``__cause__`` of its exception)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _call(index: int, args: tuple[Any, ...], kwargs: dict[str, Any], *functions: Callable[..., Any]) -> Any:
    """One call of a batch: the batch's distinct functions travel once, in the job's payload."""
    return functions[index](*args, **kwargs)


class _CallFuture(Future):
    """A call's Future. ``cancel()`` succeeds until the result arrives, then tells the executor."""

    def __init__(self, state: _State) -> None:
        super().__init__()
        self._rx_state: _State | None = state
        self._rx_batch: _Batch | None = None
        self._rx_slot = -1

    def cancel(self) -> bool:
        with _future_lock:
            if self.cancelled():
                return True
            if not super().cancel():
                return False
            # Tell wait() / as_completed() at once: nothing else would.
            self.set_running_or_notify_cancel()
        state, self._rx_state = self._rx_state, None
        if state is not None:
            state.cancelled(self)
        return True

    def _rx_set(self, value: Any = None, exception: BaseException | None = None) -> None:
        """Set the outcome (straight from PENDING); nothing if the future was cancelled meanwhile."""
        try:
            if exception is not None:
                self.set_exception(exception)
            else:
                self.set_result(value)
        except InvalidStateError:
            pass  # cancel() came first


# Orders concurrent cancel() calls (a result may arrive meanwhile: _rx_set drops it if so).
_future_lock = threading.RLock()


class _Item:
    __slots__ = ("future", "fn", "args", "kwargs", "index")

    def __init__(self, future: _CallFuture, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], index: int) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.index = index


class _Batch:
    """The calls of one job: slot i of the batch is task i of the job.

    An open batch (``linger=False`` on a context that ``accepts_feeds``) is the job the
    executor keeps feeding: its calls grow as they are submitted, until it is ``closed``
    (idle, shut down, every call cancelled, or its job ended); the next call opens another.
    """

    def __init__(self, futures: list[_CallFuture | None], open: bool = False) -> None:  # noqa: A002
        self.futures = futures
        self.live = len(futures)  # not yet resolved nor cancelled
        self.job: CallsRun | None = None
        self.open = open
        self.closed = False


class _State:
    """Everything the dispatcher thread shares with the executor (the thread holds no executor).

    A call is *ready* (it has a slot: counted in ``in_flight``, to go in the next batch) or, while
    ``max_workers`` calls are in flight, *queued* for a slot. ``shutdown(cancel_futures=True)``
    cancels the queued ones, as a thread pool cancels what no worker took yet.
    """

    def __init__(self, max_workers: int | None, calls_per_chunk: int | None = None, linger: bool = True) -> None:
        self.max_workers = max_workers
        self.calls_per_chunk = calls_per_chunk
        self.linger = linger
        self.lock = threading.Condition(threading.Lock())
        self.ready: deque[_Item] = deque()
        self.queue: deque[_Item] = deque()
        self.in_flight = 0  # calls with a slot: ready, or dispatched and not yet resolved
        self.shutdown = False
        self.idle = False
        self.batches: set[_Batch] = set()
        self.threads: set[threading.Thread] = set()
        self.maps: set[Any] = set()  # the maps running (executor.mapping._MapRun)
        self.jobs_started = 0
        self.next_index = 0  # the submission index of the next call (its RNG stream)
        self.open_batch: _Batch | None = None  # the open job being fed, if any

    def stop(self) -> None:
        with self.lock:
            self.shutdown = True
            self.lock.notify_all()

    def has_room(self) -> bool:
        return self.max_workers is None or self.in_flight < self.max_workers

    def accept(self, item: _Item) -> None:
        """(lock held) A new call: ready if there is a slot for it, else queued."""
        if not self.queue and self.has_room():
            self.ready.append(item)
            self.in_flight += 1
        else:
            self.queue.append(item)

    def promote(self) -> None:
        """(lock held) Give free slots to queued calls."""
        while self.queue and self.has_room():
            item = self.queue.popleft()
            if not item.future.cancelled():
                self.ready.append(item)
                self.in_flight += 1

    def cancelled(self, future: _CallFuture) -> None:
        job = None
        with self.lock:
            batch = future._rx_batch
            if batch is None:
                return  # not dispatched: the dispatcher drops it
            batch.live -= 1
            if batch.live == 0:
                job = batch.job
                batch.closed = True  # an open batch takes no more calls: its job is canceled
        if job is not None:
            job.cancel()  # nobody waits for any call of this batch any more: stop its work

    def release(self, count: int) -> None:
        if count:
            with self.lock:
                self.in_flight -= count
                self.promote()
                self.lock.notify_all()


def _future_iterator(fs: list[Future], end_time: float | None) -> Iterator[Any]:
    try:
        fs.reverse()  # pop() from the end: the iterator keeps no finished future (nor its result)
        while fs:
            if end_time is None:
                yield _result_or_cancel(fs.pop())
            else:
                yield _result_or_cancel(fs.pop(), end_time - time.monotonic())
    finally:
        for future in fs:
            future.cancel()


def _exception(error: RxTaskError, cause: bytes | None) -> BaseException:
    exc: BaseException = error
    if cause is not None:
        try:
            exc = cloudpickle.loads(cause)
        except Exception:  # noqa: BLE001 - the RxTaskError still says everything
            exc = error
    if exc is not error:
        exc.__cause__ = RemoteTraceback(f'\n"""\n{error.remote_traceback}"""')
    return exc


def _result_or_cancel(future: Future, timeout: float | None = None) -> Any:
    """As ``Executor.map`` does: a timed-out future is cancelled, and no reference to it stays here."""
    try:
        try:
            return future.result(timeout)
        finally:
            future.cancel()
    finally:
        del future


def _succeed(future: _CallFuture, values: list[Any], local: int) -> None:
    value = values[local]
    values[local] = None  # the future holds the only reference (CPython's test_free_reference)
    future._rx_set(value)


def _fail(future: _CallFuture, error: RxTaskError, cause: bytes | None) -> None:
    future._rx_set(exception=_exception(error, cause))
