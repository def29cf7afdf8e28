"""Shared data: store a large object once, hand every task a tiny handle.

``rx_share(obj)`` writes ``obj`` once to shared storage (a local directory or
any filesystem ``pyarrow.fs.FileSystem.from_uri`` accepts: ``file://``,
``hdfs://``, ``s3://``, ``gs://`` ...) and returns an :class:`RxShared`
handle. The handle pickles to a few hundred bytes (location, content hash,
kind, size), so passing it as an argument or exec object costs nothing; on a
worker ``handle.value`` loads the object once per process and caches it.

Formats, chosen so loading is cheap:

* pandas DataFrame and pyarrow Table: an Arrow IPC file, memory-mapped when
  local (a Table stays zero-copy; a DataFrame is converted from it once per
  process, with pyarrow's pandas metadata restoring dtypes and index);
* NumPy array (not of object dtype): a ``.npy`` file, memory-mapped read-only
  when local;
* anything else: cloudpickle.

Integrity: the blake2b hash of the file's bytes is computed while writing and
recorded in the handle and in a ``.meta.json`` sidecar. Every load checks the
file's size; the first load in each process also re-hashes the whole file
(one sequential read, about 1 GB/s; ``verify=False`` skips it). A missing,
truncated or altered file raises :class:`RxShareError` naming the path: never
a wrong result.

Files are written atomically (temporary file, then rename), private to the
user on local filesystems (directories 0700, files 0600). On remote stores
access is governed by the store (HDFS permissions, bucket policies).

This module imports pyarrow, NumPy and pandas only when it needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import stat
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import cloudpickle

from ._private import make_private_dirs
from .errors import RxArgumentError, RxArgumentTypeError, RxLargeObjectWarning, RxShareError

__all__ = [
    "RxShareError",
    "RxLargeObjectWarning",
    "RxShared",
    "ShareInfo",
    "rx_share",
    "list_shares",
    "cleanup_job_shares",
    "on_job_cleanup",
    "default_share_dir",
    "shares_dir",
    "exec_object_sizes",
    "warn_if_large",
    "load_counts",
    "clear_cache",
    "stats",
]

#: File extension of each kind of share.
KINDS: dict[str, str] = {"pandas": ".arrow", "arrow": ".arrow", "numpy": ".npy", "pickle": ".pkl"}
PREFIX = "rxs-"
META_SUFFIX = ".meta.json"
HASH_NAME = "blake2b-128"
FORMAT_VERSION = 1
#: Values kept per process; the least recently used beyond this are dropped
#: (a later access loads them again).
CACHE_ENTRIES = 16

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_WRITE_BUFFER = 1 << 20


# --------------------------------------------------------------------------- locations


def _is_uri(location: str) -> bool:
    return bool(_URI.match(location))


def _join(base: str, name: str) -> str:
    if _is_uri(base):
        return base.rstrip("/") + "/" + name
    return os.path.join(base, name)


def _dirname(location: str) -> str:
    if _is_uri(location):
        return location.rsplit("/", 1)[0]
    return os.path.dirname(location)


# One filesystem object per (scheme, authority) and process: S3/GCS clients are
# costly to create, and in-memory test filesystems (mock://) must be reused.
_filesystems: dict[tuple[str, str], tuple[Any, str]] = {}
_filesystems_lock = threading.Lock()


def _locate(location: str) -> tuple[Any | None, str]:
    """Resolve a path or URI to ``(filesystem, path)``; the filesystem is None for local files."""
    if not _is_uri(location):
        return None, os.path.abspath(os.path.expanduser(location))
    from pyarrow import fs as pafs

    parts = urlsplit(location)
    key = (parts.scheme.lower(), parts.netloc)
    with _filesystems_lock:
        cached = _filesystems.get(key)
    if cached is not None and not parts.query and location.startswith(cached[1]):
        filesystem, path = cached[0], location[len(cached[1]) :]
    else:
        try:
            filesystem, path = pafs.FileSystem.from_uri(location)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types here
            raise RxShareError(
                f"cannot open shared storage {location!r}: {type(exc).__name__}: {exc} "
                "(a local path or a URI pyarrow.fs supports: file://, hdfs://, s3://, gs://)",
                location,
            ) from exc
        # The URI prefix that precedes the filesystem path lets later URIs reuse the object.
        if not parts.query and path and location.endswith(path):
            with _filesystems_lock:
                _filesystems.setdefault(key, (filesystem, location[: len(location) - len(path)]))
    if isinstance(filesystem, pafs.LocalFileSystem):
        return None, path
    return filesystem, path


def default_share_dir(context: Any | None = None) -> str:
    """Where ``rx_share`` stores data by default: ``<context share_dir>/shared``.

    Args:
        context: A compute context; None uses the active one.
    """
    if context is None:
        from .api import rx_get_compute_context

        context = rx_get_compute_context()
    return shares_dir(context.share_dir)


def shares_dir(base: str | os.PathLike[str]) -> str:
    """The shares directory under a context's ``share_dir`` (``rxspark shares --share-dir``)."""
    base = os.fspath(base)
    return _join(base if _is_uri(base) else os.path.expanduser(base), "shared")


