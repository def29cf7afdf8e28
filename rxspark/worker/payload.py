"""The job's payload on a worker: how it travels (``PayloadRef``), and loading it once per process.

A context ships a job's payload as one of the references here; a worker
loads it (unpickles it, imports ``packages_to_load``, binds exec objects as
globals of a copy of the function) once per process and keeps it in a small
cache by key, so every chunk of a job after the first starts at once.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import cloudpickle

from ..plan import Payload
from .result import safe_str


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
        raise PayloadLoadError(f"{type(exc).__name__}: {safe_str(exc)}") from exc


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


def load_prepared(ref: PayloadRef, node: str) -> tuple[_Prepared, bool]:
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
