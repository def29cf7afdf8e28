"""Warnings that point at the user's code, and the large-object warning that recommends ``rx_share``.

:func:`user_stacklevel` is the one way rxspark finds the ``stacklevel`` of the
user's call: the first frame outside the package. :func:`exec_object_sizes`
and :func:`warn_if_large` measure exec objects and shared arguments for
``plan.py`` (which stays free of I/O and of the shared-data layer): a big
object there is serialized with the job and copied to every worker, so the
warning says how to store it once with ``rx_share`` instead.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

import cloudpickle

from .errors import RxLargeObjectWarning
from .options import get_option

__all__ = ["BY_REFERENCE", "exec_object_sizes", "human_size", "user_stacklevel", "warn_if_large"]

_PACKAGE = __name__.partition(".")[0]

#: A class attribute of handles that stand for data stored elsewhere (``RxShared``):
#: they pickle to a path, so :func:`exec_object_sizes` leaves them out.
BY_REFERENCE = "__rxspark_by_reference__"


def user_stacklevel() -> int:
    """The stacklevel, for a ``warnings.warn`` in the caller, of the first frame outside rxspark.

    So the warning's file and line are the user's call, not rxspark's internals.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _in_package(frame.f_globals.get("__name__") or ""):
        frame = frame.f_back
        level += 1
    return level


def _in_package(module: str) -> bool:
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def human_size(n: float) -> str:
    """``n`` bytes for people: ``"512 B"``, ``"1.5 MB"``."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


class _CountingSink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n


def exec_object_sizes(objects: Mapping[str, Any]) -> dict[str, int]:
    """Serialized size in bytes of each object (pickled into a counter, not into memory).

    Objects that cannot be serialized are left out (serialization reports them),
    and so are shared-data handles (they pickle to a path).
    """
    sizes = {}
    for name, obj in objects.items():
        if getattr(type(obj), BY_REFERENCE, False):
            continue
        sink = _CountingSink()
        try:
            cloudpickle.dump(obj, sink, protocol=5)
        except Exception:  # noqa: BLE001 - the plan's own serialization reports it
            continue
        sizes[name] = sink.size
    return sizes


def warn_if_large(name_to_size: Mapping[str, int], threshold: int | None = None, what: str = "exec_objects") -> list[str]:
    """Warn about objects whose serialized size exceeds the threshold, recommending ``rx_share``.

    Args:
        name_to_size: Object name -> serialized size in bytes.
        threshold: Bytes; default ``rx_options()["exec_objects_warn_bytes"]``.
        what: How the objects were passed, for the message (``"exec_objects"``, ``"argument"``).

    Returns:
        The names warned about (one :class:`RxLargeObjectWarning` covers them all).
    """
    if threshold is None:
        threshold = get_option("exec_objects_warn_bytes")
    large = {name: size for name, size in name_to_size.items() if size > threshold}
    if not large:
        return []
    listed = ", ".join(f"{name!r} ({human_size(size)})" for name, size in large.items())
    example = next(iter(large))
    example = example if example.isidentifier() else "obj"
    warnings.warn(
        f"{what} {listed} exceed{'s' if len(large) == 1 else ''} rx_options()['exec_objects_warn_bytes'] = "
        f"{human_size(threshold)}: {'it is' if len(large) == 1 else 'each is'} serialized with the job and copied to "
        "every worker. Store it once "
        f"with h = rxspark.rx_share({example}) and pass h instead (tasks read h.value; it is loaded once "
        "per worker process, memory-mapped for tables and arrays).",
        RxLargeObjectWarning,
        stacklevel=user_stacklevel(),
    )
    return list(large)
