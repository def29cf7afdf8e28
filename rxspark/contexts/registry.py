"""Compute context names: each backend registers its own, and names are resolved here.

A backend module calls :func:`register` when it is imported::

    register("local", "RxLocalSeq", factory=RxLocalSeq)
    register("dopar", "RxForeachDoPar", needs="needs an executor; pass RxForeachDoPar(executor) ...")

:func:`create` makes the context a name stands for (``rx_set_compute_context("spark")``);
:func:`resolve` reads any ``compute_context`` argument (an object or a name).
A name nobody registered yet makes the registry import the modules of this
package it has not imported (found with ``pkgutil``), so a backend whose
module ``import rxspark`` does not load (``RxSpark``, kept apart from
pyspark) still resolves by name. A backend outside this package registers
when its own module is imported. Adding a backend is adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import RxArgumentError, RxArgumentTypeError
from .base import ComputeContext


@dataclass(frozen=True)
class Backend:
    """One registered context.

    Attributes:
        names: Its names, the short one first (``("local", "RxLocalSeq")``); looked up case-insensitively.
        factory: Makes the context with no arguments; None when it cannot be made from a name alone.
        needs: Why it cannot (``"needs an executor; ..."``), when ``factory`` is None.
    """

    names: tuple[str, ...]
    factory: Callable[[], Any] | None
    needs: str | None

    @property
    def label(self) -> str:
        """The names as listed in messages: ``'local'/'RxLocalSeq'``."""
        return "/".join(f"'{name}'" for name in self.names)


_lock = threading.Lock()
_backends: list[Backend] = []  # in the order they registered
_by_name: dict[str, Backend] = {}  # lower-case name -> backend
_discovered = False


def register(*names: str, factory: Callable[[], Any] | None = None, needs: str | None = None) -> None:
    """Make ``names`` stand for a compute context.

    Args:
        *names: The context's names, the short one first.
        factory: Makes the context with no arguments.
        needs: Instead of ``factory``: what the context needs that a name cannot give, worded to
            follow its name in the error (``"'dopar' needs an executor; ..."``).

    Raises:
        ValueError: No names, both or neither of ``factory`` and ``needs``, or a name
            another backend registered.
    """
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError("register: give the context's names")
    if (factory is None) == (needs is None):
        raise ValueError("register: give either a factory or what the context needs (needs=...)")
    backend = Backend(tuple(names), factory, needs)
    with _lock:
        for name in names:
            taken = _by_name.get(name.lower())
            if taken is not None and taken.names != backend.names:
                raise ValueError(f"register: the compute context name {name!r} is taken by {taken.label}")
        # The same names again (a module imported anew) replace their entry in place.
        _backends[:] = [b for b in _backends if b.names != backend.names] + [backend]
        for name in names:
            _by_name[name.lower()] = backend


def _discover() -> None:
    """Import this package's modules not imported yet, so that their backends register."""
    global _discovered
    if _discovered:
        return
    package = importlib.import_module(__package__ or "rxspark.contexts")
    # Not under _lock: an imported module registers (takes the lock), maybe in another thread too.
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _discovered = True


def lookup(name: str) -> Backend | None:
    """The backend registered as ``name`` (any case), or None."""
    key = name.lower()
    with _lock:
        backend = _by_name.get(key)
    if backend is None and not _discovered:
        _discover()
        with _lock:
            backend = _by_name.get(key)
    return backend


def listing() -> str:
    """Every registered name, for messages: those a name alone can make first, in the order they registered."""
    _discover()
    with _lock:
        ordered = [b for b in _backends if b.factory is not None] + [b for b in _backends if b.factory is None]
    return ", ".join(b.label for b in ordered)


def create(name: str, argument: str) -> Any:
    """Make the context registered as ``name``.

    Args:
        name: A registered name (any case).
        argument: The argument ``name`` came from, named in errors.

    Raises:
        RxArgumentError: ``name`` is unknown, or its context cannot be made from a name alone.
    """
    backend = lookup(name)
    if backend is None:
        raise RxArgumentError(
            f"{argument}: unknown compute context name {name!r}; use a context object or one of {listing()}"
        )
    if backend.factory is None:
        raise RxArgumentError(f"{argument}: '{backend.names[0]}' {backend.needs}")
    return backend.factory()


def resolve(value: Any, argument: str, *, none: bool = False) -> ComputeContext | None:
    """A ``compute_context`` argument as a context: the object itself, or the one its name makes.

    Args:
        value: A context object or a registered name (or None, when ``none`` allows it).
        argument: The argument ``value`` came from, named in errors.
        none: Whether None is accepted (returned as is: the caller's default applies).

    Raises:
        RxArgumentError: An unknown name, or one whose context needs more than a name.
        RxArgumentTypeError: Any other type.
    """
    if isinstance(value, ComputeContext) or (none and value is None):
        return value
    if isinstance(value, str):
        return create(value, argument)
    accepted = "None, a compute context or its name" if none else "a compute context or its name"
    raise RxArgumentTypeError(f"{argument} must be {accepted}, got {type(value).__name__}")
