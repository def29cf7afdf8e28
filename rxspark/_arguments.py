"""Checks and normal forms of ``rx_exec``'s arguments, shared by every front end.

Pure functions, no I/O: each takes one argument as the user gave it and returns
its normal form or raises an error that names the argument and what is
accepted (``RxArgumentError`` for a bad value, ``RxArgumentTypeError`` for a
bad type). :meth:`rxspark.spec.JobSpec.create` calls them; so do the other
places that take the same arguments (contexts, job functions, open plans).
"""

from __future__ import annotations

import keyword
import numbers
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import cloudpickle

from .errors import RxArgumentError, RxArgumentTypeError

if TYPE_CHECKING:
    from .plan import ChunkCalls, Payload


def describe(function: Any) -> str:
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    if name is None and hasattr(function, "func"):
        return f"partial({describe(function.func)})"
    return name or type(function).__name__


def check_bool(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, bool):
        accepted = "True, False or None" if allow_none else "True or False"
        raise RxArgumentTypeError(f"{name} must be {accepted}, got {value!r}")


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def normalize_entry(entry: Any, where: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(entry, Mapping):
        bad = [k for k in entry if not isinstance(k, str)]
        if bad:
            raise RxArgumentTypeError(f"{where}: keyword names must be strings, got {bad[0]!r}")
        return (), dict(entry)
    if isinstance(entry, tuple):
        return entry, {}
    return (entry,), {}


def per_call_entries(elem_args: Any, args: Any) -> tuple[list[tuple[tuple[Any, ...], dict[str, Any]]] | None, list[str] | None, dict[str, Any]]:
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
            entries = [normalize_entry(v, f"elem_args[{k!r}]") for k, v in elem_args.items()]
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
            entries = [normalize_entry(v, f"elem_args[{i}]") for i, v in enumerate(elem_args)]
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
            entries = [normalize_entry(e, f"args[{i}]") for i, e in enumerate(args)]
        else:
            raise RxArgumentTypeError(f"args must be a dict of keyword arguments or a list of dicts, got {type(args).__name__}")
    return entries, names, shared


def lookup_exec_objects(exec_objects: Any, local_state: Any, frame: types.FrameType | None) -> dict[str, Any]:
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


def check_packages(name: str, packages: Any) -> tuple[str, ...]:
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


def rebindable(function: Any) -> bool:
    """Whether exec objects / packages can be installed as globals of ``function``."""
    if isinstance(function, types.FunctionType):
        return True
    if isinstance(function, types.MethodType):
        return rebindable(function.__func__)
    func = getattr(function, "func", None)  # functools.partial
    return func is not None and hasattr(function, "args") and rebindable(func)


def diagnose_serialization(payload: Payload, calls: list[ChunkCalls] | None) -> str:
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
