"""run_chunk: the one function every compute context runs on its workers.

For one chunk it loads the job's payload (once per worker process, cached by
key), imports ``packages_to_load``, installs exec objects as globals of the
function, starts the RNG stream(s), runs the tasks in order while capturing
their output and timing them, and turns user exceptions into
:class:`~rxspark.errors.RxTaskError` records. Results travel back as one
:class:`ChunkResult`; user errors are data, so no engine ever retries them.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import socket
import sys
import threading
import time
import traceback
import types
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import cloudpickle

from ._sources import SourceTable, format_exception
from .errors import RxPayloadError, RxTaskError
from .plan import Chunk, Payload, call_arguments
from .rng import Streams

# ---------------------------------------------------------------- payload refs


class PayloadRef(Protocol):
    """How a context ships the payload: a key for the cache and a way to load it."""

    key: str

    def load(self) -> Payload: ...


@dataclass(frozen=True)
class InlinePayload:
    """The serialized payload travels with the reference (small payloads, remote executors)."""

    key: str
    blob: bytes

    def load(self) -> Payload:
        return load_payload(self.blob)


@dataclass(frozen=True)
class FilePayload:
    """The payload was written once to a private file every worker can read."""

    key: str
    path: str

    def load(self) -> Payload:
        with open(self.path, "rb") as f:
            blob = f.read()
        return load_payload(blob)


@dataclass(frozen=True)
class LocalPayload:
    """In-process contexts: the payload object itself; nothing is deserialized."""

    key: str
    payload: Payload

    def load(self) -> Payload:
        return self.payload


@dataclass
class _Prepared:
    payload: Payload
    function: Any


_CACHE_SIZE = 4
_cache: OrderedDict[str, _Prepared] = OrderedDict()
_cache_lock = threading.Lock()
# Counters for tests and diagnostics: how often this process deserialized a payload.
stats: dict[str, int] = {"payload_loads": 0}


def _bind_globals(function: Any, extra: dict[str, Any]) -> Any:
    """A copy of ``function`` whose globals also hold ``extra``.

    The user's own function object (and module) is never modified: in-process
    contexts run in the driver, where that would leak into the user's namespace.
    """
    if isinstance(function, types.FunctionType):
        namespace = dict(function.__globals__)
        namespace.update(extra)
        bound = types.FunctionType(
            function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__
        )
        bound.__kwdefaults__ = function.__kwdefaults__
        bound.__dict__.update(function.__dict__)
        bound.__qualname__ = function.__qualname__
        bound.__module__ = function.__module__
        bound.__doc__ = function.__doc__
        return bound
    if isinstance(function, types.MethodType):
        return types.MethodType(_bind_globals(function.__func__, extra), function.__self__)
    return functools.partial(_bind_globals(function.func, extra), *function.args, **function.keywords)


class PackageImportError(Exception):
    """A module of packages_to_load could not be imported on this worker."""


class PayloadLoadError(Exception):
    """The job's payload (or a chunk's per-call arguments) arrived but cannot be unpickled here."""


def load_payload(blob: bytes) -> Payload:
    """Unpickle a payload; failing to (a module missing on this worker ...) is the job's problem, not the worker's."""
    try:
        return cloudpickle.loads(blob)
    except Exception as exc:  # noqa: BLE001 - reported per task
        raise PayloadLoadError(f"{type(exc).__name__}: {_safe_str(exc)}") from exc


def _prepare(payload: Payload, node: str) -> _Prepared:
    extra = dict(payload.exec_objects)
    for name in payload.packages:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported per task
            raise PackageImportError(
                f"packages_to_load: cannot import {name!r} on node {node}: {type(exc).__name__}: {exc}"
            ) from exc
        top = name.split(".")[0]
        extra[top] = sys.modules[top]
    function = _bind_globals(payload.function, extra) if extra else payload.function
    return _Prepared(payload, function)


def _load(ref: PayloadRef, node: str) -> tuple[_Prepared, bool]:
    with _cache_lock:
        prepared = _cache.get(ref.key)
        if prepared is not None:
            _cache.move_to_end(ref.key)
            return prepared, False
    payload = ref.load()
    if not isinstance(ref, LocalPayload):
        stats["payload_loads"] += 1
    prepared = _prepare(payload, node)
    with _cache_lock:
        _cache[ref.key] = prepared
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return prepared, True


def forget(key: str) -> None:
    """Drop a job's payload from this process's cache."""
    with _cache_lock:
        _cache.pop(key, None)


# ---------------------------------------------------------------- output capture

_capture = threading.local()


class _ThreadStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: writes of a thread running a task go
    to that task's buffer, everything else to the original stream."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def write(self, text: str) -> int:
        buffer = getattr(_capture, "buffer", None)
        if buffer is None:
            return self.original.write(text)
        return buffer.write(text)

    def flush(self) -> None:
        if getattr(_capture, "buffer", None) is None and self.original is not None:
            self.original.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


_install_lock = threading.Lock()
_install_count = 0


class _Capture:
    """Route this thread's stdout/stderr into one buffer for the chunk.

    The stand-ins are installed while any chunk runs and removed after the
    last. Whatever replaced ``sys.stdout`` in between (pytest, redirect_stdout)
    is wrapped in turn, so no chunk's output is lost.
    """

    def __enter__(self) -> io.StringIO:
        global _install_count
        with _install_lock:
            if not isinstance(sys.stdout, _ThreadStream):
                sys.stdout = _ThreadStream(sys.stdout)  # type: ignore[assignment]
            if not isinstance(sys.stderr, _ThreadStream):
                sys.stderr = _ThreadStream(sys.stderr)  # type: ignore[assignment]
            _install_count += 1
        _capture.buffer = io.StringIO()
        return _capture.buffer

    def __exit__(self, *exc: Any) -> None:
        global _install_count
        _capture.buffer = None
        with _install_lock:
            _install_count -= 1
            if _install_count == 0:
                if isinstance(sys.stdout, _ThreadStream):
                    sys.stdout = sys.stdout.original
                if isinstance(sys.stderr, _ThreadStream):
                    sys.stderr = sys.stderr.original


# ---------------------------------------------------------------- results


@dataclass
class ChunkResult:
    """What one chunk sends back. ``values`` (in-process) or ``values_blob`` is set."""

    index: int
    start: int
    stop: int
    node: str
    pid: int
    values: list[Any] | None = None
    values_blob: bytes | None = None
    errors: dict[int, RxTaskError] = field(default_factory=dict)
    causes: dict[int, bytes] = field(default_factory=dict)
    output: str = ""
    offsets: list[int] = field(default_factory=list)
    times: Any = field(default_factory=lambda: array("d"))  # seconds per task
    payload_loaded: bool = False
    # Set when the job's payload could not be loaded where the chunk ran: no task of it ran there.
    payload_error: str | None = None
    payload_module: str | None = None

    def get_values(self) -> list[Any]:
        if self.values is None:
            self.load_values()
        assert self.values is not None
        return self.values

    def payload_failure(self) -> RxPayloadError | None:
        """Why no task of this chunk ran, when the job's payload could not be loaded where it ran.

        No task of the job can run there either: the job fails as a whole, once,
        whatever ``continue_on_failure`` says (the job decides so when the chunk is delivered).
        """
        if self.payload_error is None:
            return None
        return RxPayloadError(
            f"{self.payload_error}. No task ran (found by chunk {self.index}, tasks {self.start}..{self.stop - 1})",
            self.payload_module,
        )

    def load_values(self) -> None:
        """Deserialize the values (on the driver; contexts do it before delivering the chunk).

        Values the driver cannot load (say, of a class that exists only on
        the workers) fail the chunk's tasks as RxTaskErrors, not the job. A
        chunk whose payload could not be loaded has no values (see
        :meth:`payload_failure`).
        """
        if self.values is not None:
            return
        n = self.stop - self.start
        if self.values_blob is None or self.payload_error is not None:
            self.values = [None] * n
            return
        try:
            self.values = cloudpickle.loads(self.values_blob)
        except Exception as exc:  # noqa: BLE001 - reported per task
            self.values = [None] * n
            why = (
                f"the results of chunk {self.index} (tasks {self.start}..{self.stop - 1}) cannot be loaded on the driver: "
                f"{type(exc).__name__}: {_safe_str(exc)} (does a result need a module or class the driver lacks?)"
            )
            for task in range(self.start, self.stop):
                self.errors.setdefault(task, RxTaskError(task, self.index, "RxResultDeserializationError", why, "", self.node))
        self.values_blob = None

    def task_output(self, local_index: int) -> str:
        if not self.offsets:
            return ""
        return self.output[self.offsets[local_index] : self.offsets[local_index + 1]]


def _safe_str(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` itself raises."""
    try:
        return str(exc)
    except Exception as err:  # noqa: BLE001
        return f"<str() of the {type(exc).__qualname__} failed: {type(err).__name__}>"


