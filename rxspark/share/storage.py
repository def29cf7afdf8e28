"""Where shares live: locations, and one storage interface with a local and a pyarrow implementation.

A *location* is what users and handles hold: a local path or a URI
(``file://``, ``hdfs://``, ``s3://``, ``gs://``, ``mock://`` ...).
:func:`storage_for` is the one place that decides how a location is reached:
it returns a :class:`Storage` and the path inside it. Plain files (local paths
and ``file://`` URIs) get :class:`LocalStorage`: private modes (directories
0700, files 0600) and a path that can be memory-mapped. Every other scheme
gets :class:`ArrowStorage` over the ``pyarrow.fs`` filesystem the URI names,
where access is governed by the store (HDFS permissions, bucket policies).
Nothing else in ``share/`` asks whether storage is local or remote.

pyarrow is imported only for URIs.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import stat
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .. import _active
from .._atomic import atomic_output, temp_name
from .._private import make_private_dirs
from ..errors import RxShareError
from ..options import get_option

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_WRITE_BUFFER = 1 << 20


# --------------------------------------------------------------------------- locations


def is_uri(location: str) -> bool:
    """Whether ``location`` is a URI (``scheme://...``) rather than a local path."""
    return bool(_URI.match(location))


def join(location: str, name: str) -> str:
    """The location of ``name`` inside the directory ``location`` (a path or a URI).

    A URI's query (``s3://bucket/dir?endpoint_override=host:port``) stays at its end.
    """
    if is_uri(location):
        path, sep, query = location.partition("?")
        return path.rstrip("/") + "/" + name + sep + query
    return os.path.join(location, name)


def dirname(location: str) -> str:
    """The directory of a location (a path or a URI; a URI keeps its query)."""
    if is_uri(location):
        path, sep, query = location.partition("?")
        return path.rsplit("/", 1)[0] + sep + query
    return os.path.dirname(location)


def absolute(location: str) -> str:
    """A location that does not depend on the working directory (``~`` expanded); URIs unchanged."""
    return location if is_uri(location) else os.path.abspath(os.path.expanduser(location))


def shares_dir(base: str | os.PathLike[str]) -> str:
    """The shares directory under a context's ``share_dir`` (``rxspark shares --share-dir``)."""
    # expanduser leaves URIs alone: they never start with "~".
    return join(os.path.expanduser(os.fspath(base)), "shared")


def default_share_dir(context: Any | None = None) -> str:
    """Where ``rx_share`` stores data by default: ``<context share_dir>/shared``.

    Args:
        context: A compute context; None uses the active one (``rx_options()["share_dir"]``
            before any context exists).
    """
    if context is None:
        context = _active.current()
    return shares_dir(get_option("share_dir") if context is None else context.share_dir)


# --------------------------------------------------------------------------- the interface


class Entry(NamedTuple):
    """What :meth:`Storage.stat` and :meth:`Storage.list_files` report about a file."""

    name: str
    size: int | None  # None: the store does not say
    mtime: float
    is_file: bool


class Storage(abc.ABC):
    """One filesystem holding shares; every method takes a path inside it (see :func:`storage_for`).

    Reading a file that is not there raises :class:`FileNotFoundError`.
    """

    @abc.abstractmethod
    def join(self, directory: str, name: str) -> str:
        """The path of ``name`` inside ``directory``."""

    @abc.abstractmethod
    def make_dirs(self, directory: str) -> None:
        """Create ``directory`` and its missing parents."""

    @abc.abstractmethod
    def atomic_output(self, path: str) -> contextlib.AbstractContextManager[Any]:
        """A context manager yielding a binary output stream that replaces ``path`` only on success."""

    @abc.abstractmethod
    def read(self, path: str) -> Any:
        """The whole content of a file, as bytes or a ``pyarrow.Buffer``."""

    @abc.abstractmethod
    def stat(self, path: str) -> Entry | None:
        """The file at ``path`` (symlinks followed), or None if nothing is there."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Whether anything is at ``path``."""

    @abc.abstractmethod
    def list_files(self, directory: str) -> list[Entry]:
        """The regular files directly in ``directory`` (size 0 when unknown); empty if it does not exist."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete a file; no error if it is already gone."""

    @abc.abstractmethod
    def list_dirs(self, directory: str) -> list[str]:
        """The names of the directories directly in ``directory``; empty if it does not exist."""

    @abc.abstractmethod
    def delete_tree(self, directory: str) -> None:
        """Delete a directory and everything in it; no error if it is already gone."""

    def put(self, path: str, data: bytes) -> None:
        """Write ``data`` as the whole file at ``path``, atomically: readers see the old file or all of the new one."""
        with self.atomic_output(path) as out:
            out.write(data)

    def local_path(self, path: str) -> str | None:
        """A path this process can memory-map, or None (the file must be read through :meth:`read`)."""
        return None


class LocalStorage(Storage):
    """Plain files: private to the user, written through :mod:`rxspark._atomic`, memory-mappable."""

    def join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name)

    def make_dirs(self, directory: str) -> None:
        make_private_dirs(directory)

    def atomic_output(self, path: str) -> contextlib.AbstractContextManager[Any]:
        return atomic_output(path, buffering=_WRITE_BUFFER)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def stat(self, path: str) -> Entry | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return Entry(os.path.basename(path), st.st_size, st.st_mtime, stat.S_ISREG(st.st_mode))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list_files(self, directory: str) -> list[Entry]:
        entries = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        entries.append(Entry(entry.name, st.st_size, st.st_mtime, True))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return entries

    def delete(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def list_dirs(self, directory: str) -> list[str]:
        try:
            with os.scandir(directory) as it:
                return [entry.name for entry in it if entry.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete_tree(self, directory: str) -> None:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)

    def local_path(self, path: str) -> str:
        return path


class ArrowStorage(Storage):
    """Any ``pyarrow.fs.FileSystem`` (HDFS, S3, GCS, in-memory ``mock://``); paths use ``/``."""

    def __init__(self, filesystem: Any) -> None:
        self.filesystem = filesystem

    def join(self, directory: str, name: str) -> str:
        return directory.rstrip("/") + "/" + name

    def make_dirs(self, directory: str) -> None:
        self.filesystem.create_dir(directory, recursive=True)

    @contextlib.contextmanager
    def atomic_output(self, path: str) -> Iterator[Any]:
        directory, _, filename = path.rpartition("/")
        tmp = f"{directory}/{temp_name(filename)}"
        try:
            with self.filesystem.open_output_stream(tmp) as out:
                yield out
            self.filesystem.move(tmp, path)
        except BaseException:
            try:
                self.filesystem.delete_file(tmp)
            except Exception:  # noqa: BLE001 - best effort; the original error matters
                pass
            raise

    def read(self, path: str) -> Any:
        with self.filesystem.open_input_file(path) as f:
            return f.read_buffer()

    def stat(self, path: str) -> Entry | None:
        from pyarrow import fs as pafs

        info = self.filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            return None
        return Entry(info.base_name, info.size, _mtime(info), info.type == pafs.FileType.File)

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def list_files(self, directory: str) -> list[Entry]:
        from pyarrow import fs as pafs

        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        except FileNotFoundError:
            return []
        return [Entry(info.base_name, info.size or 0, _mtime(info), True) for info in infos if info.type == pafs.FileType.File]

    def delete(self, path: str) -> None:
        try:
            self.filesystem.delete_file(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                raise


    def list_dirs(self, directory: str) -> list[str]:
        from pyarrow import fs as pafs

        try:
            infos = self.filesystem.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        except FileNotFoundError:
            return []
        return [info.base_name for info in infos if info.type == pafs.FileType.Directory]

    def delete_tree(self, directory: str) -> None:
        try:
            self.filesystem.delete_dir(directory)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                raise

    def put(self, path: str, data: bytes) -> None:
        # An object store makes an object visible only once its upload completes: one put is atomic
        # (a write-then-rename would be a copy and a delete there). Elsewhere (HDFS) the rename is.
        if self.filesystem.type_name in ("s3", "gcs"):
            with self.filesystem.open_output_stream(path) as out:
                out.write(data)
        else:
            super().put(path, data)


def _mtime(info: Any) -> float:
    return info.mtime.timestamp() if info.mtime is not None else 0.0


# --------------------------------------------------------------------------- the one choice

LOCAL = LocalStorage()

# One storage object per (scheme, authority) and process, with the URI prefix that
# precedes its paths: S3/GCS clients are costly to create, and in-memory test
# filesystems (mock://) must be reused.
_storages: dict[tuple[str, str], tuple[Storage, str]] = {}
_storages_lock = threading.Lock()


def storage_for(location: str) -> tuple[Storage, str]:
    """The storage that holds ``location`` and the path inside it.

    Raises:
        RxShareError: A URI that no pyarrow filesystem accepts.
    """
    if not is_uri(location):
        return LOCAL, os.path.abspath(os.path.expanduser(location))
    parts = urlsplit(location)
    key = (parts.scheme.lower(), parts.netloc)
    with _storages_lock:
        cached = _storages.get(key)
    if cached is not None and not parts.query and location.startswith(cached[1]):
        return cached[0], location[len(cached[1]) :]
    from pyarrow import fs as pafs

    try:
        filesystem, path = pafs.FileSystem.from_uri(location)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types here
        raise RxShareError(
            f"cannot open shared storage {location!r}: {type(exc).__name__}: {exc} "
            "(a local path or a URI pyarrow.fs supports: file://, hdfs://, s3://, gs://)",
            location,
        ) from exc
    storage: Storage = LOCAL if isinstance(filesystem, pafs.LocalFileSystem) else ArrowStorage(filesystem)
    # The URI prefix that precedes the filesystem path lets later URIs reuse the object.
    if not parts.query and path and location.endswith(path):
        with _storages_lock:
            _storages.setdefault(key, (storage, location[: len(location) - len(path)]))
    return storage, path


def delete(*locations: str) -> None:
    """Delete the files at these locations; no error for those already gone."""
    for location in locations:
        storage, path = storage_for(location)
        storage.delete(path)
