"""RxExecutor: a ``concurrent.futures.Executor`` on any compute context.

``submit`` queues a call and returns its Future. A dispatcher thread takes the
calls queued close together (a burst of ``submit`` / ``map``) and runs them as
ONE job (a plan built by :func:`rxspark.plan.build_plan`, run by an
:class:`~rxspark.jobs.RxJob`) per batch, at most ``max_workers`` calls in
flight. Each call's Future resolves as its chunk arrives (the job's
``chunk_listener``), with the user's own exception and the remote traceback
text as its ``__cause__``. A Future stays pending, and cancellable, until its
result arrives; when every call of a running batch is cancelled, the batch's
job is canceled (its work stopped where the context can). With ``rng_seed``
the call submitted *k*-th draws from stream ``(rng_seed, k)``.
"""

from __future__ import annotations

import atexit
import itertools
import math
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, InvalidStateError
from typing import Any

import cloudpickle

from . import _active
from . import rng as _rng
from .contexts import registry
from .contexts.base import ComputeContext
from .errors import RxArgumentError, RxArgumentTypeError, RxTaskError
from .jobs import RxJob
from .plan import build_plan, rx_elem_arg
from .worker import ChunkResult

__all__ = ["RxExecutor", "RemoteTraceback"]

# Batching window: after the first queued call, keep gathering while more keep arriving, checking
# every _LINGER seconds, for at most _MAX_LINGER seconds (a tight submit loop fills one batch).
_LINGER = 0.002
_MAX_LINGER = 0.05
# Most calls in one job (a batch): bounds the size of one plan.
_MAX_BATCH = 65536
# Chunks per unit of the context's parallelism in one batch: small enough that early calls
# resolve early, few enough that a chunk's overhead is shared by many calls.
_CHUNKS_PER_WORKER = 4


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
    """The calls of one job: slot i of the batch is task i of the job."""

    def __init__(self, futures: list[_CallFuture | None]) -> None:
        self.futures = futures
        self.live = len(futures)  # not yet resolved nor cancelled
        self.job: RxJob | None = None


class _State:
    """Everything the dispatcher thread shares with the executor (the thread holds no executor).

    A call is *ready* (it has a slot: counted in ``in_flight``, to go in the next batch) or, while
    ``max_workers`` calls are in flight, *queued* for a slot. ``shutdown(cancel_futures=True)``
    cancels the queued ones, as a thread pool cancels what no worker took yet.
    """

    def __init__(self, max_workers: int | None) -> None:
        self.max_workers = max_workers
        self.lock = threading.Condition(threading.Lock())
        self.ready: deque[_Item] = deque()
        self.queue: deque[_Item] = deque()
        self.in_flight = 0  # calls with a slot: ready, or dispatched and not yet resolved
        self.shutdown = False
        self.idle = False
        self.batches: set[_Batch] = set()
        self.threads: set[threading.Thread] = set()
        self.jobs_started = 0

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
        if job is not None:
            job.cancel()  # nobody waits for any call of this batch any more: stop its work

    def release(self, count: int) -> None:
        if count:
            with self.lock:
                self.in_flight -= count
                self.promote()
                self.lock.notify_all()


