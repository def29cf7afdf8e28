"""TaskPlan: a job laid out for a compute context, the data backends and workers read.

:func:`lay_out` turns a :class:`~rxspark.spec.JobSpec` into a :class:`TaskPlan`
once the context's facts are known (its parallelism and nodes, asked in the
job's own thread): the number of tasks, the chunk size and the chunks. Chunk
``k`` holds tasks ``[k*c, min((k+1)*c, n))`` and, when calls differ, only the
slice of the per-call values its tasks need, serialized once.

Here too are the shapes every backend and :func:`rxspark.worker.run_chunk`
share: :class:`Payload` (what every task of a job shares), :class:`Chunk`,
:class:`ChunkCalls` and :func:`call_arguments`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from . import rng as _rng
from ._arguments import diagnose_serialization
from ._sources import SourceTable
from .errors import RxArgumentError

if TYPE_CHECKING:
    from .feed import ChunkFeed
    from .spec import JobSpec


@dataclass
class Payload:
    """What every task of a job shares. Serialized once per job."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    pos_slots: tuple[tuple[int, int], ...]  # (position in args, column)
    kw_slots: tuple[tuple[str, int], ...]  # (keyword, column)
    exec_objects: dict[str, Any]
    packages: tuple[str, ...]
    rng: _rng.RngSpec | None
    function_name: str = ""
    sources: SourceTable | None = None  # where by-value code came from: for remote tracebacks only


@dataclass
class ChunkCalls:
    """The per-call arguments of one chunk's tasks."""

    columns: list[Sequence[Any]]  # one per slot, sliced to the chunk
    entries: list[tuple[tuple[Any, ...], dict[str, Any]]] | None  # elem_args entries
    # Where the by-value code of these calls came from, when it is not the payload's (an open
    # plan's functions travel with their calls): for remote tracebacks only.
    sources: SourceTable | None = None