# --------------------------------------------------------------------------- writing


class _HashingSink:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.hash = hashlib.blake2b(digest_size=16)
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.hash.update(view)
        self.size += len(view)
        self.target.write(view)
        return len(view)

    def flush(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _write_atomic(filesystem: Any | None, directory: str, filename: str, write: Callable[[Any], None]) -> tuple[int, str]:
    """Write a file through ``write(sink)`` under a temporary name, then rename it into place.

    Returns:
        (size in bytes, blake2b-128 hex digest of the content).
    """
    tmp_name = f".{filename}.{secrets.token_hex(4)}.tmp"
    if filesystem is None:
        tmp = os.path.join(directory, tmp_name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            with os.fdopen(fd, "wb", buffering=_WRITE_BUFFER) as f:
                os.fchmod(f.fileno(), 0o600)  # exactly 0600, whatever the umask
                sink = _HashingSink(f)
                write(sink)
            os.replace(tmp, os.path.join(directory, filename))
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    else:
        tmp = f"{directory.rstrip('/')}/{tmp_name}"
        try:
            with filesystem.open_output_stream(tmp) as out:
                sink = _HashingSink(out)
                write(sink)
            filesystem.move(tmp, f"{directory.rstrip('/')}/{filename}")
        except BaseException:
            try:
                filesystem.delete_file(tmp)
            except Exception:  # noqa: BLE001 - best effort; the original error matters
                pass
            raise
    return sink.size, sink.hash.hexdigest()


def _classify(obj: Any) -> tuple[str, Any]:
    """Pick the storage kind of ``obj``: (kind, what to write)."""
    pd = sys.modules.get("pandas")
    if pd is not None and type(obj) is pd.DataFrame:
        table = _arrow_from_pandas(obj)
        return ("pandas", table) if table is not None else ("pickle", obj)
    pa = sys.modules.get("pyarrow")
    if pa is not None and type(obj) is pa.Table:
        return "arrow", obj
    np = sys.modules.get("numpy")
    if np is not None and type(obj) in (np.ndarray, np.memmap) and not obj.dtype.hasobject:
        return "numpy", obj
    return "pickle", obj


def _arrow_from_pandas(df: Any) -> Any | None:
    """The Arrow table of ``df``, or None when Arrow would not give the same frame back."""
    import pyarrow as pa

    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
        back = table.slice(0, 0).to_pandas()
    except (pa.ArrowException, ValueError, TypeError):
        return None
    # Object columns that Arrow would retype (ints with None -> float, strings -> str) go
    # through pickle instead: the round trip must give the same dtypes and index.
    index_dtypes = getattr(df.index, "dtypes", None)
    same_index = (
        type(df.index) is type(back.index) or (index_dtypes is None and df.index.dtype == back.index.dtype)
    ) and list(df.index.names) == list(back.index.names)
    if same_index and index_dtypes is not None:
        same_index = list(index_dtypes) == list(back.index.dtypes)
    elif same_index:
        same_index = df.index.dtype == back.index.dtype
    if not (same_index and df.columns.equals(back.columns) and list(df.dtypes) == list(back.dtypes)):
        return None
    return table


def _writer(kind: str, data: Any) -> Callable[[Any], None]:
    if kind in ("pandas", "arrow"):

        def write_arrow(sink: Any) -> None:
            import pyarrow as pa

            # Uncompressed, so readers can memory-map the buffers in place.
            with pa.ipc.new_file(sink, data.schema) as writer:
                writer.write_table(data)

        return write_arrow
    if kind == "numpy":

        def write_npy(sink: Any) -> None:
            import numpy as np

            np.lib.format.write_array(sink, data, allow_pickle=False)

        return write_npy

    def write_pickle(sink: Any) -> None:
        try:
            cloudpickle.dump(data, sink, protocol=5)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - pickling raises many types
            raise RxArgumentTypeError(
                f"rx_share: the object of type {_type_name(data)} cannot be serialized: {type(exc).__name__}: {exc}"
            ) from exc

    return write_pickle


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def rx_share(
    obj: Any,
    share_dir: str | os.PathLike[str] | None = None,
    *,
    owner_job: str | None = None,
    verify: bool = True,
    name: str | None = None,
) -> RxShared:
    """Store ``obj`` once in shared storage and return a small handle to it.

    Pass the handle to ``rx_exec`` as an argument or exec object; tasks read
    ``handle.value`` (or call ``handle()``), which loads the object once per
    worker process. The storage must be readable from every worker: a local
    directory for local contexts and single-machine Spark, a network
    filesystem or ``hdfs://`` / ``s3://`` / ``gs://`` for clusters.

    Args:
        obj: The object: a pandas DataFrame or pyarrow Table (Arrow IPC file,
            memory-mapped), a NumPy array (``.npy``, memory-mapped read-only),
            or anything cloudpickle can serialize.
        share_dir: A directory path or a URI pyarrow.fs accepts. Default:
            ``<active context's share_dir>/shared``.
        owner_job: A job id to tag the share with; ``cleanup_job_shares(job_id)``
            deletes the shares tagged with it.
        verify: Re-hash the file on the first load in each process (one full
            read) so an altered file is detected; False checks only its size
            and format.
        name: A stable name (letters, digits, ``._-``) instead of a unique one.
            Sharing again under the same name replaces the file; handles to the
            old content then fail to load instead of seeing the new data.

    Returns:
        The handle.

    Raises:
        RxArgumentError: A bad ``name``.
        RxArgumentTypeError: A bad type for ``share_dir``, ``owner_job`` or ``verify``.
        RxShareError: The storage cannot be written.
    """
    if isinstance(obj, RxShared):
        return obj
    if share_dir is not None and not isinstance(share_dir, (str, os.PathLike)):
        raise RxArgumentTypeError(f"rx_share: share_dir must be a path or URI, got {type(share_dir).__name__}")
    if owner_job is not None and not isinstance(owner_job, str):
        raise RxArgumentTypeError(f"rx_share: owner_job must be a job id string or None, got {type(owner_job).__name__}")
    if not isinstance(verify, bool):
        raise RxArgumentTypeError(f"rx_share: verify must be True or False, got {verify!r}")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise RxArgumentError(
            f"rx_share: name must be 1-128 letters, digits, '.', '_' or '-' (not starting with '.'), got {name!r}"
        )

    base = default_share_dir() if share_dir is None else os.fspath(share_dir)
    filesystem, directory = _locate(base)
    kind, data = _classify(obj)
    stem = PREFIX + (name or f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}")
    filename = stem + KINDS[kind]
    try:
        if filesystem is None:
            make_private_dirs(directory)
        else:
            filesystem.create_dir(directory, recursive=True)
        size, digest = _write_atomic(filesystem, directory, filename, _writer(kind, data))
        created = time.time()
        meta = {
            "rxspark_share": FORMAT_VERSION,
            "file": filename,
            "kind": kind,
            "size": size,
            "hash": HASH_NAME,
            "digest": digest,
            "created": created,
            "owner_job": owner_job,
            "type": _type_name(obj),
            "host": socket.gethostname(),
        }
        meta_bytes = json.dumps(meta, indent=1).encode()
        _write_atomic(filesystem, directory, stem + META_SUFFIX, lambda sink: sink.write(meta_bytes))
    except OSError as exc:
        raise RxShareError(f"rx_share: cannot write to {base!r}: {type(exc).__name__}: {exc}", base) from exc
    location = _join(base, filename) if _is_uri(base) else os.path.join(directory, filename)
    return RxShared(location, digest, kind, size, verify=verify, owner_job=owner_job, created=created)


# --------------------------------------------------------------------------- the handle


def _restore(uri: str, digest: str, kind: str, size: int, verify: bool, owner_job: str | None, created: float) -> RxShared:
    return RxShared(uri, digest, kind, size, verify=verify, owner_job=owner_job, created=created)


class RxShared:
    """A handle to an object stored by :func:`rx_share`.

    Pickles to its location and content hash only. ``value`` (or calling the
    handle) loads the object once per process; later accesses return the
    cached object. Use it as a context manager to delete the share on exit::

        with rx_share(big_frame) as data:
            rx_exec(summarize, data, rx_elem_arg(tags))

    Attributes:
        uri: Location of the data file (a local path or a URI).
        digest: blake2b-128 hex digest of the file's bytes.
        kind: ``"pandas"``, ``"arrow"``, ``"numpy"`` or ``"pickle"``.
        size: Size of the file in bytes.
        verify: Whether the first load in a process re-hashes the file.
        owner_job: The job id the share is tagged with, if any.
        created: When it was stored (seconds since the epoch).
    """

    __slots__ = ("uri", "digest", "kind", "size", "verify", "owner_job", "created")

    def __init__(
        self,
        uri: str,
        digest: str,
        kind: str,
        size: int,
        *,
        verify: bool = True,
        owner_job: str | None = None,
        created: float = 0.0,
    ) -> None:
        if kind not in KINDS:
            raise RxArgumentError(f"RxShared: kind must be one of {sorted(KINDS)}, got {kind!r}")
        self.uri = uri
        self.digest = digest
        self.kind = kind
        self.size = size
        self.verify = verify
        self.owner_job = owner_job
        self.created = created

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.uri, self.digest, self.kind, self.size, self.verify, self.owner_job, self.created))

    @classmethod
    def open(cls, uri: str | os.PathLike[str], verify: bool = True) -> RxShared:
        """A handle to an existing share, from its data file or ``.meta.json`` sidecar.

        Raises:
            RxShareError: The share's metadata is missing or unreadable.
        """
        uri = os.fspath(uri)
        meta_uri = uri if uri.endswith(META_SUFFIX) else _meta_location(uri)
        meta = _read_meta(meta_uri)
        if meta is None:
            raise RxShareError(f"no share metadata at {meta_uri} (not a share created by rx_share, or deleted)", meta_uri)
        data_uri = _join(_dirname(meta_uri), meta["file"]) if _is_uri(meta_uri) else os.path.join(_dirname(meta_uri), meta["file"])
        return cls(
            data_uri, meta["digest"], meta["kind"], int(meta["size"]),
            verify=verify, owner_job=meta.get("owner_job"), created=float(meta.get("created", 0.0)),
        )

    @property
    def key(self) -> tuple[str, str]:
        """The per-process cache key: (uri, digest)."""
        return (self.uri, self.digest)

    @property
    def meta_uri(self) -> str:
        """Location of the ``.meta.json`` sidecar."""
        return _meta_location(self.uri)

    @property
    def value(self) -> Any:
        """The shared object, loaded once per process (see :meth:`load`)."""
        return self.load()

    def __call__(self) -> Any:
        return self.load()

    def load(self) -> Any:
        """Return the shared object, loading it on first use in this process.

        DataFrames and Tables come back as the type shared; local Arrow files
        are memory-mapped (a DataFrame is converted from the mapped table),
        local NumPy arrays come back as read-only ``numpy.memmap``. Treat the
        value as read-only: it is shared by every task of this process.

        Raises:
            RxShareError: The file is missing, truncated, altered or unreadable.
        """
        return _cached_load(self)

    def release(self) -> None:
        """Drop this share's value from this process's cache (the file stays)."""
        with _cache_lock:
            _cache.pop(self.key, None)

    def exists(self) -> bool:
        """Whether the data file is still there."""
        filesystem, path = _locate(self.uri)
        if filesystem is None:
            return os.path.exists(path)
        from pyarrow import fs as pafs

        return filesystem.get_file_info(path).type != pafs.FileType.NotFound

    def delete(self) -> None:
        """Delete the data file and its metadata (if still there), and release the cached value."""
        self.release()
        _delete_files(self.uri, self.meta_uri)

    def __enter__(self) -> RxShared:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.delete()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RxShared):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"RxShared(kind={self.kind!r}, size={_human(self.size)}, uri={self.uri!r})"


