"""JobSpec: one ``rx_exec`` call, validated once, frozen and serializable.

Every front end (``rx_exec``, ``revoscalepy.rx_exec``, ``RxExecutor``) turns
its arguments into a :class:`JobSpec` with :meth:`JobSpec.create`, where every
argument error is raised, before anything runs. Downstream reads only the
spec: :func:`rxspark.plan.lay_out` makes its chunks for a context, and
:class:`rxspark.jobs.RxJob` runs it (failure policy, output, records).

Nothing here asks a compute context anything that could start an engine: the
number of tasks when it is "one per compute element" and the default chunk
size (the context's parallelism) are decided by ``lay_out``, in the job's own
thread, so ``rx_exec(..., wait=False)`` returns at once on every context.

The spec holds the payload (function, shared arguments with slots for the
per-call values, exec objects, packages, RNG spec), serialized once
(``payload_blob``), the per-call values, and the run options. It pickles
whole (cloudpickle) but for ``callback``, a driver-side hook, which is left
out: a stored spec can be read back and run by another process.

To add an ``rx_exec`` argument: its field and its check here, its parameter
in :func:`rxspark.api.rx_exec`; then the module that uses it reads ``spec.<name>``.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from . import rng as _rng
from ._arguments import (
    check_bool,
    check_packages,
    describe,
    diagnose_serialization,
    is_int,
    lookup_exec_objects,
    per_call_entries,
    rebindable,
)
from ._sources import build_table
from ._warn import exec_object_sizes, warn_if_large
from .errors import RxArgumentError, RxArgumentTypeError
from .options import get_option
from .plan import ChunkCalls, Payload, call_arguments

__all__ = ["JobSpec", "rx_elem_arg", "ELEM_TYPES"]

ELEM_TYPES = ("nodes", "cores")

Entry = tuple[tuple[Any, ...], dict[str, Any]]


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


@dataclass(frozen=True)
class JobSpec:
    """What the user asked for: one ``rx_exec`` call, validated. Build it with :meth:`create`.

    Attributes:
        function_name: The function's qualified name (for messages, bars, records).
        payload: What every task shares (function, template arguments, exec objects, packages, RNG spec).
        payload_blob: ``payload`` serialized (cloudpickle), once.
        columns: The per-call values, one sequence per slot of ``payload`` (``rx_elem_arg`` arguments).
        entries: The per-call ``elem_args`` / ``args`` entries (positional, keyword), or None.
        names: The names of named ``elem_args`` (results come back as a dict), or None.
        lengths: Where each per-call length came from (for messages).
        times_to_run: As given: a positive count, or -1.
        n_known: The number of tasks when the arguments fix it, else None (one task per compute
            element, or ``once_per_elem``: the context decides, when the job is laid out).
        elem_type: ``"nodes"`` or ``"cores"``.
        once_per_elem: Run once on each node.
        task_chunk_size: Tasks per chunk, or None (the context's parallelism decides).
        continue_on_failure: Keep going when a task raises.
        console_output: Print the tasks' output when results are collected (None: the context's).
        auto_cleanup: Delete the job's artifacts once its outcome is handed out (None: the context's).
        wait: Block for the results (None: the context's).
        durable: Checkpoint each finished chunk in the job store (None: a job that does not wait from
            its start, a waiting call once it has run the record delay; API.md section 12).
        detach: Run the job in a driver process of its own that outlives the caller (implies ``durable``).
        callback: Called on the driver with each task's result (not serialized).
    """

    function_name: str
    payload: Payload = field(repr=False)
    payload_blob: bytes = field(repr=False)
    columns: tuple[Sequence[Any], ...] = field(default=(), repr=False)
    entries: tuple[Entry, ...] | None = field(default=None, repr=False)
    names: tuple[str, ...] | None = None
    lengths: tuple[tuple[str, int], ...] = ()
    times_to_run: int = -1
    n_known: int | None = None
    elem_type: str = "nodes"
    once_per_elem: bool = False
    task_chunk_size: int | None = None
    continue_on_failure: bool = True
    console_output: bool | None = None
    auto_cleanup: bool | None = None
    wait: bool | None = None
    durable: bool | None = None
    detach: bool = False
    callback: Callable[[Any], Any] | None = field(default=None, compare=False)

    # ------------------------------------------------------------ what it says

    @property
    def rng(self) -> _rng.RngSpec | None:
        """The random-number spec (seed, kind, scope, streams), or None."""
        return self.payload.rng

    @property
    def per_call(self) -> bool:
        """Whether calls differ in their arguments (per-call columns or entries)."""
        return bool(self.columns) or self.entries is not None

    def __getstate__(self) -> dict[str, Any]:
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["callback"] = None  # a driver-side hook: it does not travel with a stored job
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------ building

    @classmethod
    def create(
        cls,
        function: Any,
        call_args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        frame: types.FrameType | None = None,
        context_packages: Sequence[str] = (),
        elem_args: Any = None,
        elem_type: Any = "nodes",
        once_per_elem: Any = False,
        times_to_run: Any = -1,
        packages_to_load: Any = None,
        exec_objects: Any = None,
        task_chunk_size: Any = None,
        console_output: Any = None,
        auto_cleanup: Any = None,
        continue_on_failure: Any = True,
        rng_seed: Any = None,
        rng_kind: Any = None,
        rng_scope: Any = "chunk",
        rng_streams: Sequence[int] | None = None,
        wait: Any = None,
        durable: Any = None,
        detach: Any = False,
        callback: Any = None,
        args: Any = None,
        local_state: Any = None,
    ) -> JobSpec:
        """Validate the arguments of one ``rx_exec`` call (everything but its compute context).

        Args:
            function: The function to run.
            call_args: Positional arguments of every call (``rx_elem_arg`` ones per call).
            kwargs: Keyword arguments of every call (``rx_elem_arg`` ones per call).
            frame: The caller's frame, where ``exec_objects`` given by name are looked up.
            context_packages: The compute context's ``packages_to_load`` (imported first).
            elem_args, elem_type, once_per_elem, times_to_run, packages_to_load, exec_objects,
                task_chunk_size, console_output, auto_cleanup, continue_on_failure, rng_seed,
                rng_kind, rng_scope, wait, durable, detach, callback, args, local_state: As for ``rx_exec``
                (``args`` is revoscalepy's form: a dict for every call, or a list of dicts, one per call).
            rng_streams: (``rng_scope="task"`` only) the stream of each task instead of its
                index: RxExecutor names a call's stream by its submission order.

        Raises:
            RxArgumentError: A bad value (``ValueError``).
            RxArgumentTypeError: A bad type, or arguments that do not fit the function (``TypeError``).
        """
        if not callable(function):
            raise RxArgumentTypeError(f"function must be callable, got {type(function).__name__} {function!r:.60}")
        function_name = describe(function)
        for name, value in (("console_output", console_output), ("auto_cleanup", auto_cleanup), ("wait", wait)):
            check_bool(name, value, allow_none=True)
        check_bool("continue_on_failure", continue_on_failure)
        check_bool("durable", durable, allow_none=True)
        check_bool("detach", detach)
        if detach and wait is True:
            raise RxArgumentError("detach=True needs wait=False (the job runs in a driver process of its own)")
        if detach and durable is False:
            raise RxArgumentError("detach=True implies durable: it cannot be combined with durable=False")
        if detach and callback is not None:
            raise RxArgumentError("detach=True cannot call a callback: the job runs in another process (collect it with rx_get_job_results)")
        if callback is not None and not callable(callback):
            raise RxArgumentTypeError(f"callback must be callable or None, got {type(callback).__name__}")
        if elem_type not in ELEM_TYPES:
            raise RxArgumentError(f"elem_type must be one of {list(ELEM_TYPES)}, got {elem_type!r}")
        check_bool("once_per_elem", once_per_elem)
        if once_per_elem and elem_type != "nodes":
            raise RxArgumentError("once_per_elem=True needs elem_type='nodes' (it runs once on each node)")
        if isinstance(times_to_run, bool) or not is_int(times_to_run) or (times_to_run < 1 and times_to_run != -1):
            raise RxArgumentError(f"times_to_run must be a positive int or -1 (from the per-call arguments), got {times_to_run!r}")
        times_to_run = int(times_to_run)
        if task_chunk_size is not None and (isinstance(task_chunk_size, bool) or not is_int(task_chunk_size) or task_chunk_size < 1):
            raise RxArgumentError(f"task_chunk_size must be None or a positive int, got {task_chunk_size!r}")
        rng = _rng.resolve(rng_seed, rng_kind, rng_scope)

        template = _Template.of(call_args, dict(kwargs or {}), elem_args, args)
        n_known = template.count(times_to_run, bool(once_per_elem))
        if rng_streams is not None:
            if rng is None or rng.scope != "task":
                raise RxArgumentError("rng_streams needs a seed and rng_scope='task'")
            streams = tuple(int(i) for i in rng_streams)
            if n_known is None or len(streams) != n_known or any(i < 0 for i in streams):
                raise RxArgumentError(f"rng_streams needs one non-negative stream index per task ({n_known}), got {len(streams)}")
            rng = dataclasses.replace(rng, streams=streams)
            _rng.check_stream_count(rng, max(streams, default=-1) + 1)
        elif rng is not None and rng.scope == "task" and n_known is not None:
            _rng.check_stream_count(rng, n_known)
        template.check_first_call(function, function_name)

        objects = lookup_exec_objects(exec_objects, local_state, frame)
        packages = tuple(
            dict.fromkeys(
                check_packages("compute context packages_to_load", list(context_packages))
                + check_packages("packages_to_load", packages_to_load)
            )
        )
        if (objects or packages) and not rebindable(function):
            raise RxArgumentError(
                f"exec_objects and packages_to_load are installed as globals of the function, which needs a Python "
                f"function (or a method or functools.partial of one); {function_name} is a {type(function).__name__}: "
                "wrap it in a def"
            )
        payload = Payload(
            function=function,
            args=tuple(template.args),
            kwargs=template.kwargs,
            pos_slots=tuple(template.pos_slots),
            kw_slots=tuple(template.kw_slots),
            exec_objects=objects,
            packages=packages,
            rng=rng,
            function_name=function_name,
            sources=build_table([function, *objects.values(), *template.args, *template.kwargs.values()]),
        )
        try:
            payload_blob = cloudpickle.dumps(payload)
        except Exception:  # noqa: BLE001 - find the culprit and say so
            raise RxArgumentError(diagnose_serialization(payload, None)) from None
        _warn_if_large(payload, len(payload_blob))
        return cls(
            function_name=function_name,
            payload=payload,
            payload_blob=payload_blob,
            columns=tuple(template.columns),
            entries=tuple(template.entries) if template.entries is not None else None,
            names=tuple(template.names) if template.names is not None else None,
            lengths=tuple(template.lengths.items()),
            times_to_run=times_to_run,
            n_known=n_known,
            elem_type=elem_type,
            once_per_elem=bool(once_per_elem),
            task_chunk_size=int(task_chunk_size) if task_chunk_size is not None else None,
            continue_on_failure=continue_on_failure,
            console_output=console_output,
            auto_cleanup=auto_cleanup,
            wait=False if detach else wait,
            durable=True if detach else durable,
            detach=bool(detach),
            callback=callback,
        )

    # ------------------------------------------------------------ facts a context supplies

    def count(self, parallelism: Callable[[], int], nodes: Callable[[], Sequence[str]]) -> tuple[int, list[str] | None]:
        """The number of tasks on a context, and for ``once_per_elem`` the node of each task.

        Args:
            parallelism: The context's parallelism (asked only when needed).
            nodes: The context's node names (asked only when needed).

        Raises:
            RxArgumentError: ``once_per_elem`` with a count that is not the context's node count.
        """
        if self.once_per_elem:
            node_names = list(nodes())
            n = len(node_names)
            lengths = dict(self.lengths)
            fixed = {length for length in lengths.values() if length != 1} | ({len(self.names)} if self.names is not None else set())
            if self.times_to_run not in (-1, n) or fixed - {n}:
                raise RxArgumentError(
                    f"once_per_elem=True runs once on each of the {n} node(s); times_to_run must be -1 or {n} "
                    f"and per-call arguments of that length, got times_to_run={self.times_to_run}, lengths {lengths}"
                )
            return n, node_names
        if self.n_known is not None:
            return self.n_known, None
        return (parallelism() if self.elem_type == "cores" else len(nodes())), None


@dataclass
class _Template:
    """The shared arguments of every call with a slot for each per-call value (what the payload holds)."""

    args: list[Any]
    kwargs: dict[str, Any]
    pos_slots: list[tuple[int, int]]
    kw_slots: list[tuple[str, int]]
    columns: list[Sequence[Any]]
    entries: list[Entry] | None
    names: list[str] | None
    lengths: dict[str, int]

    @classmethod
    def of(cls, args: tuple[Any, ...], kwargs: dict[str, Any], elem_args: Any, rx_args: Any) -> _Template:
        entries, names, shared_from_args = per_call_entries(elem_args, rx_args)
        clash = sorted(set(shared_from_args) & set(kwargs))
        if clash:
            raise RxArgumentError(f"args and keyword arguments both set {clash}; give each argument once")
        kwargs.update(shared_from_args)
        t = cls(list(args), dict(kwargs), [], [], [], entries, names, {})
        # Every rx_elem_arg among the shared arguments becomes a per-call column (positional ones first).
        shared: list[tuple[Any, Any, str, Any, list[Any]]] = [
            (i, a, f"positional argument {i}", t.args, t.pos_slots) for i, a in enumerate(args)
        ]
        shared += [(k, v, f"keyword argument {k!r}", t.kwargs, t.kw_slots) for k, v in kwargs.items()]
        for key, value, where, template, slots in shared:
            if isinstance(value, rx_elem_arg):
                t.lengths[where] = len(value)
                if len(value) == 1:  # recycled to every call: part of the template
                    template[key] = value.values[0]
                else:
                    slots.append((key, len(t.columns)))
                    template[key] = None
                    t.columns.append(value.values)
        if entries is not None:
            t.lengths["elem_args" if names is not None or rx_args is None or isinstance(rx_args, Mapping) else "args"] = len(entries)
            if len(entries) == 1 and names is None:
                # A single entry is recycled to every call: fold it into the template.
                ep, ek = entries[0]
                t.args = list(ep) + t.args
                t.pos_slots = [(p + len(ep), c) for p, c in t.pos_slots]
                dup = sorted(set(ek) & set(t.kwargs))
                if dup:
                    raise RxArgumentError(f"elem_args entry sets keyword(s) {dup} that are also given to every call")
                t.kwargs.update(ek)
                t.entries = None
        return t

    def count(self, times_to_run: int, once_per_elem: bool) -> int | None:
        """The number of tasks the arguments fix (None: the context decides). Length-1 values are recycled."""
        fixed = {length for length in self.lengths.values() if length != 1}
        if self.names is not None:
            fixed.add(len(self.names))
        if len(fixed) > 1:
            raise RxArgumentError(f"per-call arguments have different lengths: {self.lengths}; they must agree (length 1 is recycled)")
        if once_per_elem:
            return None
        if times_to_run == -1:
            if fixed:
                return fixed.pop()
            return 1 if self.lengths else None
        if fixed - {times_to_run}:
            raise RxArgumentError(f"times_to_run={times_to_run} does not match the length of the per-call arguments {self.lengths}")
        return times_to_run

    def check_first_call(self, function: Any, function_name: str) -> None:
        """The first call must fit the function's signature (checked before anything runs)."""
        if self.entries is not None and self.entries:
            dup = sorted(set(self.entries[0][1]) & set(self.kwargs))
            if dup:
                raise RxArgumentError(f"elem_args entry 0 sets keyword(s) {dup} that are also given to every call")
        if any(len(column) == 0 for column in self.columns) or self.entries == []:
            return  # no call at all
        first = ChunkCalls(columns=[col[:1] for col in self.columns], entries=self.entries[:1] if self.entries is not None else None)
        first_args, first_kwargs = call_arguments(self.args, self.kwargs, self.pos_slots, self.kw_slots, first, 0)
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return  # some builtins have no signature: nothing to check
        try:
            signature.bind(*first_args, **first_kwargs)
        except TypeError as exc:
            raise RxArgumentTypeError(f"the arguments of call 0 do not fit {function_name}{signature}: {exc}") from None


def _warn_if_large(payload: Payload, payload_bytes: int) -> None:
    """Recommend ``rx_share`` for big exec objects or shared arguments (measured only for big payloads)."""
    threshold = get_option("exec_objects_warn_bytes")
    if payload_bytes <= threshold:
        return
    warn_if_large(exec_object_sizes(payload.exec_objects), threshold)
    shared_args = {f"positional argument {i}": a for i, a in enumerate(payload.args)}
    shared_args.update({f"keyword argument {k!r}": v for k, v in payload.kwargs.items()})
    warn_if_large(exec_object_sizes(shared_args), threshold, what="arguments")