def call_arguments(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    pos_slots: tuple[tuple[int, int], ...] | list[tuple[int, int]],
    kw_slots: tuple[tuple[str, int], ...] | list[tuple[str, int]],
    calls: ChunkCalls,
    local: int,
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of task ``local`` of a chunk: the shared template with its per-call values filled in."""
    call_args = list(args)
    for pos, col in pos_slots:
        call_args[pos] = calls.columns[col][local]
    call_kwargs = dict(kwargs)
    for key, col in kw_slots:
        call_kwargs[key] = calls.columns[col][local]
    if calls.entries is not None:
        entry_args, entry_kwargs = calls.entries[local]
        call_args[:0] = entry_args
        call_kwargs.update(entry_kwargs)
    return call_args, call_kwargs


@dataclass
class Chunk:
    """Tasks ``[start, stop)`` of a job, run in order in one process.

    ``calls`` is kept in memory for in-process contexts and dropped when the
    chunk is pickled; ``calls_blob`` (cloudpickle of it) travels instead.
    ``streams`` (``rng_scope="task"`` only): the stream each task draws from,
    when it is not named by the payload's RNG spec (an open plan's chunks).
    """

    index: int
    start: int
    stop: int
    calls_blob: bytes | None = None
    calls: ChunkCalls | None = field(default=None, repr=False, compare=False)
    streams: tuple[int, ...] | None = None

    def stream_of(self, local: int) -> int:
        """The stream index of task ``local`` of this chunk (before the spec's own mapping)."""
        return self.streams[local] if self.streams is not None else self.start + local

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["calls"] = None
        return state

    def get_calls(self) -> ChunkCalls | None:
        if self.calls is None and self.calls_blob is not None:
            self.calls = cloudpickle.loads(self.calls_blob)
        return self.calls

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass
class TaskPlan:
    """The resolved layout of one ``rx_exec`` call."""

    n_tasks: int
    chunk_size: int
    chunks: list[Chunk]
    payload: Payload
    payload_blob: bytes
    names: list[str] | None  # named elem_args -> dict results
    once_per_elem: bool
    nodes: list[str] | None  # once_per_elem: node of each task
    function_name: str
    # An open plan (rxspark.feed.open_plan): chunks are added while its job runs, until the feed closes.
    feed: ChunkFeed | None = None
    # The spec it was laid out from (None for an open plan).
    spec: JobSpec | None = field(default=None, repr=False, compare=False)
    # A resumed job runs only its chunks without a checkpoint: ``chunks`` lists those, and this
    # is how many the job has in all (None: ``len(chunks)``).
    total_chunks: int | None = None

    @property
    def rng(self) -> _rng.RngSpec | None:
        return self.payload.rng

    @property
    def chunk_count(self) -> int:
        """The job's number of chunks (those to run and, for a resumed job, those saved)."""
        return len(self.chunks) if self.total_chunks is None else self.total_chunks

    def only(self, indices: set[int] | list[int]) -> TaskPlan:
        """This plan with only the chunks ``indices`` to run (the others are done)."""
        wanted = set(indices)
        return dataclasses.replace(self, chunks=[c for c in self.chunks if c.index in wanted], total_chunks=self.chunk_count)

    def chunk_of(self, task_index: int) -> int:
        return task_index // self.chunk_size


def lay_out(
    spec: JobSpec,
    parallelism: Callable[[], int],
    nodes: Callable[[], Sequence[str]],
    stored: dict[str, Any] | None = None,
) -> TaskPlan:
    """Lay out ``spec``'s tasks in chunks for a context.

    Args:
        spec: The job.
        parallelism: The context's parallelism (the default number of chunks).
        nodes: The context's node names (``elem_type="nodes"``, ``once_per_elem``).
        stored: A durable job's stored layout (``n_tasks``, ``chunk_size``, ``nodes``): used as it
            is, whatever the context (a resumed job keeps the chunks it had).

    Raises:
        RxArgumentError: What the context's facts make impossible (``once_per_elem`` with another
            count than its nodes, more streams than the generator kind has), or per-call values
            that cannot be serialized.
    """
    if stored is not None:
        n, node_names = int(stored["n_tasks"]), stored.get("nodes")
        chunk_size = int(stored["chunk_size"])
    else:
        n, node_names = spec.count(parallelism, nodes)
        if spec.once_per_elem:
            chunk_size = 1  # one task on each node
        elif spec.task_chunk_size is not None:
            chunk_size = spec.task_chunk_size
        else:
            chunk_size = max(1, math.ceil(n / max(1, parallelism())))
    n_chunks = math.ceil(n / chunk_size) if n else 0
    rng = spec.rng
    if rng is not None:
        _rng.check_stream_count(rng, n_chunks if rng.scope == "chunk" else (max(rng.streams, default=-1) + 1 if rng.streams else n))

    chunks: list[Chunk] = []
    for k in range(n_chunks):
        start, stop = k * chunk_size, min((k + 1) * chunk_size, n)
        chunk = Chunk(index=k, start=start, stop=stop)
        if spec.per_call:
            chunk.calls = ChunkCalls(
                columns=[col[start:stop] for col in spec.columns],
                entries=list(spec.entries[start:stop]) if spec.entries is not None else None,
            )
            try:
                chunk.calls_blob = cloudpickle.dumps(chunk.calls)
            except Exception:  # noqa: BLE001 - find the culprit and say so
                raise RxArgumentError(diagnose_serialization(spec.payload, [chunk.calls])) from None
        chunks.append(chunk)
    return TaskPlan(
        n_tasks=n,
        chunk_size=chunk_size,
        chunks=chunks,
        payload=spec.payload,
        payload_blob=spec.payload_blob,
        names=list(spec.names) if spec.names is not None else None,
        once_per_elem=spec.once_per_elem,
        nodes=node_names,
        function_name=spec.function_name,
        spec=spec,
    )