def _meta_location(data_uri: str) -> str:
    stem = data_uri
    for ext in set(KINDS.values()):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem + META_SUFFIX


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _delete_files(*uris: str) -> None:
    for uri in uris:
        filesystem, path = _locate(uri)
        if filesystem is None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        else:
            try:
                filesystem.delete_file(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                    raise


# --------------------------------------------------------------------------- loading

_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_load_counts: dict[tuple[str, str], int] = {}
#: Counters for tests and diagnostics: loads from storage and full hash checks in this process.
stats: dict[str, int] = {"loads": 0, "verifications": 0}


def load_counts() -> dict[tuple[str, str], int]:
    """How many times this process loaded each share from storage, by ``handle.key``."""
    with _cache_lock:
        return dict(_load_counts)


def clear_cache() -> None:
    """Drop every cached shared value in this process."""
    with _cache_lock:
        _cache.clear()


def _cached_load(handle: RxShared) -> Any:
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


def _load(handle: RxShared) -> Any:
    filesystem, path = _locate(handle.uri)
    if filesystem is None:
        return _load_local(handle, path)
    return _load_remote(handle, filesystem, path)


def _load_local(handle: RxShared, path: str) -> Any:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _missing(handle) from None
    if not stat.S_ISREG(st.st_mode):
        raise RxShareError(f"shared data {handle.uri} is not a regular file ({_where()}). {_RESHARE}.", handle.uri)
    _check_size(handle, st.st_size)
    kind = handle.kind
    try:
        if kind in ("pandas", "arrow"):
            import pyarrow as pa

            mapped = pa.memory_map(path, "r")
            _check_size(handle, mapped.size())
            if handle.verify:
                _check_digest(handle, mapped.read_buffer())
                mapped.seek(0)
            table = pa.ipc.open_file(mapped).read_all()
            return table.to_pandas() if kind == "pandas" else table
        if kind == "numpy":
            import numpy as np

            if handle.verify:
                _verify_local_file(handle, path)
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with open(path, "rb") as f:
            data = f.read()
        _check_size(handle, len(data))
        if handle.verify:
            _check_digest(handle, data)
        return cloudpickle.loads(data)
    except RxShareError:
        raise
    except FileNotFoundError:
        raise _missing(handle) from None
    except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
        raise _unreadable(handle, exc) from exc


def _verify_local_file(handle: RxShared, path: str) -> None:
    import mmap

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        _check_size(handle, size)
        if size == 0:
            _check_digest(handle, b"")
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            _check_digest(handle, mapped)


def _load_remote(handle: RxShared, filesystem: Any, path: str) -> Any:
    from pyarrow import fs as pafs

    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise _missing(handle)
    if info.size is not None:
        _check_size(handle, info.size)
    try:
        with filesystem.open_input_file(path) as f:
            buffer = f.read_buffer()
        _check_size(handle, buffer.size)
        if handle.verify:
            _check_digest(handle, buffer)
        kind = handle.kind
        if kind in ("pandas", "arrow"):
            import pyarrow as pa

            table = pa.ipc.open_file(pa.BufferReader(buffer)).read_all()
            return table.to_pandas() if kind == "pandas" else table
        if kind == "numpy":
            import numpy as np
            import pyarrow as pa

            return np.lib.format.read_array(pa.BufferReader(buffer), allow_pickle=False)
        return cloudpickle.loads(buffer)
    except RxShareError:
        raise
    except FileNotFoundError:
        raise _missing(handle) from None
    except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
        raise _unreadable(handle, exc) from exc


# --------------------------------------------------------------------------- lifecycle


@dataclass
class ShareInfo:
    """One share found by :func:`list_shares`.

    Attributes:
        path: The data file (path or URI).
        size: Its size in bytes (recorded at rx_share time).
        created: When it was stored (seconds since the epoch), or the file's mtime.
        kind: ``"pandas"``, ``"arrow"``, ``"numpy"``, ``"pickle"``, or ``"unknown"``
            for a data file without metadata (rx_share was interrupted).
        owner_job: The job id it is tagged with, if any.
        digest: Content hash recorded at rx_share time ("" if unknown).
        meta_path: The ``.meta.json`` sidecar (path or URI).
        complete: False when the data file or the metadata is missing.
    """

    path: str
    size: int
    created: float
    kind: str
    owner_job: str | None
    digest: str
    meta_path: str
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def handle(self, verify: bool = True) -> RxShared:
        """A handle to this share (it must be complete)."""
        if not self.complete:
            raise RxShareError(f"share {self.path} is incomplete (data or metadata missing)", self.path)
        return RxShared(self.path, self.digest, self.kind, self.size, verify=verify, owner_job=self.owner_job, created=self.created)

    def delete(self) -> None:
        """Delete the data file and the metadata."""
        _delete_files(self.path, self.meta_path)


def _read_meta(meta_uri: str) -> dict[str, Any] | None:
    filesystem, path = _locate(meta_uri)
    try:
        if filesystem is None:
            with open(path, "rb") as f:
                raw = f.read()
        else:
            with filesystem.open_input_stream(path) as f:
                raw = f.read()
        meta = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("rxspark_share") != FORMAT_VERSION or meta.get("kind") not in KINDS:
        return None
    return meta


def _list_dir(directory_uri: str) -> list[tuple[str, int, float]]:
    """(name, size, mtime) of the files in a directory; empty if it does not exist."""
    filesystem, path = _locate(directory_uri)
    if filesystem is None:
        entries = []
        try:
            with os.scandir(path) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        entries.append((entry.name, st.st_size, st.st_mtime))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return entries
    from pyarrow import fs as pafs

    try:
        infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except FileNotFoundError:
        return []
    return [
        (info.base_name, info.size or 0, info.mtime.timestamp() if info.mtime is not None else 0.0)
        for info in infos
        if info.type == pafs.FileType.File
    ]


def list_shares(share_dir: str | os.PathLike[str] | None = None) -> list[ShareInfo]:
    """The shares stored in a directory, oldest first (for finding stale ones).

    Args:
        share_dir: The directory ``rx_share`` wrote to (path or URI); default:
            ``<active context's share_dir>/shared``. For a context's
            ``share_dir`` use ``list_shares(shares_dir(that_dir))``.

    Returns:
        One :class:`ShareInfo` per share, including incomplete ones.
    """
    base = default_share_dir() if share_dir is None else os.fspath(share_dir)
    files = {name: (size, mtime) for name, size, mtime in _list_dir(base)}
    data_exts = tuple(set(KINDS.values()))
    records: list[ShareInfo] = []
    seen: set[str] = set()
    for name in files:
        if not (name.startswith(PREFIX) and name.endswith(META_SUFFIX)):
            continue
        meta_uri = _join(base, name)
        meta = _read_meta(meta_uri)
        if meta is None:
            continue
        data_name = meta["file"]
        seen.add(data_name)
        records.append(
            ShareInfo(
                path=_join(base, data_name),
                size=int(meta["size"]),
                created=float(meta.get("created", files[name][1])),
                kind=meta["kind"],
                owner_job=meta.get("owner_job"),
                digest=meta["digest"],
                meta_path=meta_uri,
                complete=data_name in files,
            )
        )
    for name, (size, mtime) in files.items():
        if name.startswith(PREFIX) and name.endswith(data_exts) and name not in seen:
            data_uri = _join(base, name)
            records.append(ShareInfo(data_uri, size, mtime, "unknown", None, "", _meta_location(data_uri), False))
    records.sort(key=lambda r: (r.created, r.path))
    return records


def cleanup_job_shares(job_id: str, share_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Delete the shares tagged ``owner_job=job_id``.

    Args:
        job_id: The job id given to ``rx_share(..., owner_job=...)``.
        share_dir: The directory the shares are in (default as for ``rx_share``).

    Returns:
        The data files deleted.
    """
    if not isinstance(job_id, str):
        raise RxArgumentTypeError(f"cleanup_job_shares: job_id must be a string, got {type(job_id).__name__}")
    deleted = []
    for record in list_shares(share_dir):
        if record.owner_job == job_id:
            _cache_drop_uri(record.path)
            record.delete()
            deleted.append(record.path)
    return deleted


def on_job_cleanup(job_id: str, share_dir: str) -> None:
    """Job-store cleanup hook: delete the shares tagged with ``job_id``.

    Has the signature of ``rxspark.store.register_cleanup_hook`` hooks, where
    ``share_dir`` is the compute context's ``share_dir`` (the shares live in
    its ``shared`` subdirectory).
    """
    cleanup_job_shares(job_id, shares_dir(share_dir))


def _cache_drop_uri(uri: str) -> None:
    with _cache_lock:
        for key in [k for k in _cache if k[0] == uri]:
            del _cache[key]


# --------------------------------------------------------------------------- large exec_objects


class _CountingSink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n


def exec_object_sizes(objects: Mapping[str, Any]) -> dict[str, int]:
    """Serialized size in bytes of each object (pickled into a counter, not into memory).

    Objects that cannot be serialized are left out (serialization reports them).
    """
    sizes = {}
    for name, obj in objects.items():
        if isinstance(obj, RxShared):
            continue
        sink = _CountingSink()
        try:
            cloudpickle.dump(obj, sink, protocol=5)
        except Exception:  # noqa: BLE001 - the plan's own serialization reports it
            continue
        sizes[name] = sink.size
    return sizes


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside rxspark, so a warning points at the user's call."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package_dir + os.sep):
        frame = frame.f_back
        level += 1
    return level


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
        from .options import get_option

        threshold = get_option("exec_objects_warn_bytes")
    large = {name: size for name, size in name_to_size.items() if size > threshold}
    if not large:
        return []
    listed = ", ".join(f"{name!r} ({_human(size)})" for name, size in large.items())
    example = next(iter(large))
    example = example if example.isidentifier() else "obj"
    warnings.warn(
        f"{what} {listed} exceed{'s' if len(large) == 1 else ''} rx_options()['exec_objects_warn_bytes'] = "
        f"{_human(threshold)}: {'it is' if len(large) == 1 else 'each is'} serialized with the job and copied to "
        "every worker. Store it once "
        f"with h = rxspark.rx_share({example}) and pass h instead (tasks read h.value; it is loaded once "
        "per worker process, memory-mapped for tables and arrays).",
        RxLargeObjectWarning,
        stacklevel=_user_stacklevel(),
    )
    return list(large)
