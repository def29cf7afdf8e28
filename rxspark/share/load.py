"""Loading a share: once per process, checked, memory-mapped where the storage allows.

The per-process cache keeps the last :data:`CACHE_ENTRIES` values by
``(location, digest)``; threads asking for the same share at once wait for a
single load. Every load checks the file's size; with ``verify`` (the default)
it also re-hashes the whole file (one sequential read, about 1 GB/s). A
missing, truncated or altered file raises :class:`RxShareError` naming the
path and the machine: never a wrong result.

Local Arrow files come back memory-mapped (a Table stays zero-copy), local
``.npy`` files as read-only ``numpy.memmap``; remote files are read whole.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..errors import RxShareError
from . import formats, storage

if TYPE_CHECKING:
    from .handle import RxShared

#: Values kept per process; the least recently used beyond this are dropped
#: (a later access loads them again).
CACHE_ENTRIES = 16

_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_load_counts: dict[tuple[str, str], int] = {}
#: Counters for tests and diagnostics: loads from storage and full hash checks in this process.
stats: dict[str, int] = {"loads": 0, "verifications": 0}


# --------------------------------------------------------------------------- the cache


def load_counts() -> dict[tuple[str, str], int]:
    """How many times this process loaded each share from storage, by ``handle.key``."""
    with _cache_lock:
        return dict(_load_counts)


def clear_cache() -> None:
    """Drop every cached shared value in this process."""
    with _cache_lock:
        _cache.clear()


def release(key: tuple[str, str]) -> None:
    """Drop one cached value (by ``handle.key``)."""
    with _cache_lock:
        _cache.pop(key, None)


def drop_location(location: str) -> None:
    """Drop the cached values of a location, whatever their digest (the share is being deleted)."""
    with _cache_lock:
        for key in [k for k in _cache if k[0] == location]:
            del _cache[key]


def cached_load(handle: RxShared) -> Any:
    """The handle's value from this process's cache, loading it on the first access."""
    key = handle.key
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # threads of one process wait for a single load
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        value = _load(handle)
        with _cache_lock:
            # The same location with another hash is older content: drop it.
            for other in [k for k in _cache if k[0] == key[0]]:
                del _cache[other]
            _cache[key] = value
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
            _load_counts[key] = _load_counts.get(key, 0) + 1
            stats["loads"] += 1
            _key_locks.pop(key, None)
    return value


# --------------------------------------------------------------------------- integrity


def _where() -> str:
    return f"node {socket.gethostname()}, process {os.getpid()}"


_RESHARE = "Share the object again with rx_share() and pass the new handle"


def _missing(handle: RxShared) -> RxShareError:
    return RxShareError(
        f"shared data {handle.uri} is missing ({_where()}). It was deleted (handle.delete(), the end of a "
        "`with rx_share(...)` block, cleanup_job_shares()) or is not visible from this machine: when tasks run "
        "on other machines, share_dir must be storage all of them can read (a network filesystem, hdfs://, "
        f"s3://, gs://). {_RESHARE}.",
        handle.uri,
    )


def _check_size(handle: RxShared, actual: int) -> None:
    if actual != handle.size:
        raise RxShareError(
            f"shared data {handle.uri} is {actual} bytes but rx_share wrote {handle.size}: the file was "
            f"truncated or replaced, so it is not loaded ({_where()}). {_RESHARE}.",
            handle.uri,
        )


def _check_digest(handle: RxShared, data: Any) -> None:
    stats["verifications"] += 1
    actual = hashlib.blake2b(data, digest_size=16).hexdigest()
    if actual != handle.digest:
        raise RxShareError(
            f"shared data {handle.uri} is corrupted: its content hash is {actual}, the handle expects "
            f"{handle.digest} (the file changed after rx_share), so it is not loaded ({_where()}). {_RESHARE}.",
            handle.uri,
        )


def _unreadable(handle: RxShared, exc: BaseException) -> RxShareError:
    return RxShareError(
        f"shared data {handle.uri} cannot be read as {handle.kind} ({_where()}): {type(exc).__name__}: {exc}. "
        f"The file is damaged; {_RESHARE}.",
        handle.uri,
    )


# --------------------------------------------------------------------------- loading


def _load(handle: RxShared) -> Any:
    store, path = storage.storage_for(handle.uri)
    entry = store.stat(path)
    if entry is None:
        raise _missing(handle)
    if not entry.is_file:
        raise RxShareError(f"shared data {handle.uri} is not a regular file ({_where()}). {_RESHARE}.", handle.uri)
    if entry.size is not None:
        _check_size(handle, entry.size)
    try:
        mappable = store.local_path(path) if handle.kind != "pickle" else None
        if mappable is not None:
            return _load_mapped(handle, mappable)
        data = store.read(path)
        _check_size(handle, len(data))
        if handle.verify:
            _check_digest(handle, data)
        return formats.decode(handle.kind, data)
    except RxShareError:
        raise
    except FileNotFoundError:
        raise _missing(handle) from None
    except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
        raise _unreadable(handle, exc) from exc


def _load_mapped(handle: RxShared, path: str) -> Any:
    """Load an Arrow or ``.npy`` file by memory-mapping it."""
    if handle.kind == "numpy":
        import numpy as np

        if handle.verify:
            _verify_mapped(handle, path)
        return np.load(path, mmap_mode="r", allow_pickle=False)
    import pyarrow as pa

    mapped = pa.memory_map(path, "r")
    _check_size(handle, mapped.size())
    if handle.verify:
        _check_digest(handle, mapped.read_buffer())
        mapped.seek(0)
    return formats.decode_arrow(handle.kind, mapped)


def _verify_mapped(handle: RxShared, path: str) -> None:
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        _check_size(handle, size)
        if size == 0:
            _check_digest(handle, b"")
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            _check_digest(handle, mapped)