def _format_traceback(exc: BaseException, tb: types.TracebackType | None, sources: SourceTable | None) -> str:
    """The standard traceback text, with by-value frames pointed back at the driver's files (see _sources)."""
    try:
        return format_exception(exc, tb, sources)
    except Exception:  # noqa: BLE001 - never lose the error over its formatting
        return "".join(traceback.format_exception(type(exc), exc, tb))


def _task_error(
    task: int, chunk: int, exc: BaseException, node: str, skip_frames: int = 1, sources: SourceTable | None = None
) -> tuple[RxTaskError, bytes | None]:
    tb = exc.__traceback__
    for _ in range(skip_frames):  # drop rxspark's own frames
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = _format_traceback(exc, tb, sources)
    error = RxTaskError(task, chunk, type(exc).__qualname__, _safe_str(exc), text, node)
    try:
        exc.__traceback__ = None
        cause = cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 - the record alone still says everything
        cause = None
    return error, cause


def _serialize_values(values: list[Any], result: ChunkResult, node: str) -> bytes:
    try:
        return cloudpickle.dumps(values)
    except Exception:  # noqa: BLE001 - find which task's result is the problem
        pass
    for local, value in enumerate(values):
        try:
            cloudpickle.dumps(value)
        except Exception as exc:  # noqa: BLE001
            task = result.start + local
            result.errors[task] = RxTaskError(
                task,
                result.index,
                "RxResultSerializationError",
                f"the result of type {type(value).__module__}.{type(value).__qualname__} cannot be serialized: "
                f"{type(exc).__name__}: {_safe_str(exc)}",
                "",
                node,
            )
            values[local] = None
    return cloudpickle.dumps(values)


