"""The job store: one private directory per job under a compute context's ``share_dir``.

Layout::

    <share_dir>/                      0700 when rxspark creates it; never shared with other users
        <job_id>/                     0700
            record.json               0600  the job record (JSON: rxspark.jobs.record.JobRecord)
            results.pkl               0600  cloudpickle of the results (finished non-waiting jobs)
            error.pkl                 0600  cloudpickle of (exception, its __cause__) (failed non-waiting jobs)
            cancel-requested          0600  written by ``rx_cancel_job`` from another process

Every file is written atomically (through :mod:`rxspark._atomic`), so a
reader never sees half a record. Records are read
back only from directories owned by the current user and not writable by
anyone else: ``results.pkl`` is unpickled, so a store others can write to
would let them run code in this process.

This module does file I/O only: records go in and out as JSON objects;
:mod:`rxspark.jobs.record` gives them their schema and decides when to write.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle

from .. import _signing
from .. import share as _share
from .._atomic import write_atomic
from .._private import make_private_dirs
from ..errors import RxArgumentError, RxJobError
from ..share import storage as _storage

RECORD = "record.json"
RESULTS = "results.pkl"
ERROR = "error.pkl"
CANCEL = "cancel-requested"
REDACTED = "***REDACTED***"

# A job id is a directory name: no separators, no "..", nothing hidden.
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SECRET_KEY = re.compile(r"secret|password|passwd|token|key|credential", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
# name=value inside a string, e.g. "-Djavax.net.ssl.keyStorePassword=abc" in extraJavaOptions.
_INLINE_SECRET = re.compile(r"(?P<name>[\w.-]*(?:secret|password|passwd|token|key|credential)[\w.-]*=)[^\s,;&'\"]+", re.IGNORECASE)

# ---------------------------------------------------------------- cleanup hooks

_cleanup_hooks: list[Callable[[str, str], Any]] = []


def register_cleanup_hook(hook: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """Call ``hook(job_id, share_dir)`` whenever a job's artifacts are cleaned up.

    For code that keeps per-job files of its own (the shares of a job need no
    hook: :func:`run_cleanup_hooks` deletes them itself). A hook that raises is reported as a warning and does not stop the cleanup.

    Args:
        hook: The function to call.

    Returns:
        ``hook`` (so this works as a decorator).
    """
    if hook not in _cleanup_hooks:
        _cleanup_hooks.append(hook)
    return hook


def unregister_cleanup_hook(hook: Callable[[str, str], Any]) -> None:
    """Remove a hook added with :func:`register_cleanup_hook` (no error if absent)."""
    if hook in _cleanup_hooks:
        _cleanup_hooks.remove(hook)


def run_cleanup_hooks(job_id: str, share_dir: str) -> None:
    """Run the cleanup of what else belongs to a job: its shares, then the registered hooks.

    Shares tagged with the job (``rx_share(..., owner_job=job_id)``) go with the
    job's artifacts: :func:`rxspark.share.on_job_cleanup` is called directly,
    not registered as a hook when a module is imported.
    """
    hooks = [_share.on_job_cleanup, *(hook for hook in _cleanup_hooks if hook is not _share.on_job_cleanup)]
    for hook in hooks:
        try:
            hook(job_id, share_dir)
        except Exception as exc:  # noqa: BLE001 - one hook must not block the cleanup
            warnings.warn(f"rxspark cleanup hook {hook!r} failed for job {job_id}: {exc!r}", RuntimeWarning, stacklevel=2)


# ---------------------------------------------------------------- redaction


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking entries replaced by ``"***REDACTED***"``.

    Dict keys (and the first item of ``(key, value)`` pairs, as in a Spark
    conf's ``getAll()``) matching secret, password, token, key or credential
    have their value replaced, at any depth; so do such ``name=value`` pairs
    inside strings (``-Dssl.keyStorePassword=...`` in Java options), and
    credentials embedded in URLs (``scheme://user:pass@host``).
    """
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and isinstance(value[0], str) and _SECRET_KEY.search(value[0]):
            return [value[0], REDACTED]
        return [redact(v) for v in value]
    if isinstance(value, str):
        if "@" in value:
            value = _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", value)
        if "=" in value:
            value = _INLINE_SECRET.sub(rf"\g<name>{REDACTED}", value)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


