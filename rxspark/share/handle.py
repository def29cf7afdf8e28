"""``RxShared``: the small handle to a share that tasks receive instead of the object.

The handle pickles to its location, content hash, kind and size (a few
hundred bytes), so passing it as an argument or exec object costs nothing;
``handle.value`` loads the object through the per-process cache of
:mod:`rxspark.share.load`.
"""

from __future__ import annotations

import os
from typing import Any

from .._warn import BY_REFERENCE, human_size
from ..errors import RxArgumentError, RxShareError
from . import formats, load, storage


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
        if kind not in formats.KINDS:
            raise RxArgumentError(f"RxShared: kind must be one of {sorted(formats.KINDS)}, got {kind!r}")
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
        meta_uri = uri if uri.partition("?")[0].endswith(formats.META_SUFFIX) else formats.meta_location(uri)
        meta = formats.read_meta(meta_uri)
        if meta is None:
            raise RxShareError(f"no share metadata at {meta_uri} (not a share created by rx_share, or deleted)", meta_uri)
        return cls(
            storage.join(storage.dirname(meta_uri), meta["file"]), meta["digest"], meta["kind"], int(meta["size"]),
            verify=verify, owner_job=meta.get("owner_job"), created=float(meta.get("created", 0.0)),
        )

    @property
    def key(self) -> tuple[str, str]:
        """The per-process cache key, as (uri, digest)."""
        return (self.uri, self.digest)

    @property
    def meta_uri(self) -> str:
        """Location of the ``.meta.json`` sidecar."""
        return formats.meta_location(self.uri)

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
        return load.cached_load(self)

    def release(self) -> None:
        """Drop this share's value from this process's cache (the file stays)."""
        load.release(self.key)

    def exists(self) -> bool:
        """Whether the data file is still there."""
        store, path = storage.storage_for(self.uri)
        return store.exists(path)

    def delete(self) -> None:
        """Delete the data file and its metadata (if still there), and release the cached value."""
        self.release()
        storage.delete(self.uri, self.meta_uri)

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
        return f"RxShared(kind={self.kind!r}, size={human_size(self.size)}, uri={self.uri!r})"


# Size warnings leave handles out: they pickle to a path, whatever the data's size.
setattr(RxShared, BY_REFERENCE, True)
