"""TaskPlan: turn the arguments of ``rx_exec`` into tasks and chunks.

Pure data and validation, no I/O and no backend knowledge. The plan holds:

* the *payload*, what every task shares (function, shared arguments with
  slots for per-call values, exec objects, packages, RNG spec), serialized
  once per job;
* the *chunks*: chunk ``k`` holds tasks ``[k*c, min((k+1)*c, n))`` and, when
  there are per-call arguments, only the slice of them its tasks need.

Every argument error is raised here, before anything runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import math
import numbers
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from . import rng as _rng
from ._sources import SourceTable, build_table
from ._warn import exec_object_sizes, warn_if_large
from .errors import RxArgumentError, RxArgumentTypeError
from .options import get_option

if TYPE_CHECKING:
    from .feed import ChunkFeed

ELEM_TYPES = ("nodes", "cores")


class rx_elem_arg:  # noqa: N801 - the public name follows RevoScaleR's rxElemArg
    """Mark an argument of ``rx_exec`` as per call: call *i* gets ``values[i]``.

    Args:
        values: Any sized, indexable sequence: list, tuple, range, NumPy array,
            pandas Series (indexed by position).
    """

    __slots__ = ("values",)

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes, Mapping, set, frozenset)) or not hasattr(values, "__len__"):
            raise RxArgumentTypeError(
                "rx_elem_arg needs a sized sequence (list, tuple, range, numpy array, pandas Series), "
                f"got {type(values).__name__}"
            )
        if hasattr(values, "iloc") and hasattr(values, "to_numpy"):  # pandas: by position, not label
            values = values.to_numpy()
        elif not hasattr(values, "__getitem__"):
            raise RxArgumentTypeError(f"rx_elem_arg needs an indexable sequence, got {type(values).__name__}")
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"rx_elem_arg(<{len(self)} values>)"


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

    @property
    def rng(self) -> _rng.RngSpec | None:
        return self.payload.rng

    def chunk_of(self, task_index: int) -> int:
        return task_index // self.chunk_size


# --------------------------------------------------------------------------- helpers


def _describe(function: Any) -> str:
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    if name is None and hasattr(function, "func"):
        return f"partial({_describe(function.func)})"
    return name or type(function).__name__


def _check_bool(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, bool):
        accepted = "True, False or None" if allow_none else "True or False"
        raise RxArgumentTypeError(f"{name} must be {accepted}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _normalize_entry(entry: Any, where: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(entry, Mapping):
        bad = [k for k in entry if not isinstance(k, str)]
        if bad:
            raise RxArgumentTypeError(f"{where}: keyword names must be strings, got {bad[0]!r}")
        return (), dict(entry)
    if isinstance(entry, tuple):
        return entry, {}
    return (entry,), {}


def _per_call_entries(elem_args: Any, args: Any) -> tuple[list[tuple[tuple[Any, ...], dict[str, Any]]] | None, list[str] | None, dict[str, Any]]:
    """Resolve ``elem_args`` and revoscalepy ``args`` into per-call entries.

    Returns (entries or None, names or None, shared kwargs from an ``args`` dict).
    """
    entries = None
    names = None
    shared: dict[str, Any] = {}
    if elem_args is not None:
        if isinstance(elem_args, Mapping):
            names = list(elem_args)
            bad = [k for k in names if not isinstance(k, str)]
            if bad:
                raise RxArgumentTypeError(f"elem_args given as a dict needs string names, got {bad[0]!r}")
            entries = [_normalize_entry(v, f"elem_args[{k!r}]") for k, v in elem_args.items()]
        elif (
            isinstance(elem_args, (str, bytes))
            or not isinstance(elem_args, Sequence) and not hasattr(elem_args, "__array__")
            or getattr(elem_args, "ndim", 1) == 0
        ):
            raise RxArgumentTypeError(
                "elem_args must be a sequence (one entry per call) or a dict of name -> entry, "
                f"got {type(elem_args).__name__}"
            )
        else:
            entries = [_normalize_entry(v, f"elem_args[{i}]") for i, v in enumerate(elem_args)]
    if args is not None:
        if isinstance(args, Mapping):
            bad = [k for k in args if not isinstance(k, str)]
            if bad:
                raise RxArgumentTypeError(f"args must map keyword names (strings), got {bad[0]!r}")
            shared = dict(args)
        elif isinstance(args, (list, tuple)):
            if entries is not None:
                raise RxArgumentError("give per-call arguments either as elem_args or as a list in args, not both")
            for i, entry in enumerate(args):
                if not isinstance(entry, Mapping):
                    raise RxArgumentTypeError(f"args as a list needs one dict per call; args[{i}] is {type(entry).__name__}")
            entries = [_normalize_entry(e, f"args[{i}]") for i, e in enumerate(args)]
        else:
            raise RxArgumentTypeError(f"args must be a dict of keyword arguments or a list of dicts, got {type(args).__name__}")
    return entries, names, shared


def _lookup_exec_objects(exec_objects: Any, local_state: Any, frame: types.FrameType | None) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    if exec_objects is not None:
        if isinstance(exec_objects, Mapping):
            objects.update(exec_objects)
        elif isinstance(exec_objects, str) or not isinstance(exec_objects, (list, tuple)):
            raise RxArgumentTypeError(
                "exec_objects must be a dict name -> object or a list of names, "
                f"got {type(exec_objects).__name__}"
            )
        else:
            for name in exec_objects:
                if not isinstance(name, str):
                    raise RxArgumentTypeError(f"exec_objects names must be strings, got {name!r}")
                if frame is not None and name in frame.f_locals:
                    objects[name] = frame.f_locals[name]
                elif frame is not None and name in frame.f_globals:
                    objects[name] = frame.f_globals[name]
                else:
                    raise RxArgumentError(f"exec_objects: no object named {name!r} in the caller's locals or globals")
    if local_state is not None:
        if not isinstance(local_state, Mapping):
            raise RxArgumentTypeError(f"local_state must be a dict name -> object, got {type(local_state).__name__}")
        clash = sorted(set(local_state) & set(objects))
        if clash:
            raise RxArgumentError(f"local_state and exec_objects both name {clash}; give each object once")
        objects.update(local_state)
    for name in objects:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise RxArgumentError(f"exec_objects names must be Python identifiers, got {name!r}")
    return objects


def _check_packages(name: str, packages: Any) -> tuple[str, ...]:
    if packages is None:
        return ()
    if isinstance(packages, str):
        packages = [packages]
    if not isinstance(packages, (list, tuple)):
        raise RxArgumentTypeError(f"{name} must be a list of module names, got {type(packages).__name__}")
    for module in packages:
        if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
            raise RxArgumentError(f"{name}: {module!r} is not a module name (like 'numpy' or 'scipy.stats')")
    return tuple(packages)


def _rebindable(function: Any) -> bool:
    """Whether exec objects / packages can be installed as globals of ``function``."""
    if isinstance(function, types.FunctionType):
        return True
    if isinstance(function, types.MethodType):
        return _rebindable(function.__func__)
    func = getattr(function, "func", None)  # functools.partial
    return func is not None and hasattr(function, "args") and _rebindable(func)


def _diagnose_serialization(payload: Payload, calls: list[ChunkCalls] | None) -> str:
    """Find which part of a job cannot be serialized, for the error message."""

    def fails(obj: Any) -> str | None:
        try:
            cloudpickle.dumps(obj)
        except Exception as exc:  # noqa: BLE001 - reported to the user
            return f"{type(exc).__name__}: {exc}"
        return None

    why = fails(payload.function)
    if why:
        return f"function {payload.function_name} cannot be serialized ({why})"
    for i, a in enumerate(payload.args):
        why = fails(a)
        if why:
            return f"positional argument {i} cannot be serialized ({why})"
    for k, v in payload.kwargs.items():
        why = fails(v)
        if why:
            return f"keyword argument {k!r} cannot be serialized ({why})"
    for k, v in payload.exec_objects.items():
        why = fails(v)
        if why:
            return f"exec_objects[{k!r}] cannot be serialized ({why})"
    for chunk_calls in calls or []:
        for column in chunk_calls.columns:
            for v in column:
                why = fails(v)
                if why:
                    return f"a per-call argument value cannot be serialized ({why})"
        for entry in chunk_calls.entries or []:
            why = fails(entry)
            if why:
                return f"an elem_args/args entry cannot be serialized ({why})"
    return "the job cannot be serialized"


def serialize(obj: Any, what: str) -> bytes:
    try:
        return cloudpickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001
        raise RxArgumentError(f"{what} cannot be serialized: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- build


def build_plan(
    function: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    elem_args: Any,
    elem_type: Any,
    once_per_elem: Any,
    times_to_run: Any,
    packages_to_load: Any,
    context_packages: Sequence[str],
    exec_objects: Any,
    task_chunk_size: Any,
    rng_seed: Any,
    rng_kind: Any,
    rng_scope: Any,
    rx_args: Any,
    local_state: Any,
    parallelism: int,
    nodes: Callable[[], Sequence[str]],
    frame: types.FrameType | None = None,
    rng_streams: Sequence[int] | None = None,
) -> TaskPlan:
    """Validate the arguments of one ``rx_exec`` call and lay out its tasks.

    ``rng_streams`` (``rng_scope="task"`` only, one non-negative int per task): the
    stream each task draws from, instead of its task index (RxExecutor: a call's
    submission index, so results do not depend on how calls were batched).

    Raises:
        RxArgumentError: A bad value (``ValueError``).
        RxArgumentTypeError: A bad type, or arguments that do not fit the function (``TypeError``).
    """
    if not callable(function):
        raise RxArgumentTypeError(f"function must be callable, got {type(function).__name__} {function!r:.60}")
    function_name = _describe(function)

    if elem_type not in ELEM_TYPES:
        raise RxArgumentError(f"elem_type must be one of {list(ELEM_TYPES)}, got {elem_type!r}")
    _check_bool("once_per_elem", once_per_elem)
    if once_per_elem and elem_type != "nodes":
        raise RxArgumentError("once_per_elem=True needs elem_type='nodes' (it runs once on each node)")
    if isinstance(times_to_run, bool) or not _is_int(times_to_run) or (times_to_run < 1 and times_to_run != -1):
        raise RxArgumentError(f"times_to_run must be a positive int or -1 (from the per-call arguments), got {times_to_run!r}")
    times_to_run = int(times_to_run)
    if task_chunk_size is not None and (isinstance(task_chunk_size, bool) or not _is_int(task_chunk_size) or task_chunk_size < 1):
        raise RxArgumentError(f"task_chunk_size must be None or a positive int, got {task_chunk_size!r}")
    spec = _rng.resolve(rng_seed, rng_kind, rng_scope)

    entries, names, shared_from_args = _per_call_entries(elem_args, rx_args)
    kwargs = dict(kwargs)
    clash = sorted(set(shared_from_args) & set(kwargs))
    if clash:
        raise RxArgumentError(f"args and keyword arguments both set {clash}; give each argument once")
    kwargs.update(shared_from_args)

    # Per-call columns: every rx_elem_arg among the shared arguments.
    columns: list[Any] = []
    lengths: dict[str, int] = {}
    template_args = list(args)
    pos_slots: list[tuple[int, int]] = []
    kw_slots: list[tuple[str, int]] = []
    for i, a in enumerate(args):
        if isinstance(a, rx_elem_arg):
            lengths[f"positional argument {i}"] = len(a)
            if len(a) == 1:
                template_args[i] = a.values[0]
            else:
                pos_slots.append((i, len(columns)))
                template_args[i] = None
                columns.append(a.values)
    template_kwargs = dict(kwargs)
    for k, v in kwargs.items():
        if isinstance(v, rx_elem_arg):
            lengths[f"keyword argument {k!r}"] = len(v)
            if len(v) == 1:
                template_kwargs[k] = v.values[0]
            else:
                kw_slots.append((k, len(columns)))
                template_kwargs[k] = None
                columns.append(v.values)
    if entries is not None:
        lengths["elem_args" if names is not None or rx_args is None or isinstance(rx_args, Mapping) else "args"] = len(entries)
        if len(entries) == 1 and names is None:
            # A single entry is recycled to every call: fold it into the template.
            ep, ek = entries[0]
            template_args = list(ep) + template_args
            pos_slots = [(p + len(ep), c) for p, c in pos_slots]
            dup = sorted(set(ek) & set(template_kwargs))
            if dup:
                raise RxArgumentError(f"elem_args entry sets keyword(s) {dup} that are also given to every call")
            template_kwargs.update(ek)
            entries = None

    # Number of tasks. Length-1 per-call arguments are recycled; named calls never are.
    fixed = {length for length in lengths.values() if length != 1}
    if names is not None:
        fixed.add(len(names))
    if len(fixed) > 1:
        raise RxArgumentError(f"per-call arguments have different lengths: {lengths}; they must agree (length 1 is recycled)")
    node_names: list[str] | None = None
    if once_per_elem:
        node_names = list(nodes())
        n = len(node_names)
        if times_to_run not in (-1, n) or fixed - {n}:
            raise RxArgumentError(
                f"once_per_elem=True runs once on each of the {n} node(s); times_to_run must be -1 or {n} "
                f"and per-call arguments of that length, got times_to_run={times_to_run}, lengths {lengths}"
            )
    elif times_to_run == -1:
        if fixed:
            n = fixed.pop()
        elif lengths:
            n = 1
        else:
            n = parallelism if elem_type == "cores" else len(nodes())
    else:
        if fixed - {times_to_run}:
            raise RxArgumentError(
                f"times_to_run={times_to_run} does not match the length of the per-call arguments {lengths}"
            )
        n = times_to_run

    chunk_size = int(task_chunk_size) if task_chunk_size is not None else max(1, math.ceil(n / max(1, parallelism)))
    if once_per_elem:
        chunk_size = 1  # one task on each node
    n_chunks = math.ceil(n / chunk_size) if n else 0
    if rng_streams is not None:
        if spec is None or spec.scope != "task":
            raise RxArgumentError("rng_streams needs a seed and rng_scope='task'")
        streams = tuple(int(i) for i in rng_streams)
        if len(streams) != n or any(i < 0 for i in streams):
            raise RxArgumentError(f"rng_streams needs one non-negative stream index per task ({n}), got {len(streams)}")
        spec = dataclasses.replace(spec, streams=streams)
    _rng.check_stream_count(
        spec, n_chunks if spec is None or spec.scope == "chunk" else (max(spec.streams, default=-1) + 1 if spec.streams else n)
    )

    # The first call must fit the function's signature.
    if n:
        if entries is not None:
            dup = sorted(set(entries[0][1]) & set(template_kwargs))
            if dup:
                raise RxArgumentError(f"elem_args entry 0 sets keyword(s) {dup} that are also given to every call")
        first_calls = ChunkCalls(columns=[col[:1] for col in columns], entries=entries[:1] if entries is not None else None)
        first_args, first_kwargs = call_arguments(template_args, template_kwargs, pos_slots, kw_slots, first_calls, 0)
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            signature = None  # some builtins have no signature: nothing to check
        if signature is not None:
            try:
                signature.bind(*first_args, **first_kwargs)
            except TypeError as exc:
                raise RxArgumentTypeError(
                    f"the arguments of call 0 do not fit {function_name}{signature}: {exc}"
                ) from None

    objects = _lookup_exec_objects(exec_objects, local_state, frame)
    packages = tuple(dict.fromkeys(_check_packages("compute context packages_to_load", context_packages) + _check_packages("packages_to_load", packages_to_load)))
    if (objects or packages) and not _rebindable(function):
        raise RxArgumentError(
            f"exec_objects and packages_to_load are installed as globals of the function, which needs a Python "
            f"function (or a method or functools.partial of one); {function_name} is a {type(function).__name__}: "
            "wrap it in a def"
        )

    payload = Payload(
        function=function,
        args=tuple(template_args),
        kwargs=template_kwargs,
        pos_slots=tuple(pos_slots),
        kw_slots=tuple(kw_slots),
        exec_objects=objects,
        packages=packages,
        rng=spec,
        function_name=function_name,
        sources=build_table([function, *objects.values(), *template_args, *template_kwargs.values()]),
    )

    chunks: list[Chunk] = []
    all_calls: list[ChunkCalls] = []
    per_call = bool(columns) or entries is not None
    for k in range(n_chunks):
        start, stop = k * chunk_size, min((k + 1) * chunk_size, n)
        chunk = Chunk(index=k, start=start, stop=stop)
        if per_call:
            chunk.calls = ChunkCalls(
                columns=[col[start:stop] for col in columns],
                entries=entries[start:stop] if entries is not None else None,
            )
            all_calls.append(chunk.calls)
        chunks.append(chunk)

    try:
        payload_blob = cloudpickle.dumps(payload)
        for chunk in chunks:
            if chunk.calls is not None:
                chunk.calls_blob = cloudpickle.dumps(chunk.calls)
    except Exception:  # noqa: BLE001 - find the culprit and say so
        raise RxArgumentError(_diagnose_serialization(payload, all_calls)) from None

    _warn_if_large(payload, len(payload_blob))
    return TaskPlan(
        n_tasks=n,
        chunk_size=chunk_size,
        chunks=chunks,
        payload=payload,
        payload_blob=payload_blob,
        names=names,
        once_per_elem=bool(once_per_elem),
        nodes=node_names,
        function_name=function_name,
    )


def _warn_if_large(payload: Payload, payload_bytes: int) -> None:
    """Recommend ``rx_share`` for big exec objects or shared arguments (measured only for big payloads)."""
    threshold = get_option("exec_objects_warn_bytes")
    if payload_bytes <= threshold:
        return
    warn_if_large(exec_object_sizes(payload.exec_objects), threshold)
    shared_args = {f"positional argument {i}": a for i, a in enumerate(payload.args)}
    shared_args.update({f"keyword argument {k!r}": v for k, v in payload.kwargs.items()})
    warn_if_large(exec_object_sizes(shared_args), threshold, what="arguments")
