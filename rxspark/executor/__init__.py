"""RxExecutor: a ``concurrent.futures.Executor`` on any compute context.

``submit`` queues a call and returns its Future. A dispatcher thread takes the
calls queued close together (a burst of ``submit`` / ``map``) and runs them as
ONE job (a :class:`~rxspark.spec.JobSpec` laid out as a plan, run by a
:class:`~rxspark.executor.run.CallsRun` straight through the backend
interface: no record, no job of its own for the user) per batch, at most
``max_workers`` calls in flight. Each call's Future resolves as its chunk
arrives (the run's listener), with the user's own exception and the remote traceback
text as its ``__cause__``. A Future stays pending, and cancellable, until its
result arrives; when every call of a running batch is cancelled, the batch's
job is canceled (its work stopped where the context can). With ``rng_seed``
the call submitted *k*-th draws from stream ``(rng_seed, k)``.

``map`` skips the Future per call: when all its calls fit in ``max_workers``
they run as one job whose chunks the iterator takes in order
(:mod:`.mapping`); otherwise its calls are queued as submits. Modules:
``calls`` (a call's Future, the shared state), ``run`` (a job of calls on a
context), ``batches`` (the dispatcher), ``mapping`` (map as one job).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

from .. import _active
from .. import rng as _rng
from ..contexts import registry
from ..contexts.base import ComputeContext
from ..errors import RxArgumentError, RxArgumentTypeError
from .batches import _dispatch
from .calls import _CHUNKS_PER_WORKER, RemoteTraceback, _CallFuture, _future_iterator, _Item, _State
from .mapping import _map_iterator, _MapRun, _run_map

__all__ = ["RxExecutor", "RemoteTraceback", "_CHUNKS_PER_WORKER"]


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
        calls_per_chunk: Calls per chunk (one Spark task, one unit of a local pool) of
            each job; None: a batch is spread over the context's parallelism (one chunk per
            core on Spark, four elsewhere). 1 suits calls that are each a batch of work
            already (joblib's batches): every call's result comes back on its own.
        linger: True: the dispatcher waits (up to 50 ms) while submits keep arriving, so a
            tight submit loop makes one job; False: what is submitted goes out at once, for
            callers that submit few, large calls and wait on each. On a context that
            ``accepts_feeds`` (the local pools) False also keeps one job open while calls
            are in flight, each submit joining it as new chunks (:mod:`rxspark.feed`).

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
        *,
        calls_per_chunk: int | None = None,
        linger: bool = True,
    ) -> None:
        _check_positive_or_none("calls_per_chunk", calls_per_chunk)
        if not isinstance(linger, bool):
            raise RxArgumentTypeError(f"linger must be True or False, got {linger!r}")
        _check_positive_or_none("max_workers", max_workers)
        context = registry.resolve(compute_context, "compute_context", none=True)
        self.compute_context: ComputeContext = context if context is not None else _active.current()
        self._spec = _rng.resolve(rng_seed, rng_kind, "task")
        self.max_workers = max_workers
        self._state = _State(max_workers, calls_per_chunk, linger)
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
        if len(iterables) == 1 and isinstance(iterables[0], range):
            columns: list[Any] = [iterables[0]]
            n = len(iterables[0])
        else:
            rows = list(zip(*iterables))
            n = len(rows)
            columns = [list(column) for column in zip(*rows)] if n else []
            del rows
        run = self._start_map(fn, columns, n) if n else None
        if run is None:
            # max_workers leaves no room for all the calls at once: one Future per call, queued
            calls = list(zip(*columns)) if n else []
            del columns
            return _future_iterator(self._submit_many(fn, calls, {}), end_time)
        del columns
        return _map_iterator(run, n, end_time)

    def _start_map(self, fn: Callable[..., Any], columns: list[Any], n: int) -> _MapRun | None:
        """Run the n calls of a map as one job, results chunk by chunk (no Future per call).

        None (nothing started) when ``max_workers`` has no room for all n calls now.
        """
        state = self._state
        with state.lock:
            if state.shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _interpreter_exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            if state.queue or (state.max_workers is not None and state.in_flight + n > state.max_workers):
                return None
            state.in_flight += n
            base = state.next_index
            state.next_index = base + n
            run = _MapRun(n)
            state.maps.add(run)
            state.jobs_started += 1
            thread = threading.Thread(
                target=_run_map,
                args=(state, self.compute_context, self._spec, run, fn, columns, n, base),
                name="rxspark-executor-map",
                daemon=True,
            )
            state.threads.add(thread)
        thread.start()
        return run

    def _submit_many(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]], kwargs: dict[str, Any]) -> list[Future]:
        state = self._state
        futures: list[Future] = []
        with state.lock:
            if state.shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _interpreter_exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            index = state.next_index
            for args in calls:
                future = _CallFuture(state)
                state.accept(_Item(future, fn, args, kwargs, index))
                index += 1
                futures.append(future)
            state.next_index = index
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
            maps = list(state.maps) if cancel_futures and not wait else []
            state.lock.notify_all()
            dispatcher = self._dispatcher
        for item in dropped:
            item.future.cancel()
        for future in in_flight:
            future.cancel()
        for run in maps:
            run.close()
        del dropped, in_flight, maps
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
                    if thread.ident is None:  # added under the lock, started just after it
                        time.sleep(0.001)
                    else:
                        thread.join()
        _live.discard(self)

    def __repr__(self) -> str:
        return f"RxExecutor(max_workers={self.max_workers}, compute_context={self.compute_context!r})"


def _check_positive_or_none(name: str, value: Any) -> None:
    """Raise unless ``value`` is None or an int above 0 (a bool is not a count)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise RxArgumentTypeError(f"{name} must be None or a positive int, got {value!r}")
    if value <= 0:
        raise RxArgumentError(f"{name} must be greater than 0, got {value}")


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
