"""run_chunk: the one function every compute context runs on its workers.

For one chunk it loads the job's payload (once per worker process, cached by
key: :mod:`.payload`), starts the RNG stream(s), runs the tasks in order while
capturing their output (:mod:`.capture`) and timing them, and turns user
exceptions into :class:`~rxspark.errors.RxTaskError` records (:mod:`.failures`).
Results travel back as one :class:`~.result.ChunkResult`; user errors are
data, so no engine ever retries them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from array import array
from typing import Any

from ..plan import Chunk, call_arguments
from ..rng import Streams
from .capture import Capture
from .failures import failed_chunk, task_error, unloadable
from .payload import PackageImportError, PayloadLoadError, PayloadRef, load_prepared
from .result import ChunkResult, serialize_values


def default_node() -> str:
    return socket.gethostname()


class ChunkCanceled(Exception):
    """The job was canceled while this chunk ran (in-process contexts only)."""


def run_chunk(
    ref: PayloadRef,
    chunk: Chunk,
    serialize_results: bool = True,
    node: str | None = None,
    stop: threading.Event | None = None,
) -> ChunkResult:
    """Run every task of ``chunk`` in order and report the results.

    Args:
        ref: Where the job's payload comes from (cached per process by ``ref.key``).
        chunk: The chunk to run.
        serialize_results: Serialize the values (remote workers) or keep them
            as objects (in-process contexts).
        node: Name of the node reported with errors; defaults to the host name.
        stop: In-process contexts only: checked between tasks; once set, the
            chunk ends with :class:`ChunkCanceled`.

    Returns:
        The chunk's values, errors, captured output and timings.
    """
    node = node or default_node()
    result = ChunkResult(chunk.index, chunk.start, chunk.stop, node, os.getpid())
    n = chunk.stop - chunk.start
    try:
        prepared, result.payload_loaded = load_prepared(ref, node)
    except PackageImportError as exc:
        return failed_chunk(result, chunk, "ModuleNotFoundError", str(exc), serialize_results)
    except PayloadLoadError as exc:  # deterministic: every attempt would fail alike, so it is not retried
        # No task of the job can run here: the driver fails the whole job once (ChunkResult.load_values).
        why, result.payload_module = unloadable("the job's function and shared arguments", node, exc)
        result.payload_error = why
        return failed_chunk(result, chunk, "RxPayloadError", why, serialize_results)
    try:
        calls = chunk.get_calls()
    except Exception as exc:  # noqa: BLE001 - as above, for the chunk's own per-call arguments (only its tasks fail)
        why, _ = unloadable(f"the per-call arguments of chunk {chunk.index}", node, exc)
        return failed_chunk(result, chunk, "RxPayloadError", why, serialize_results)

    payload = prepared.payload
    function = prepared.function
    args, kwargs = payload.args, payload.kwargs
    pos_slots, kw_slots = payload.pos_slots, payload.kw_slots
    per_task_stream = payload.rng is not None and payload.rng.scope == "task"
    values: list[Any] = []
    offsets = [0]
    append, offset = values.append, offsets.append
    clock = time.perf_counter
    between_tasks = stop is not None or per_task_stream
    with Streams(payload.rng) as streams, Capture() as buffer:
        tell = buffer.tell
        if not per_task_stream:
            streams.start(chunk.index)
        # One clock reading per task: task i took stamps[i + 1] - stamps[i].
        stamps = array("d", [clock()])
        stamp = stamps.append
        for local in range(n):
            if between_tasks:
                if stop is not None and stop.is_set():
                    raise ChunkCanceled(chunk.index)
                if per_task_stream:
                    streams.start(chunk.stream_of(local))
            if calls is None:
                call_args, call_kwargs = args, kwargs
            else:
                call_args, call_kwargs = call_arguments(args, kwargs, pos_slots, kw_slots, calls, local)
            try:
                append(function(*call_args, **call_kwargs))
            except BaseException as exc:  # noqa: BLE001 - any user exception is data (never retried) ...
                if isinstance(exc, KeyboardInterrupt):  # ... but Ctrl-C stops the chunk
                    raise
                append(None)
                task = chunk.start + local
                sources = calls.sources if calls is not None and calls.sources is not None else payload.sources
                result.errors[task], cause = task_error(task, chunk.index, exc, node, sources=sources)
                if cause is not None:
                    result.causes[task] = cause
            stamp(clock())
            offset(tell())
        output = buffer.getvalue()
    result.output = output if output else ""
    result.offsets = offsets if output else []
    # array('d') pickles as one buffer (1e6 floats: 8 MB raw instead of 9 MB of pickled floats, 4x faster).
    result.times = array("d", [b - a for a, b in zip(stamps, stamps[1:])])
    if serialize_results:
        result.values_blob = serialize_values(values, result, node)
    else:
        result.values = values
    return result