def without_secrets(value: Any) -> Any:
    """A copy of ``value`` with secret-looking entries left out (not masked): for what must stay usable.

    A stored job's context recipe rebuilds the context elsewhere, where a masked
    value would be a wrong one: secret settings (keys matching secret, password,
    token, key or credential) are dropped instead, and must come from the other
    side's own configuration. Secrets inside strings are masked as :func:`redact` does.
    """
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items() if not (isinstance(k, str) and _SECRET_KEY.search(k))}
    if isinstance(value, (list, tuple)):
        return type(value)(without_secrets(v) for v in value)
    if isinstance(value, str):
        return redact(value)
    return value


# ---------------------------------------------------------------- owner identity


def _process_start_time(pid: int) -> float | None:
    """When ``pid`` started (an opaque, comparable number), or None if unknown or not running.

    Linux: field 22 of /proc/<pid>/stat (clock ticks since boot); elsewhere
    psutil when installed. Together with the pid it tells a live owner from a
    reused pid.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        if fields[0] in (b"Z", b"X"):  # zombie or dead: not running any more
            return None
        return float(fields[19])
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
    except (OSError, IndexError, ValueError):
        return None
    try:
        import psutil  # type: ignore[import-not-found]

        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - psutil missing, or no such process
        return None


_owner: dict[str, Any] | None = None


def owner() -> dict[str, Any]:
    """This process as a job owner: pid, host and process start time (cached; reset after fork)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner["pid"] != pid:
        _owner = {"pid": pid, "host": socket.gethostname(), "start_time": _process_start_time(pid)}
    return _owner


def owner_alive(record_owner: dict[str, Any] | None) -> bool | None:
    """Whether the process that owns a record still runs: True, False, or None (another host: unknown)."""
    if not isinstance(record_owner, dict) or not isinstance(record_owner.get("pid"), int):
        return False
    if record_owner.get("host") != owner()["host"]:
        return None
    pid = record_owner["pid"]
    started = _process_start_time(pid)
    if started is not None:
        expected = record_owner.get("start_time")
        return expected is None or started == expected
    if os.path.isdir("/proc/self"):
        return False
    try:  # no start times on this system: the pid alone (a reused pid looks alive)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: ours died and the pid was reused
        return False
    return True


# ---------------------------------------------------------------- the store


def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id) or ".." in job_id:
        raise RxArgumentError(f"{job_id!r} is not a job id (like 'rx-20250101-120000-a1b2c3')")
    return job_id


