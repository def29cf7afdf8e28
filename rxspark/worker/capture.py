"""Output capture: each task's stdout and stderr go to its chunk's buffer, thread by thread."""

from __future__ import annotations

import io
import sys
import threading
from typing import Any

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


class Capture:
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
