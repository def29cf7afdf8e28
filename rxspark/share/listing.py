"""Finding and removing shares: ``list_shares``, ``cleanup_job_shares`` and the job-cleanup hook.

Shares are found from their ``.meta.json`` sidecars; a data file without one
(an interrupted ``rx_share``) or a sidecar whose data file is gone is listed
as incomplete, so ``rxspark shares`` can show and delete it. The jobs layer
calls :func:`on_job_cleanup` when a job is cleaned up, which deletes the
shares tagged with the job's id.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import RxArgumentTypeError, RxShareError
from . import formats, load, storage
from .handle import RxShared


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
        storage.delete(self.path, self.meta_path)


def list_shares(share_dir: str | os.PathLike[str] | None = None) -> list[ShareInfo]:
    """The shares stored in a directory, oldest first (for finding stale ones).

    Args:
        share_dir: The directory ``rx_share`` wrote to (path or URI); default:
            ``<active context's share_dir>/shared``. For a context's
            ``share_dir`` use ``list_shares(shares_dir(that_dir))``.

    Returns:
        One :class:`ShareInfo` per share, including incomplete ones.
    """
    base = storage.default_share_dir() if share_dir is None else os.fspath(share_dir)
    store, directory = storage.storage_for(base)
    files = {entry.name: (entry.size or 0, entry.mtime) for entry in store.list_files(directory)}
    records: list[ShareInfo] = []
    seen: set[str] = set()
    for name in files:
        if not (name.startswith(formats.PREFIX) and name.endswith(formats.META_SUFFIX)):
            continue
        meta_location = storage.join(base, name)
        meta = formats.read_meta(meta_location)
        if meta is None:
            continue
        data_name = meta["file"]
        seen.add(data_name)
        records.append(
            ShareInfo(
                path=storage.join(base, data_name),
                size=int(meta["size"]),
                created=float(meta.get("created", files[name][1])),
                kind=meta["kind"],
                owner_job=meta.get("owner_job"),
                digest=meta["digest"],
                meta_path=meta_location,
                complete=data_name in files,
            )
        )
    for name, (size, mtime) in files.items():
        if name.startswith(formats.PREFIX) and name.endswith(formats.DATA_EXTENSIONS) and name not in seen:
            data_location = storage.join(base, name)
            records.append(
                ShareInfo(data_location, size, mtime, "unknown", None, "", formats.meta_location(data_location), False)
            )
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
            load.drop_location(record.path)
            record.delete()
            deleted.append(record.path)
    return deleted


def on_job_cleanup(job_id: str, share_dir: str) -> None:
    """Job cleanup hook: delete the shares tagged with ``job_id``.

    The jobs layer (``rxspark.jobs.store.run_cleanup_hooks``) calls it when a
    job is cleaned up, with ``share_dir`` the compute context's ``share_dir``
    (the shares live in its ``shared`` subdirectory).
    """
    cleanup_job_shares(job_id, storage.shares_dir(share_dir))
