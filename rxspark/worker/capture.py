"""Output capture: each task's stdout and stderr go to its chunk's buffer, thread by thread."""

from __future__ import annotations

import collections
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
            try:
                self.original.flush()
            except ValueError:  # closed: a kept stand-in flushed at interpreter exit, after its stream
                pass

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


_install_lock = threading.Lock()
_install_count = 0

# Stand-ins taken out of sys.stdout/sys.stderr stay alive here, by the id of the
# stream they wrap (alive too, so the id is not reused). CPython's print()
# (before 3.13) holds sys.stdout by a borrowed reference while it writes: if a
# job thread swapped out the last reference meanwhile, the main thread's print
# would run on a freed object (AttributeError, or a segfault). Keeping them
# also means one stream gets one stand-in, whatever the number of jobs.
_RETAINED = 16
_retired: collections.OrderedDict[int, _ThreadStream] = collections.OrderedDict()


def _stand_in(stream: Any) -> _ThreadStream:
    """The stand-in for ``stream``: the one it had before, if still kept."""
    kept = _retired.pop(id(stream), None)
    if kept is not None and kept.original is stream:
        return kept
    return _ThreadStream(stream)


def _retire(stand_in: _ThreadStream) -> Any:
    """Keep ``stand_in`` alive and give back the stream it wrapped."""
    _retired[id(stand_in.original)] = stand_in
    while len(_retired) > _RETAINED:
        _retired.popitem(last=False)
    return stand_in.original


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
                sys.stdout = _stand_in(sys.stdout)  # type: ignore[assignment]
            if not isinstance(sys.stderr, _ThreadStream):
                sys.stderr = _stand_in(sys.stderr)  # type: ignore[assignment]
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
                    sys.stdout = _retire(sys.stdout)
                if isinstance(sys.stderr, _ThreadStream):
                    sys.stderr = _retire(sys.stderr)