def _failed_chunk(result: ChunkResult, chunk: Chunk, exc_type: str, message: str, serialize_results: bool) -> ChunkResult:
    """The chunk's report when none of its tasks could run."""
    values: list[Any] = [None] * (chunk.stop - chunk.start)
    for task in range(chunk.start, chunk.stop):
        result.errors[task] = RxTaskError(task, chunk.index, exc_type, message, "", result.node)
    result.values_blob = cloudpickle.dumps(values) if serialize_results else None
    result.values = None if serialize_results else values
    return result


def _missing_module(exc: BaseException | None) -> str | None:
    """The module whose import failed while unpickling (``exc`` or what caused it), or None."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


def unloadable(what: str, node: str, exc: BaseException) -> tuple[str, str | None]:
    """(message, missing module) for ``what`` that cannot be unpickled on ``node``: what is wrong, and the fix.

    Functions and classes of an imported module travel by reference (only
    the module's name and the object's name); those of ``__main__`` or a
    notebook cell, or of a module registered with
    ``cloudpickle.register_pickle_by_value``, travel by value.
    """
    root = exc.__cause__ if isinstance(exc, PayloadLoadError) and exc.__cause__ is not None else exc
    message = f"{what} cannot be loaded on node {node}: {type(root).__name__}: {_safe_str(root)}"
    module = _missing_module(root)
    if module is not None:
        top = module.split(".")[0]
        return (
            f"{message}. They refer to the module {module!r} by name (it was imported on the driver, not defined "
            f"in __main__ or a notebook cell), and the workers cannot import it. Either send it with the job: "
            f"run `import cloudpickle, {top}; cloudpickle.register_pickle_by_value({top})` on the driver before "
            f"rx_exec; or install it on the workers (pip install it there, or ship it with spark-submit --py-files, "
            f"spark.submit.pyFiles or SparkContext.addPyFile)",
            module,
        )
    return (
        f"{message} (does it need a module that is missing on the workers, or a different version of it? Modules of "
        f"your own can travel with the job: cloudpickle.register_pickle_by_value(module) on the driver)",
        None,
    )


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
        prepared, result.payload_loaded = _load(ref, node)
    except PackageImportError as exc:
        return _failed_chunk(result, chunk, "ModuleNotFoundError", str(exc), serialize_results)
    except PayloadLoadError as exc:  # deterministic: every attempt would fail alike, so it is not retried
        # No task of the job can run here: the driver fails the whole job once (ChunkResult.load_values).
        why, result.payload_module = unloadable("the job's function and shared arguments", node, exc)
        result.payload_error = why
        return _failed_chunk(result, chunk, "RxPayloadError", why, serialize_results)
    try:
        calls = chunk.get_calls()
    except Exception as exc:  # noqa: BLE001 - as above, for the chunk's own per-call arguments (only its tasks fail)
        why, _ = unloadable(f"the per-call arguments of chunk {chunk.index}", node, exc)
        return _failed_chunk(result, chunk, "RxPayloadError", why, serialize_results)

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
    with Streams(payload.rng) as streams, _Capture() as buffer:
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
                result.errors[task], cause = _task_error(task, chunk.index, exc, node, sources=sources)
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
        result.values_blob = _serialize_values(values, result, node)
    else:
        result.values = values
    return result
