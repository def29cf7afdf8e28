"""The joblib backend ``"rxspark"``: ``joblib.Parallel`` (so scikit-learn's ``n_jobs``) on any compute context.

Importing this module registers the backend (so does :func:`register`); ``import
rxspark`` alone never imports joblib. Each Parallel call runs its batches through
one :class:`~rxspark.executor.RxExecutor`: each batch is a chunk (a Spark task) of
its own, and the batches dispatched together share one job (one Spark job, not one
per batch). On the local pools the executor keeps one job open for the whole call
and each batch joins it as a chunk (``linger=False``, see :mod:`rxspark.feed`).

Seeds: with ``rng_seed``, call *k* of a Parallel call, counted in joblib's dispatch
order, draws from stream ``(rng_seed, k)`` whatever joblib's auto-batching: a batch
carries the index of its first call and each of its calls starts its own stream
(``random``, ``numpy.random`` and ``rxspark.rng()`` seeded from it) on the worker.

Nesting: a ``Parallel`` call made inside a task of this backend (on a worker, or in
a daemonic process) runs sequentially, as loky's backend does in its workers; by
default nested calls use joblib's threads, as under loky. Unpickling a task imports
this module on the worker, so ``backend="rxspark"`` is known there too.
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from joblib.parallel import BACKENDS, register_parallel_backend

from . import _active
from ._compat import joblib_backend_bases, joblib_multiprocessing
from .contexts import registry
from .contexts.base import ComputeContext
from .errors import RxArgumentTypeError
from .executor import RxExecutor
from .rng import RngSpec, Streams, resolve

AutoBatchingMixin, FallbackToBackend, ParallelBackendBase, SequentialBackend = joblib_backend_bases()
mp = joblib_multiprocessing()

__all__ = ["RxSparkBackend", "register", "BACKEND_NAME"]

BACKEND_NAME = "rxspark"

# Depth of rxspark joblib tasks running in this thread (on a worker, or in-process).
_in_task = threading.local()


def _task_depth() -> int:
    return getattr(_in_task, "depth", 0)


def _nested() -> bool:
    """In a task of this backend, or in a daemonic process (which cannot start workers)."""
    return _task_depth() > 0 or (mp is not None and mp.current_process().daemon)


class _SeededCall:
    """One call of a batch: starts stream ``(seed, index)`` for this call alone, then runs it."""

    __slots__ = ("function", "index", "spec")

    def __init__(self, function: Callable[..., Any], index: int, spec: RngSpec) -> None:
        self.function = function
        self.index = index
        self.spec = spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The worker's run_chunk entered the stream context of the task (saving and restoring the
        # global states, under its lock); this switches the task to the call's own stream.
        Streams(self.spec).start(self.index)
        return self.function(*args, **kwargs)


class _Task:
    """What a joblib batch runs as on the context: the batch, and the index of its first call.

    Pickled by reference to this module, so a worker that unpickles it has the
    backend registered (a nested ``Parallel(backend="rxspark")`` finds it).
    """

    __slots__ = ("batch", "first", "spec")

    def __init__(self, batch: Callable[[], list[Any]], first: int, spec: RngSpec | None) -> None:
        self.batch = batch
        self.first = first
        self.spec = spec

    def __call__(self) -> list[Any]:
        batch = self.batch
        if self.spec is not None:
            items = getattr(batch, "items", None)
            if items is not None:  # a joblib BatchedCalls: seed each of its calls by its own index
                batch = copy.copy(batch)  # in-process contexts run the driver's own object: leave it be
                batch.items = [  # type: ignore[attr-defined]
                    (_SeededCall(function, self.first + j, self.spec), args, kwargs)
                    for j, (function, args, kwargs) in enumerate(items)
                ]
            else:
                Streams(self.spec).start(self.first)
        _in_task.depth = _task_depth() + 1
        try:
            return batch()
        finally:
            _in_task.depth -= 1


class RxSparkBackend(AutoBatchingMixin, ParallelBackendBase):
    """A joblib ``ParallelBackendBase`` that runs joblib's batches on an rxspark compute context.

    Use it with ``joblib.parallel_config(backend="rxspark", n_jobs=-1, compute_context=cc,
    rng_seed=7)``; ``n_jobs=-1`` means the context's parallelism. Without a seed,
    ``n_jobs=1`` (the default) runs the calls in the caller, as for every joblib
    backend; with ``rng_seed`` they still run on the context, one at a time, each on its
    stream, so the scores do not depend on ``n_jobs`` either.

    Args:
        compute_context: A context object or name (default: the active context at
            the start of each Parallel call).
        rng_seed: None, a non-negative int or ``"auto"`` (drawn once, when the backend is
            made). Call *k* of each Parallel call, in joblib's dispatch order, draws from
            stream ``(rng_seed, k)``; ``random`` and ``numpy.random`` are seeded from it.
        rng_kind: The generator kind (see ``rx_exec``); None: ``"PCG64"`` with a seed.
        nesting_level: Set by joblib.
        inner_max_num_threads: Not supported (joblib checks ``supports_inner_max_num_threads``).

    Raises:
        RxArgumentError: A bad ``rng_seed`` / ``rng_kind`` or an unknown context name (a ``ValueError``).
        RxArgumentTypeError: An argument of the wrong type, or an unknown parameter (a ``TypeError``).
    """

    default_n_jobs = 1
    # Auto-batching: joblib grows its batches until one takes MIN_IDEAL_BATCH_DURATION (0.2 s). A
    # batch here costs a job of the context (a Spark job: tens to hundreds of ms), so the target is
    # at least _OVERHEAD_FACTOR times the quickest batch seen, an upper bound of that cost.
    _OVERHEAD_FACTOR = 8
    _GROWTH = 16
    supports_retrieve_callback = True
    supports_inner_max_num_threads = False
    supports_sharedmem = False
    uses_threads = False

    def __init__(
        self,
        compute_context: ComputeContext | str | None = None,
        rng_seed: int | str | None = None,
        rng_kind: str | None = None,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise RxArgumentTypeError(
                f"the rxspark joblib backend got unknown parameter(s) {sorted(unknown)}; "
                "it takes compute_context, rng_seed and rng_kind"
            )
        context = registry.resolve(compute_context, "compute_context", none=True)
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        self.compute_context: ComputeContext | None = context
        self._spec = resolve(rng_seed, rng_kind, "task")
        self._executor: RxExecutor | None = None
        self._lock = threading.Lock()
        self._next_call = 0
        self._n_jobs = 1
        self._quickest: float | None = None

    @property
    def rng_seed(self) -> int | None:
        """The seed in force (the drawn one for ``"auto"``), or None."""
        return self._spec.seed if self._spec is not None else None

    def _context(self) -> ComputeContext:
        return self.compute_context if self.compute_context is not None else _active.current()

    # ------------------------------------------------------------ joblib's interface

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """How many calls can run at once: ``n_jobs < 0`` counts back from the context's parallelism.

        Inside a task of this backend (or a daemonic process) it is 1: nested calls run
        sequentially. With ``rng_seed`` it is at least 2 elsewhere, so that joblib hands
        even ``n_jobs=1`` calls to the backend (which then runs them one at a time) and
        they draw from their streams: joblib runs a 1-job call in the caller, unseeded.
        """
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if _nested():
            if n_jobs not in (1, None):
                warnings.warn(
                    "rxspark-backed parallel loops cannot be nested inside an rxspark task or a daemonic "
                    "process, setting n_jobs=1",
                    stacklevel=3,
                )
            return 1
        wanted = self._wanted(n_jobs)
        return max(wanted, 2) if self._spec is not None else wanted

    def _wanted(self, n_jobs: int | None) -> int:
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(self._context().parallelism() + 1 + n_jobs, 1)
        return n_jobs

    def configure(
        self, n_jobs: int = 1, parallel: Any = None, prefer: str | None = None, require: str | None = None, **kwargs: Any
    ) -> int:
        """Start an executor for the Parallel call; return the number of workers (joblib's hook)."""
        effective = self.effective_n_jobs(n_jobs)
        if effective == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        self._n_jobs = self._wanted(n_jobs)
        self._start_executor()
        return effective

    def _start_executor(self) -> None:
        with self._lock:
            self._next_call = 0
            if self._executor is None:
                spec = self._spec
                context = self._context()
                # Each joblib batch is one call of the executor, in a chunk of its own (one Spark task),
                # sent out at once: joblib's batches are batched already, and a slow one holds back
                # no other's result. Up to n_jobs run at once; when n_jobs covers the context's
                # parallelism, the batches joblib pre-dispatches (2 * n_jobs) all go to the context,
                # which queues them, so a core that finishes a batch starts the next one without
                # waiting for the driver's round trip (loky's workers do the same with its queue).
                self._executor = RxExecutor(
                    max_workers=self._n_jobs if self._n_jobs < context.parallelism() else None,
                    compute_context=context,
                    calls_per_chunk=1,
                    linger=False,
                    rng_seed=spec.seed if spec is not None else None,
                    rng_kind=spec.kind if spec is not None else None,
                )

    def start_call(self) -> None:
        """A Parallel call starts: its calls are counted from 0 (the stream indices)."""
        with self._lock:
            self._next_call = 0

    def submit(self, func: Callable[[], Any], callback: Callable[[Future], Any] | None = None) -> Future:
        """Run one joblib batch on the context; ``callback`` gets its Future once done."""
        with self._lock:  # joblib dispatches under its own lock; this keeps the count right anyway
            executor = self._executor
            if executor is None:
                raise RuntimeError("the rxspark joblib backend is not configured (or was terminated)")
            first = self._next_call
            self._next_call += len(func) if hasattr(func, "__len__") else 1  # type: ignore[arg-type]
        future = executor.submit(_Task(func, first, self._spec))
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def batch_completed(self, batch_size: int, duration: float) -> None:
        """joblib's timing of a batch (dispatch to result): also bounds the cost of a job of the context."""
        if self._quickest is None or duration < self._quickest:
            self._quickest = duration
            self.MIN_IDEAL_BATCH_DURATION = max(AutoBatchingMixin.MIN_IDEAL_BATCH_DURATION, self._OVERHEAD_FACTOR * duration)
            self.MAX_IDEAL_BATCH_DURATION = max(AutoBatchingMixin.MAX_IDEAL_BATCH_DURATION, 10 * self.MIN_IDEAL_BATCH_DURATION)
        super().batch_completed(batch_size, duration)

    def compute_batch_size(self) -> int:
        """joblib's auto-batching, growing up to _GROWTH times per step (joblib: 2) while batches are too quick.

        Each step is a round trip to the context; at 2x, 1000 quick calls took 10 rounds of Spark jobs.
        """
        old, duration = self._effective_batch_size, self._smoothed_batch_duration
        if 0 < duration < self.MIN_IDEAL_BATCH_DURATION:
            ideal = int(old * self.MIN_IDEAL_BATCH_DURATION / duration) * 2
            size = max(1, min(self._GROWTH * old, ideal))
            if size != old:
                self._effective_batch_size = size
                self._smoothed_batch_duration = self._DEFAULT_SMOOTHED_BATCH_DURATION
            return size
        return super().compute_batch_size()

    def retrieve_result_callback(self, out: Future) -> Any:
        """The batch's results, or its first failure: the user's own exception type."""
        return out.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel the calls not yet done (their jobs are canceled); keep working if ``ensure_ready``."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if ensure_ready:
            self._start_executor()

    def terminate(self) -> None:
        """The Parallel call (or managed ``with Parallel(...)`` block) is over: stop its executor."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self.reset_batch_stats()

    def __reduce__(self) -> Any:
        # A backend that travels to a worker (captured by a task) takes its seed, not its executor nor
        # its context: nested in a task, it runs sequentially anyway.
        return (_rebuild, (self._spec, self.nesting_level))


def _rebuild(spec: RngSpec | None, nesting_level: int | None) -> RxSparkBackend:
    backend = RxSparkBackend(nesting_level=nesting_level)
    backend._spec = spec
    return backend


def register() -> None:
    """Register the joblib backend ``"rxspark"`` (importing this module does it too)."""
    if BACKENDS.get(BACKEND_NAME) is not RxSparkBackend:
        register_parallel_backend(BACKEND_NAME, RxSparkBackend)


register()
