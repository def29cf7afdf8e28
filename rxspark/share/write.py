"""``rx_share``: write an object once to shared storage and return its handle.

The data file is hashed (blake2b-128) while it is written, so the handle and
the ``.meta.json`` sidecar record the digest of exactly the bytes stored; both
files are written atomically (a temporary file, then a rename) through the
location's :class:`~rxspark.share.storage.Storage`, the sidecar last, so a
listed share with metadata always has a complete data file behind it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from ..errors import RxArgumentError, RxArgumentTypeError, RxShareError
from . import formats, storage
from .handle import RxShared

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


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


def _write_file(store: storage.Storage, path: str, write: Callable[[Any], None]) -> tuple[int, str]:
    """Write a file atomically through ``write(sink)``.

    Returns:
        (size in bytes, blake2b-128 hex digest of the content).
    """
    with store.atomic_output(path) as out:
        sink = _HashingSink(out)
        write(sink)
    return sink.size, sink.hash.hexdigest()


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

    base = storage.default_share_dir() if share_dir is None else os.fspath(share_dir)
    store, directory = storage.storage_for(base)
    kind, data = formats.classify(obj)
    stem = formats.PREFIX + (name or f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}")
    filename = stem + formats.KINDS[kind]
    try:
        store.make_dirs(directory)
        size, digest = _write_file(store, store.join(directory, filename), formats.writer(kind, data))
        created = time.time()
        meta = formats.make_meta(filename, kind, size, digest, created, owner_job, obj)
        _write_file(store, store.join(directory, stem + formats.META_SUFFIX), lambda sink: sink.write(meta))
    except OSError as exc:
        raise RxShareError(f"rx_share: cannot write to {base!r}: {type(exc).__name__}: {exc}", base) from exc
    location = storage.join(storage.absolute(base), filename)
    return RxShared(location, digest, kind, size, verify=verify, owner_job=owner_job, created=created)
