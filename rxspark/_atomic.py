"""The one atomic file writer: a private temporary file beside the target, renamed over it.

A reader sees either the old file or the whole new one, never a partial
write, and a failed or interrupted write leaves nothing behind. The
temporary file is hidden (``.<name>.<random>.tmp``) so directory listings
that look for ``rxs-*`` shares or job directories skip it; it is created
exclusively with mode 0600 (exactly, whatever the umask), because job records
and shared data are private to the user. No fsync: neither the job store nor
shared data promise durability across a power loss, only that no reader sees
half a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["atomic_output", "temp_name", "write_atomic"]


def temp_name(filename: str) -> str:
    """The hidden temporary name a file is written under before the rename (unique per call)."""
    return f".{filename}.{secrets.token_hex(4)}.tmp"


@contextlib.contextmanager
def atomic_output(path: str, *, buffering: int = -1) -> Iterator[BinaryIO]:
    """Open a private temporary file next to ``path``; on a clean exit rename it over ``path``.

    Args:
        path: The file to create or replace (its directory must exist).
        buffering: As for :func:`open` (shared data writes with a 1 MB buffer).

    Yields:
        The temporary file, open for binary writing.

    Raises:
        OSError: The directory is not writable, or the write or rename failed
            (the temporary file is removed first).
    """
    directory, filename = os.path.split(path)
    tmp = os.path.join(directory, temp_name(filename))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as f:
            os.fchmod(f.fileno(), 0o600)  # exactly 0600: os.open's mode is filtered by the umask
            yield f
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` as the whole content of ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as f:
        f.write(data)
