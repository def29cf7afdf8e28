"""Keyed signatures on what rxspark writes to a job store, checked before anything is unpickled.

A local store is private to its user (rxspark checks owner and modes), but a
store on S3, HDFS or another host has no such check: whoever can write there
could leave a pickle that runs code in the process that loads it. So every
file rxspark unpickles from a store (results, errors, the stored job, chunk
checkpoints) is written as ``MAGIC + HMAC-SHA256(key, name + data) + data``,
and read back only when the signature matches. The file's name is part of what
is signed, so a valid file cannot be passed off as another (a chunk for
another chunk, results for the stored function).

The key: ``RXSPARK_STORE_KEY`` (any string, for drivers on other hosts: a
detached driver in YARN cluster mode) or else ``~/.rxspark/key`` (32 random
bytes as hex, mode 0600, created on first use).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading

from ._private import make_private_dirs
from .errors import RxJobError

__all__ = ["KEY_ENV", "SignatureError", "key", "key_path", "sign", "verify"]

KEY_ENV = "RXSPARK_STORE_KEY"
MAGIC = b"RXSIG1\n"
_DIGEST = hashlib.sha256().digest_size

_lock = threading.Lock()
_cached: tuple[str, bytes] | None = None  # (where it came from, key)


class SignatureError(RxJobError):
    """A file in a job store has no valid signature: it was not written with this user's key."""


def key_path() -> str:
    """Where the user's key file is (``~/.rxspark/key``)."""
    return os.path.join(os.path.expanduser("~"), ".rxspark", "key")


def _read_or_create(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            text = f.read().strip()
    except FileNotFoundError:
        make_private_dirs(os.path.dirname(path))
        text = secrets.token_hex(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            with open(path, "rb") as f:
                text = f.read().strip()
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(text + b"\n")
    if not text:
        raise RxJobError(f"the store key file {path} is empty; delete it (a new key is made on next use)")
    return text


def key() -> bytes:
    """The user's signing key (``RXSPARK_STORE_KEY``, else ``~/.rxspark/key``, created if missing)."""
    global _cached
    env = os.environ.get(KEY_ENV)
    where = "env" if env else key_path()
    with _lock:
        if _cached is not None and _cached[0] == where and (env is None or _cached[1] == env.encode()):
            return _cached[1]
        value = env.encode() if env else _read_or_create(where)
        _cached = (where, value)
        return value


def _mac(name: str, data: bytes | memoryview) -> bytes:
    mac = hmac.new(key(), name.encode() + b"\0", hashlib.sha256)
    mac.update(data)
    return mac.digest()


def sign(name: str, data: bytes) -> bytes:
    """``data`` with its signature in front, for a file called ``name``."""
    return MAGIC + _mac(name, data) + data


def verify(name: str, blob: bytes | memoryview, where: str) -> memoryview:
    """The data of a signed file, checked before anyone unpickles it.

    Args:
        name: The file's name in its job entry (part of what is signed).
        blob: The file's whole content.
        where: The file's location, for the message.

    Raises:
        SignatureError: No signature, or one made with another key or for another file.
    """
    view = memoryview(blob)
    head = len(MAGIC) + _DIGEST
    if len(view) < head or bytes(view[: len(MAGIC)]) != MAGIC:
        raise SignatureError(f"{where} is not signed by rxspark (an older rxspark, or not rxspark's file); refused, not unpickled")
    data = view[head:]
    if not hmac.compare_digest(bytes(view[len(MAGIC) : head]), _mac(name, data)):
        raise SignatureError(
            f"{where} has a signature that does not match your store key ({KEY_ENV} or {key_path()}): it was "
            "changed, or written with another key; refused, not unpickled"
        )
    return data
