"""Open plans: a job whose chunks are added while it runs.

RxExecutor with ``linger=False`` sends each submit out at once. On a context
whose pool takes chunks one at a time (``ComputeContext.accepts_feeds``: the
local process pools), a job per submit would cost a plan, a job, its record and
a thread for every call; instead the executor keeps ONE job open and feeds it:
each submit becomes new chunks of that job (:meth:`ChunkFeed.add`), run as soon
as they arrive, until the feed is closed and every chunk came back.

An open plan's payload is the same for every call: :func:`call_item`, with the
call's function, positional and keyword arguments as its three per-call
columns, so the functions travel with their calls (one pickle per chunk), and
each chunk names its calls' RNG streams itself (``Chunk.streams``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle

from . import rng as _rng
from ._arguments import check_packages as _check_packages
from ._arguments import describe as _describe
from ._arguments import diagnose_serialization as _diagnose_serialization
from ._sources import build_table
from .errors import RxArgumentError
from .plan import Chunk, ChunkCalls, Payload, TaskPlan

__all__ = ["ChunkFeed", "open_plan", "prepare", "call_item"]

# An open plan's per-call columns: function, positional arguments, keyword arguments.
_COLUMNS = 3


def call_item(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One call of an open plan: ``function(*args, **kwargs)``, all three per call."""
    return function(*args, **kwargs)


class ChunkFeed:
    """The chunks of an open plan, added while its job runs.

    The executor adds (:func:`prepare`, then :meth:`add`); the context's run loop
    :meth:`watch`\\ es, runs the chunks as they grow (read with :meth:`since`, under
    the feed's lock: an open plan's ``chunks`` and ``n_tasks`` change only there)
    and ends once the feed is :attr:`closed` and nothing is in flight. Adding to a
    closed feed does nothing.
    """

    def __init__(self, plan: TaskPlan) -> None:
        self._plan = plan
        self._lock = threading.Lock()
        self._closed = False
        self._wake: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: no chunk will be added any more."""
        return self._closed

    def add(self, chunk: Chunk) -> bool:
        """Make a prepared chunk the plan's next one (its tasks follow the plan's last); False if closed."""
        with self._lock:
            if self._closed:
                return False
            plan = self._plan
            n = len(chunk.calls.columns[0]) if chunk.calls is not None else 0
            chunk.index, chunk.start, chunk.stop = len(plan.chunks), plan.n_tasks, plan.n_tasks + n
            plan.chunks.append(chunk)
            plan.n_tasks += n
            wake = self._wake
        if wake is not None:
            wake()
        return True

    def since(self, start: int) -> list[Chunk]:
        """(The context's run loop) the chunks added from index ``start`` on, as a snapshot."""
        with self._lock:
            return self._plan.chunks[start:]

    def chunk(self, index: int) -> Chunk:
        """The chunk of that index (a listener of the run)."""
        with self._lock:
            return self._plan.chunks[index]

    def close(self) -> None:
        """No more chunks: the job ends once those added came back. Idempotent."""
        with self._lock:
            self._closed = True
            wake = self._wake
        if wake is not None:
            wake()

    def watch(self, wake: Callable[[], None] | None) -> None:
        """(The context's run loop) call ``wake`` after each add and at close; None: stop."""
        with self._lock:
            self._wake = wake


def prepare(
    spec: _rng.RngSpec | None,
    calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]],
    streams: Sequence[int] | None,
) -> Chunk:
    """A chunk of ``calls`` (function, args, kwargs) for an open plan with ``spec``, serialized, not yet added.

    Args:
        spec: The open plan's RNG spec, or None.
        calls: The chunk's calls, in order.
        streams: The RNG stream of each call (with a spec), else None.

    Raises:
        RxArgumentError: A call cannot be serialized (the message names what), or a
            stream the generator kind has no room for.
    """
    if spec is not None:
        if streams is None or len(streams) != len(calls):
            raise ValueError("an open plan with a seed needs one stream per call")
        _rng.check_stream_count(spec, max(streams) + 1)
    functions = list({id(f): f for f, _, _ in calls}.values())
    chunk_calls = ChunkCalls(
        columns=[[f for f, _, _ in calls], [a for _, a, _ in calls], [k for _, _, k in calls]],
        entries=None,
        sources=build_table(functions),
    )
    try:
        blob = cloudpickle.dumps(chunk_calls)
    except Exception:  # noqa: BLE001 - find the culprit and say so
        raise RxArgumentError(_diagnose_serialization(_payload((), spec), [chunk_calls])) from None
    return Chunk(
        index=-1, start=-1, stop=-1, calls_blob=blob, calls=chunk_calls,
        streams=tuple(streams) if spec is not None and streams is not None else None,
    )


def _payload(packages: tuple[str, ...], spec: _rng.RngSpec | None) -> Payload:
    return Payload(
        function=call_item,
        args=(None,) * _COLUMNS,
        kwargs={},
        pos_slots=tuple((i, i) for i in range(_COLUMNS)),
        kw_slots=(),
        exec_objects={},
        packages=packages,
        rng=spec,
        function_name=_describe(call_item),
        sources=None,
    )


def open_plan(context_packages: Sequence[str], spec: _rng.RngSpec | None) -> TaskPlan:
    """An empty open plan: chunks come through its ``feed``.

    Args:
        context_packages: The context's ``packages_to_load`` (imported on each worker first).
        spec: The RNG spec (``rng_scope="task"``), or None.
    """
    if spec is not None and spec.scope != "task":
        raise RxArgumentError("an open plan's streams are per call: rng_scope='task'")
    payload = _payload(tuple(dict.fromkeys(_check_packages("compute context packages_to_load", context_packages))), spec)
    plan = TaskPlan(
        n_tasks=0,
        chunk_size=1,
        chunks=[],
        payload=payload,
        payload_blob=cloudpickle.dumps(payload),
        names=None,
        once_per_elem=False,
        nodes=None,
        function_name=payload.function_name,
    )
    plan.feed = ChunkFeed(plan)
    return plan