class RxExecutor(Executor):
    """A ``concurrent.futures.Executor`` that runs calls on an rxspark compute context.

    Calls submitted close together run together, as one job per batch (one
    Spark job, not one per call). Futures stay cancellable until their result
    arrives. ``map`` is ``Executor.map``; its ``chunksize`` is accepted and
    ignored (batches span calls of many ``submit``/``map`` calls; each batch is
    chunked over the context's parallelism).

    Args:
        max_workers: Most calls in flight (dispatched, result not yet arrived);
            None: no bound beyond the batch size.
        compute_context: A context object or name (default: the active context
            when the executor is made).
        rng_seed: None, a non-negative int or ``"auto"``: the call submitted
            *k*-th draws from stream ``(rng_seed, k)``, whatever the batching,
            ``max_workers`` or context.
        rng_kind: The generator kind (see ``rx_exec``); None: ``"PCG64"`` with a seed.

    Attributes:
        compute_context: The context the calls run on.
        rng_seed: The seed in force (the drawn one for ``"auto"``), or None.

    Raises:
        RxArgumentError: ``max_workers <= 0`` (a ``ValueError``), or a bad RNG argument.
        RxArgumentTypeError: An argument of the wrong type.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        compute_context: ComputeContext | str | None = None,
        rng_seed: int | str | None = None,
        rng_kind: str | None = None,
    ) -> None:
        if max_workers is not None:
            if isinstance(max_workers, bool) or not isinstance(max_workers, int):
                raise RxArgumentTypeError(f"max_workers must be None or a positive int, got {max_workers!r}")
            if max_workers <= 0:
                raise RxArgumentError(f"max_workers must be greater than 0, got {max_workers}")
        if compute_context is None:
            context = _active.current()
        elif isinstance(compute_context, ComputeContext):
            context = compute_context
        elif isinstance(compute_context, str):
            context = registry.create(compute_context, "compute_context")
        else:
            raise RxArgumentTypeError(
                f"compute_context must be a compute context or its name, got {type(compute_context).__name__}"
            )
        self.compute_context: ComputeContext = context
        self._spec = _rng.resolve(rng_seed, rng_kind, "task")
        self.max_workers = max_workers
        self._state = _State(max_workers)
        self._counter = itertools.count()
        self._dispatcher: threading.Thread | None = None
        _live.add(self)
        # Dropped without shutdown(): the dispatcher still runs what was submitted, then ends.
        weakref.finalize(self, _State.stop, self._state)

    @property
    def rng_seed(self) -> int | None:
        return self._spec.seed if self._spec is not None else None

    @property
    def jobs_started(self) -> int:
        """How many jobs (batches) this executor started so far."""
        return self._state.jobs_started

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedule ``fn(*args, **kwargs)``; return its Future.

        Raises:
            RuntimeError: The executor was shut down.
        """
        return self._submit_many(fn, [args], kwargs)[0]

    def map(
        self, fn: Callable[..., Any], *iterables: Any, timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[Any]:
        """``map(fn, *iterables)`` run on the context: ``Executor.map``'s semantics.

        Every call is queued at once (so a map is one batch, up to ``max_workers``);
        ``chunksize`` is accepted and ignored (batches are chunked over the context's parallelism).

        Raises:
            RuntimeError: The executor was shut down.
        """
        end_time = None if timeout is None else timeout + time.monotonic()
        fs = self._submit_many(fn, list(zip(*iterables)), {})

        def result_iterator() -> Iterator[Any]:
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

        return result_iterator()

    def _submit_many(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]], kwargs: dict[str, Any]) -> list[Future]:
        state = self._state
        futures: list[Future] = []
        with state.lock:
            if state.shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _interpreter_exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            for args in calls:
                future = _CallFuture(state)
                state.accept(_Item(future, fn, args, kwargs, next(self._counter)))
                futures.append(future)
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=_dispatch, args=(state, self.compute_context, self._spec), name="rxspark-executor", daemon=True
                )
                self._dispatcher.start()
            elif state.idle:
                state.idle = False
                state.lock.notify_all()
        return futures

    submit.__doc__ = Executor.submit.__doc__

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking calls; free the executor's resources once the queued calls ran.

        Args:
            wait: Block until every call that was not cancelled has finished.
            cancel_futures: Cancel the calls still queued. With ``wait=False`` also
                the calls in flight: their jobs are canceled (stopped where the context can).
        """
        state = self._state
        with state.lock:
            state.shutdown = True
            dropped = list(state.queue) if cancel_futures else []
            if cancel_futures:
                state.queue.clear()
            in_flight = []
            if cancel_futures and not wait:
                in_flight = [item.future for item in state.ready]
                in_flight += [f for b in state.batches for f in b.futures if f is not None]
            state.lock.notify_all()
            dispatcher = self._dispatcher
        for item in dropped:
            item.future.cancel()
        for future in in_flight:
            future.cancel()
        del dropped, in_flight
        if wait:
            me = threading.current_thread()  # shutdown() from a done-callback runs in a batch's thread
            if dispatcher is not None and dispatcher is not me:
                dispatcher.join()
            while True:
                with state.lock:
                    threads = [t for t in state.threads if t is not me]
                if not threads:
                    break
                for thread in threads:
                    thread.join()
        _live.discard(self)

    def __repr__(self) -> str:
        return f"RxExecutor(max_workers={self.max_workers}, compute_context={self.compute_context!r})"


# ---------------------------------------------------------------- dispatcher


def _dispatch(state: _State, context: ComputeContext, spec: _rng.RngSpec | None) -> None:
    """Take batches of ready calls and start one job per batch, until shut down and drained."""
    while True:
        with state.lock:
            while not state.ready:
                if state.shutdown and not state.queue and not state.ready:
                    return
                state.idle = True
                state.lock.wait()
            state.idle = False
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
        del items, item
        thread.start()
        del thread, batch


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
    job: RxJob | None = None
    failure: BaseException | None = None
    try:
        try:
            job = _make_job(context, spec, items)
        except BaseException as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled: fail its calls
            failure = exc
        del items[:]
        if job is not None:
            with state.lock:
                batch.job = job
                stop = batch.live == 0  # every call was cancelled meanwhile
            if stop:
                job.cancel()
            job.chunk_listener = _Listener(state, batch, job, context.console_output)
            job.run()  # the outcome is the calls' futures; the job's own result is all None
            if job.done() and not job.cancelled():
                failure = job.exception()  # an infrastructure failure the context could not retry
    finally:
        with state.lock:
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
            job.chunk_listener = None
            job.cleanup()  # a job that ran long enough to be recorded leaves no record behind
        with state.lock:
            state.threads.discard(threading.current_thread())
            state.lock.notify_all()


def _make_job(context: ComputeContext, spec: _rng.RngSpec | None, items: list[_Item]) -> RxJob:
    functions: dict[int, int] = {}
    distinct: list[Callable[..., Any]] = []
    which = []
    for item in items:
        key = id(item.fn)
        if key not in functions:
            functions[key] = len(distinct)
            distinct.append(item.fn)
        which.append(functions[key])
    n = len(items)
    chunk_size = max(1, math.ceil(n / (_CHUNKS_PER_WORKER * max(1, context.parallelism()))))
    plan = build_plan(
        _call,
        (rx_elem_arg(which), rx_elem_arg([item.args for item in items]), rx_elem_arg([item.kwargs for item in items]), *distinct),
        {},
        elem_args=None,
        elem_type="nodes",
        once_per_elem=False,
        times_to_run=n,
        packages_to_load=None,
        context_packages=context.packages_to_load,
        exec_objects=None,
        task_chunk_size=chunk_size,
        rng_seed=spec.seed if spec is not None else None,
        rng_kind=spec.kind if spec is not None else None,
        rng_scope="task",
        rx_args=None,
        local_state=None,
        parallelism=context.parallelism(),
        nodes=context.nodes,
        rng_streams=[item.index for item in items] if spec is not None else None,
    )
    return RxJob(plan, context, continue_on_failure=True, console_output=False, auto_cleanup=True)


class _Listener:
    """Resolves the futures of a delivered chunk, and lets go of its arguments and values."""

    def __init__(self, state: _State, batch: _Batch, job: RxJob, echo: bool) -> None:
        self.state = state
        self.batch = batch
        self.job = weakref.ref(job)
        self.echo = echo

    def __call__(self, result: ChunkResult) -> None:
        job = self.job()
        if job is not None:
            chunk = job.plan.chunks[result.index]
            chunk.calls = None  # the calls' arguments: not needed any more
            chunk.calls_blob = None
        values = result.get_values()
        result.values = None  # the values go to the futures only
        if self.echo and result.output:
            sys.stdout.write(result.output)
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
    exc: BaseException = error
    if cause is not None:
        try:
            exc = cloudpickle.loads(cause)
        except Exception:  # noqa: BLE001 - the RxTaskError still says everything
            exc = error
    if exc is not error:
        exc.__cause__ = RemoteTraceback(f'\n"""\n{error.remote_traceback}"""')
    future._rx_set(exception=exc)


# ---------------------------------------------------------------- interpreter exit

_live: weakref.WeakSet[RxExecutor] = weakref.WeakSet()
_interpreter_exiting = False


def _at_exit() -> None:
    """As for the standard executors: calls submitted before exit still run."""
    global _interpreter_exiting
    _interpreter_exiting = True
    for executor in list(_live):
        executor.shutdown(wait=True)


atexit.register(_at_exit)