def _check_private(path: str, st: os.stat_result, what: str) -> None:
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid != uid:
        raise RxJobError(
            f"{what} {path} is owned by uid {st.st_uid}, not by you (uid {uid}); rxspark refuses to read or "
            "write job records there. Use a share_dir of your own (RxLocalSeq(share_dir=...) or "
            "rx_options(share_dir=...))."
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RxJobError(
            f"{what} {path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o}); rxspark refuses to "
            f"use it because job results are unpickled from it. Fix: chmod 700 {path}"
        )


class JobStore:
    """The job records under one ``share_dir``: a local directory or a URI.

    A local store (a path or ``file://``) is private: its directories are
    0700 and rxspark refuses one that another user owns or can write to. A
    store elsewhere (``s3://``, ``hdfs://``, any ``pyarrow.fs`` URI) is
    guarded by that storage's own permissions. On both, every file that is
    unpickled carries a signature made with the user's key
    (:mod:`rxspark._signing`) and is refused without a valid one.

    Args:
        share_dir: The directory or URI (``~`` is expanded). A local one is
            created (mode 0700) on the first write.
    """

    def __init__(self, share_dir: str | os.PathLike[str]) -> None:
        location = os.path.expanduser(os.fspath(share_dir))
        if _storage.is_uri(location):
            self.root = location.rstrip("/")
            self._storage, self._base = _storage.storage_for(self.root)
        else:
            self.root = os.path.abspath(location)
            self._storage, self._base = _storage.LOCAL, self.root
        self.local = isinstance(self._storage, _storage.LocalStorage)
        self._checked = False

    def __repr__(self) -> str:
        return f"JobStore({self.root!r})"

    # -------------------------------------------------------- paths and checks

    def job_dir(self, job_id: str) -> str:
        """The job's directory, as a path inside the store's filesystem."""
        return self._storage.join(self._base, check_job_id(job_id))

    def path(self, job_id: str, name: str) -> str:
        """A file of the job (``name`` may contain ``/``), as a path inside the store's filesystem."""
        return self._storage.join(self.job_dir(job_id), name)

    def location(self, job_id: str, name: str = "") -> str:
        """Where a job file is, as users name it (a local path, or a URI under the share_dir)."""
        where = _storage.join(self.root, job_id)
        return _storage.join(where, name) if name else where

    def check(self) -> bool:
        """Whether the store's root exists, after checking it is this user's own and private (``rxspark doctor``).

        Raises:
            RxJobError: The root belongs to someone else, or others can write to it.
        """
        return self._check_root(create=False)

    def _check_root(self, create: bool) -> bool:
        """Make sure the root is ours and private enough; True if it exists."""
        if self._checked:
            return True
        if not self.local:
            try:
                if self._storage.stat(self._base) is None and not self._storage.list_dirs(self._base):
                    if not create:
                        return False
                    self._storage.make_dirs(self._base)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises OSError and its own types
                raise RxJobError(f"cannot reach the job store {self.root}: {type(exc).__name__}: {exc}") from exc
            self._checked = True
            return True
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            if not create:
                return False
            try:
                make_private_dirs(self.root)  # parents too: ~/.rxspark must not be world-writable under umask 0
            except OSError as exc:
                raise RxJobError(f"cannot create the job store {self.root}: {exc}") from exc
            st = os.stat(self.root)
        if not stat.S_ISDIR(st.st_mode):
            raise RxJobError(f"share_dir {self.root} is not a directory")
        _check_private(self.root, st, "share_dir")
        self._checked = True
        return True

    def _check_job_dir(self, job_dir: str) -> bool:
        if not self.local:
            return self._storage.exists(self._storage.join(job_dir, RECORD))
        try:
            st = os.stat(job_dir)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            raise RxJobError(f"job store entry {job_dir} is not a directory")
        _check_private(job_dir, st, "job directory")
        return True

    # -------------------------------------------------------- writing

    def create(self, job_id: str) -> str:
        """Create the job's directory (0700 when local); return its path."""
        job_dir = self.job_dir(job_id)
        if not self.local:
            self._check_root(create=True)
            try:
                self._storage.make_dirs(job_dir)
            except Exception as exc:  # noqa: BLE001
                raise RxJobError(f"cannot create the job entry {self.location(job_id)}: {exc}") from exc
            return job_dir
        for attempt in range(2):
            self._check_root(create=True)
            try:
                os.mkdir(job_dir, 0o700)
                break
            except FileExistsError:
                self._check_job_dir(job_dir)
                break
            except FileNotFoundError:  # the root was removed since it was checked
                self._checked = False
                if attempt:
                    raise RxJobError(f"cannot create the job directory {job_dir}: the share_dir vanished") from None
            except OSError as exc:
                raise RxJobError(f"cannot create the job directory {job_dir}: {exc}") from exc
        os.chmod(job_dir, 0o700)  # the umask may have removed bits we need
        return job_dir

    def make_subdir(self, job_id: str, name: str) -> None:
        """Create a directory inside the job's (private when local)."""
        path = self.path(job_id, name)
        if self.local:
            make_private_dirs(path)
        else:
            self._storage.make_dirs(path)

    def write_bytes(self, job_id: str, name: str, data: bytes) -> None:
        """Write ``data`` atomically as the job's file ``name`` (the job directory must exist)."""
        self._storage.put(self.path(job_id, name), data)

    def write_record(self, job_id: str, record: dict[str, Any]) -> None:
        """Write ``record`` atomically as the job's record.json (the job directory must exist)."""
        if self.local:  # FileNotFoundError when the job's directory was removed: the recorder relies on it
            write_atomic(self.path(job_id, RECORD), json.dumps(record, default=str).encode())
        else:
            self.write_bytes(job_id, RECORD, json.dumps(record, default=str).encode())

    def write_signed(self, job_id: str, name: str, data: bytes) -> None:
        """Write ``data`` with its signature (see :mod:`rxspark._signing`) as the job's file ``name``."""
        self.write_bytes(job_id, name, _signing.sign(f"{job_id}/{name}", data))

    def write_pickle(self, job_id: str, name: str, value: Any) -> None:
        """Write ``cloudpickle(value)``, signed, atomically as ``name`` in the job's directory."""
        self.write_signed(job_id, name, cloudpickle.dumps(value))

    def request_cancel(self, job_id: str) -> None:
        self.write_bytes(job_id, CANCEL, f"{owner()['pid']}@{owner()['host']} {time.time()}\n".encode())

    def cancel_requested(self, job_id: str) -> bool:
        return self._storage.exists(self.path(job_id, CANCEL))

    def delete(self, job_id: str, name: str) -> None:
        """Delete one file of the job (no error if it is gone)."""
        self._storage.delete(self.path(job_id, name))

    def remove(self, job_id: str) -> bool:
        """Delete the job's directory and run the cleanup hooks. True if there was a directory."""
        job_dir = self.job_dir(job_id)
        existed = False
        if self.local:
            if self._check_job_dir(job_dir):
                shutil.rmtree(job_dir, ignore_errors=True)
                existed = True
        elif self._storage.list_files(job_dir) or self._storage.list_dirs(job_dir):
            self._storage.delete_tree(job_dir)
            existed = True
        run_cleanup_hooks(job_id, self.root)
        return existed

    # -------------------------------------------------------- reading

    def read_bytes(self, job_id: str, name: str) -> bytes | None:
        """The content of the job's file ``name``, or None if it is not there (local files are checked private)."""
        path = self.path(job_id, name)
        if self.local:
            try:
                with open(path, "rb") as f:
                    _check_private(path, os.fstat(f.fileno()), "job file")
                    return f.read()
            except FileNotFoundError:
                return None
        try:
            return bytes(self._storage.read(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise

    def read_record(self, job_id: str) -> dict[str, Any] | None:
        """The job's record, or None if the store has no such job.

        Raises:
            RxJobError: The record is corrupted, or the store is not private to this user.
        """
        job_dir = self.job_dir(job_id)
        if not self._check_root(create=False):
            return None
        if self.local and not self._check_job_dir(job_dir):
            return None
        data = self.read_bytes(job_id, RECORD)
        if data is None:
            return None
        path = self.location(job_id, RECORD)
        try:
            record = json.loads(data)
        except ValueError as exc:
            raise RxJobError(
                f"the record of job {job_id} at {path} is corrupted ({exc}); delete it with "
                f"rx_cleanup_jobs({job_id!r}, force=True) or `rxspark job cleanup {job_id} --force`"
            ) from None
        if not isinstance(record, dict) or record.get("job_id") != job_id:
            raise RxJobError(f"the record of job {job_id} at {path} is corrupted (not a record of this job)")
        return record

    def exists(self, job_id: str) -> bool:
        """Whether the store has the job's entry (its record)."""
        return self._storage.exists(self.path(job_id, RECORD))

    def read_signed(self, job_id: str, name: str) -> memoryview:
        """The data of the job's signed file ``name``, its signature checked.

        Raises:
            RxJobError: The file is missing or unreadable; :class:`rxspark._signing.SignatureError`
                (an ``RxJobError``) when its signature is not valid.
        """
        where = self.location(job_id, name)
        try:
            data = self.read_bytes(job_id, name)
        except RxJobError:
            raise
        except Exception as exc:  # noqa: BLE001 - report what could not be read, and where
            raise RxJobError(f"job {job_id}: cannot read {where}: {type(exc).__name__}: {exc}") from exc
        if data is None:
            raise RxJobError(f"job {job_id}: {where} does not exist (cleaned up?)")
        return _signing.verify(f"{job_id}/{name}", data, where)

    def read_pickle(self, job_id: str, name: str) -> Any:
        """Unpickle the job's file ``name`` once its signature is checked.

        Raises:
            RxJobError: Missing, unsigned, tampered with, or not loadable here.
        """
        data = self.read_signed(job_id, name)
        try:
            return cloudpickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - report what could not be loaded, and where
            raise RxJobError(f"job {job_id}: cannot load {self.location(job_id, name)}: {type(exc).__name__}: {exc}") from exc

    def list_names(self, job_id: str, name: str) -> list[str]:
        """The files in the job's directory ``name`` (hidden temporary files left out)."""
        return [e.name for e in self._storage.list_files(self.path(job_id, name)) if not e.name.startswith(".")]

    def job_ids(self) -> Iterator[str]:
        """Ids of the jobs in the store (directories with a job-id name and a record), oldest first by name."""
        if not self._check_root(create=False):
            return
        try:
            names = sorted(self._storage.list_dirs(self._base))
        except Exception as exc:  # noqa: BLE001
            raise RxJobError(f"cannot list the job store {self.root}: {exc}") from exc
        for name in names:
            if _JOB_ID.match(name) and self._storage.exists(self._storage.join(self._storage.join(self._base, name), RECORD)):
                yield name


_stores: dict[str, JobStore] = {}


def store_for(share_dir: str | os.PathLike[str]) -> JobStore:
    """The (cached) :class:`JobStore` of ``share_dir``."""
    key = os.fspath(share_dir)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = JobStore(key)
    return store

