"""The one process-wide slot: which compute context ``rx_exec`` uses when none is named.

It sits at the bottom of the package so that every layer can read it without
reaching up to the front end: ``api.py`` sets it, contexts set it from
``with`` blocks, jobs and shared data read it for their default ``share_dir``.
The slot holds a context object or ``None``; ``None`` means the default
sequential context, which ``api.py`` installs with :func:`set_default` (this
module knows no context class).
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_context: Any = None
_default: Any = None


def set_default(context: Any) -> None:
    """Install the context that stands for "none chosen" (``RxLocalSeq``; done once by ``api.py``)."""
    global _default
    with _lock:
        _default = context


def current() -> Any:
    """The active compute context (the default one when none was set; None before ``api`` is imported)."""
    with _lock:
        return _context if _context is not None else _default


def swap(context: Any) -> Any:
    """Make ``context`` active (None: the default one) and return the context that was active before."""
    global _context
    with _lock:
        previous = _context if _context is not None else _default
        _context = context
        return previous
