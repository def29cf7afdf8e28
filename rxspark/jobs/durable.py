"""Durable jobs: the frozen job, its lease, and one checkpoint per finished chunk, in the job's store entry.

A durable job (``rx_exec(..., durable=...)``, API.md section 12) keeps beside
its record (:mod:`rxspark.jobs.store`)::

    <share_dir>/<job_id>/
        job.pkl                 the frozen job (FrozenJob), signed: what to run, written when it becomes durable
        layout.json             the chunk layout (n_tasks, chunk_size, nodes), signed: never recomputed
        lease.json              the driver that owns the job now, and its last heartbeat
        chunks/<k>.pkl          chunk k's ChunkResult (values, errors, output), signed, one file per chunk

A checkpoint is committed by one atomic write (a rename on a filesystem, a
single put on an object store), and only by the driver holding the lease: a
driver that lost it (a resume took over) cannot commit any more. A
checkpoint that fails its signature or belongs to another layout counts as
missing, and its chunk runs again. Because a chunk's random numbers come from
its own ``(seed, chunk)`` stream, a chunk run again gives what it gave the
first time, so a resumed job equals an uninterrupted one, on any context.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._version import __version__
from .._warn import user_stacklevel
from ..errors import RxJobError
from . import store as _store

if TYPE_CHECKING:
    from ..plan import TaskPlan
    from ..spec import JobSpec
    from ..worker import ChunkResult

__all__ = ["FORMAT", "FrozenJob", "Checkpoints", "LEASE_RENEW", "LEASE_STALE"]

FORMAT = 1
FROZEN = "job.pkl"
LAYOUT = "layout.json"
LEASE = "lease.json"
CHUNKS = "chunks"
LOG = "driver.log"

# The lease holder rewrites its heartbeat this often; a holder on another host whose heartbeat is
# older than LEASE_STALE is taken for dead (on this host, its pid says).
LEASE_RENEW = 5.0
LEASE_STALE = 60.0


def _version() -> str:
    return __version__


def chunk_name(index: int) -> str:
    return f"{CHUNKS}/{index:08d}.pkl"


@dataclasses.dataclass
class FrozenJob:
    """What a durable job runs, as stored: enough for any process to run its missing chunks.

    Attributes:
        format: ``FORMAT`` of the writer.
        version: The rxspark version that wrote it (a resume needs the same).
        job_id: The job's id.
        spec: The job's :class:`~rxspark.spec.JobSpec` (its callback is not stored).
        context: How to build the submitting context again: ``{"class": "module.Name", "kwargs": {...}}``,
            or None for a context that cannot be rebuilt elsewhere.
        progress: The job's progress-bar setting.
        created_at: ``time.time()`` when it was frozen.
    """

    format: int
    version: str
    job_id: str
    spec: JobSpec
    context: dict[str, Any] | None
    progress: bool | None = None
    created_at: float = 0.0


class Checkpoints:
    """A durable job's entry in its store: frozen job, layout, lease and chunk checkpoints.

    Args:
        store: The job store.
        job_id: The job.
    """

    def __init__(self, store: _store.JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.token: str | None = None  # the lease this process holds, if any
        self._subdir_made = False

    # -------------------------------------------------------- the frozen job and its layout

    def freeze(self, frozen: FrozenJob) -> str:
        """Store the frozen job; return its fingerprint (sha256 of what was stored)."""
        data = cloudpickle.dumps(frozen)
        self.store.write_signed(self.job_id, FROZEN, data)
        return hashlib.sha256(data).hexdigest()[:32]

    def load(self) -> tuple[FrozenJob, str]:
        """The frozen job and its fingerprint, checked.

        Raises:
            RxJobError: No frozen job (the job was not durable), a bad signature, or another rxspark version.
        """
        if self.store.read_bytes(self.job_id, FROZEN) is None:
            raise RxJobError(
                f"job {self.job_id} was not durable (no {FROZEN} in {self.store.location(self.job_id)}): it cannot be "
                "resumed; run it again (with durable=True to make it resumable)"
            )
        data = self.store.read_signed(self.job_id, FROZEN)
        head = bytes(data)
        try:
            frozen = cloudpickle.loads(head)
        except Exception as exc:  # noqa: BLE001 - e.g. the function's module is missing here
            raise RxJobError(f"job {self.job_id}: the stored job cannot be loaded here: {type(exc).__name__}: {exc}") from exc
        if not isinstance(frozen, FrozenJob) or frozen.job_id != self.job_id:
            raise RxJobError(f"job {self.job_id}: {self.store.location(self.job_id, FROZEN)} is not this job's")
        if frozen.format != FORMAT or frozen.version != _version():
            raise RxJobError(
                f"job {self.job_id} was written by rxspark {frozen.version} (format {frozen.format}); this is rxspark "
                f"{_version()} (format {FORMAT}): resume it with the version that started it"
            )
        return frozen, hashlib.sha256(head).hexdigest()[:32]

    def write_layout(self, plan: TaskPlan, fingerprint: str) -> None:
        layout = {
            "fingerprint": fingerprint,
            "n_tasks": plan.n_tasks,
            "chunk_size": plan.chunk_size,
            "n_chunks": plan.chunk_count,
            "nodes": plan.nodes,
            "names": plan.names,
            "once_per_elem": plan.once_per_elem,
        }
        self.store.write_signed(self.job_id, LAYOUT, json.dumps(layout).encode())

    def read_layout(self, fingerprint: str | None) -> dict[str, Any] | None:
        """The stored layout, or None if the job was never laid out.

        Args:
            fingerprint: The frozen job's, to check the layout is its own (None: not checked).

        Raises:
            RxJobError: A layout with a bad signature, or of another frozen job.
        """
        if self.store.read_bytes(self.job_id, LAYOUT) is None:
            return None
        layout = json.loads(bytes(self.store.read_signed(self.job_id, LAYOUT)))
        if fingerprint is not None and layout.get("fingerprint") != fingerprint:
            raise RxJobError(f"job {self.job_id}: its stored layout belongs to another version of the job")
        return layout

    # -------------------------------------------------------- the lease

    def read_lease(self) -> dict[str, Any] | None:
        data = self.store.read_bytes(self.job_id, LEASE)
        if data is None:
            return None
        try:
            lease = json.loads(data)
        except ValueError:
            return None
        return lease if isinstance(lease, dict) else None

    @staticmethod
    def holder_alive(lease: dict[str, Any] | None) -> bool:
        """Whether the lease's holder may still run the job."""
        if not lease or not lease.get("token") or not lease.get("owner"):
            return False
        alive = _store.owner_alive(lease["owner"])
        if alive is None:  # another host: trust a recent heartbeat only
            beat = lease.get("heartbeat")
            return isinstance(beat, (int, float)) and time.time() - beat < LEASE_STALE
        return alive

    def take(self) -> str:
        """Become the job's owner.

        Raises:
            RxJobError: A live driver holds the lease.
        """
        lease = self.read_lease()
        if lease is not None and lease.get("token") != self.token and self.holder_alive(lease):
            owner = lease["owner"]
            raise RxJobError(
                f"job {self.job_id} is owned by a live driver (pid {owner.get('pid')} on {owner.get('host')}); "
                f"wait for it, or cancel it first (rx_cancel_job({self.job_id!r}) or `rxspark job cancel {self.job_id}`)"
            )
        self.token = secrets.token_hex(8)
        self.renew()
        again = self.read_lease()
        if again is None or again.get("token") != self.token:  # another driver took it at the same moment
            self.token = None
            raise RxJobError(f"job {self.job_id}: another driver took it over at the same time")
        return self.token

    def renew(self) -> None:
        """Write this process's lease with a fresh heartbeat."""
        lease = {"token": self.token, "owner": dict(_store.owner()), "heartbeat": time.time()}
        self.store.write_bytes(self.job_id, LEASE, json.dumps(lease).encode())

    def owns(self) -> bool:
        lease = self.read_lease()
        return self.token is not None and lease is not None and lease.get("token") == self.token

    def release(self) -> None:
        """Give the lease up (the job ended here): a resume needs no wait for this process."""
        if self.token is not None and self.owns():
            self.store.write_bytes(self.job_id, LEASE, json.dumps({"token": None, "owner": None, "heartbeat": time.time()}).encode())
        self.token = None

    # -------------------------------------------------------- chunk checkpoints

    def save(self, result: ChunkResult, fingerprint: str) -> bool:
        """Commit chunk ``result.index``'s checkpoint; False if this process lost the lease."""
        if not self.owns():
            return False
        if not self._subdir_made:
            self.store.make_subdir(self.job_id, CHUNKS)
            self._subdir_made = True
        data = cloudpickle.dumps((fingerprint, result))
        self.store.write_signed(self.job_id, chunk_name(result.index), data)
        return True

    def saved(self) -> set[int]:
        """Indices of the chunks with a checkpoint (not yet verified)."""
        found = set()
        for name in self.store.list_names(self.job_id, CHUNKS):
            stem, _, ext = name.partition(".")
            if ext == "pkl" and stem.isdigit():
                found.add(int(stem))
        return found

    def load_chunk(self, index: int, fingerprint: str) -> ChunkResult | None:
        """Chunk ``index``'s checkpoint, or None if it is missing, unsigned or of another layout (it runs again)."""
        name = chunk_name(index)
        try:
            data = self.store.read_signed(self.job_id, name)
            stored_fingerprint, result = cloudpickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - a bad checkpoint is a missing one
            warnings.warn(
                f"rxspark: job {self.job_id}: checkpoint {name} is not usable ({exc}); its chunk runs again",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
            return None
        if stored_fingerprint != fingerprint or getattr(result, "index", None) != index:
            return None
        return result


    def iter_results(self) -> Iterator[Any]:
        """A finished job's results in task order, read chunk by chunk (a failed task's slot holds its error).

        Raises:
            RxJobError: The layout or a chunk's checkpoint is missing or not valid.
        """
        layout = self.read_layout(None)
        if layout is None:
            raise RxJobError(f"job {self.job_id}: no stored layout in {self.store.location(self.job_id)}")
        fingerprint = layout["fingerprint"]
        for index in range(int(layout["n_chunks"])):
            result = self.load_chunk(index, fingerprint)
            if result is None:
                raise RxJobError(f"job {self.job_id}: the checkpoint of chunk {index} is missing or not valid; rx_resume_job runs it again")
            values = result.get_values()
            for local, value in enumerate(values):
                yield result.errors.get(result.start + local, value)

    def read_results(self) -> Any:
        """A finished job's results as ``rx_exec`` returns them (a list, or a dict for named or per-node calls)."""
        layout = self.read_layout(None) or {}
        values = list(self.iter_results())
        keys = layout.get("names") or (layout.get("nodes") if layout.get("once_per_elem") else None)
        return dict(zip(keys, values)) if keys is not None else values


class Durability:
    """Makes one running job durable, when its ``durable`` setting says so (driven by :class:`~rxspark.jobs.RxJob`).

    ``durable=True``, or ``None`` for a job that does not wait: from its start.
    ``None`` for a waiting call: once it has run ``RECORD_DELAY`` (the chunks
    finished before are written then). ``False``: never.

    Args:
        job: The job (its ``spec``, ``context``, ``plan``, ``job_id``, ``share_dir``).
        frozen: For a resumed or detached job, its stored frozen job and fingerprint.
    """

    def __init__(self, job: Any, frozen: tuple[FrozenJob, str] | None = None, checkpoints: Checkpoints | None = None) -> None:
        self._job_ref = weakref.ref(job)  # the job owns this; a finished job is freed as soon as nobody holds it
        self.mode: bool | None = job.spec.durable
        self.active = False
        self.failed: str | None = None  # why it stopped writing (a lost lease, a store error)
        self.fingerprint: str | None = frozen[1] if frozen is not None else None
        self._checkpoints = checkpoints
        self._layout_stored = False
        self._released = False
        self._saved: set[int] = set()
        self._lock = threading.Lock()
        self._renewed = 0.0

    @property
    def _job(self) -> Any:
        job = self._job_ref()
        assert job is not None, "a job's durability outlived it"
        return job

    @property
    def checkpoints(self) -> Checkpoints:
        if self._checkpoints is None:
            self._checkpoints = Checkpoints(_store.store_for(self._job.share_dir), self._job.job_id)
        return self._checkpoints

    @property
    def saved_count(self) -> int:
        return len(self._saved)

    def complete(self) -> bool:
        """Whether every chunk of the job is checkpointed (its results can be read from the store)."""
        plan = self._job.plan
        return self.active and self.failed is None and plan is not None and len(self._saved) == plan.chunk_count

    def wanted_from_start(self) -> bool:
        resumed = self.fingerprint is not None
        return resumed or self.mode is True or (self.mode is None and not self._job.waiting)

    def preload(self, saved: dict[int, ChunkResult], layout_stored: bool) -> None:
        """A resumed job: these chunks are saved already (and its layout, unless it was never laid out)."""
        self._saved.update(saved)
        self._layout_stored = layout_stored

    def activate(self) -> None:
        """Become durable now: freeze (unless stored already), lay down the layout, take the lease, and save
        every chunk delivered so far (read after becoming active: one delivered meanwhile is not missed)."""
        job = self._job
        with self._lock:
            if self.active or self.failed or self._released or (self.mode is False and self.fingerprint is None):
                return
            try:
                job._recorder.ensure_entry()
                checkpoints = self.checkpoints
                if self.fingerprint is None:
                    self.fingerprint = checkpoints.freeze(frozen_of(job))
                if not self._layout_stored:
                    checkpoints.write_layout(job.plan, self.fingerprint)
                    self._layout_stored = True
                if checkpoints.token is None:
                    checkpoints.take()
                self._renewed = time.monotonic()
                self.active = True
                job._recorder.on_durable()  # the record says so at once: a reader learns it can be resumed
            except Exception as exc:  # noqa: BLE001 - the job runs on, only not durably: say so once
                self._give_up(f"{type(exc).__name__}: {exc}")
                return
        for result in job._chunks.delivered():
            self.save(result)

    def save(self, result: ChunkResult) -> None:
        """Checkpoint one delivered chunk (in the job's thread)."""
        if not self.active or self._released or result.index in self._saved:
            return
        assert self.fingerprint is not None
        try:
            committed = self.checkpoints.save(result, self.fingerprint)
        except Exception as exc:  # noqa: BLE001
            self._give_up(f"{type(exc).__name__}: {exc}")
            return
        if not committed:
            self._give_up("another driver took the job over (rx_resume_job); this one commits nothing more")
            return
        with self._lock:
            self._saved.add(result.index)

    def tick(self, now: float) -> None:
        """About once a second while the job runs (in the monitor's thread): renew the lease.

        Under the lock that :meth:`finish` takes: a job that ends meanwhile gives
        its lease up after this renewal, never before it (which would read as a
        lost lease, and leave a live lease behind a finished job).
        """
        if not self.active or self._released or time.monotonic() - self._renewed < LEASE_RENEW:
            return
        with self._lock:
            if not self.active or self._released:
                return
            self._renewed = time.monotonic()
            try:
                owned = self.checkpoints.owns()
                if owned:
                    self.checkpoints.renew()
            except Exception:  # noqa: BLE001 - the next tick tries again
                return
        if not owned:
            self._give_up("another driver took the job over (rx_resume_job); this one commits nothing more")

    def finish(self) -> None:
        """The job ended here: give the lease up (what was saved stays, for the record and collectors)."""
        with self._lock:
            if self._released:
                return
            self._released = True
            if self.active:
                try:
                    self.checkpoints.release()
                except Exception:  # noqa: BLE001, S110 - a stale lease only makes a resume wait for its staleness
                    pass

    def _give_up(self, why: str) -> None:
        self.active = False
        if self.failed is None:
            self.failed = why
            warnings.warn(
                f"rxspark: job {self._job.job_id} is no longer durable: {why}", RuntimeWarning, stacklevel=user_stacklevel()
            )


def frozen_of(job: Any) -> FrozenJob:
    """The frozen form of a job of this process."""
    return FrozenJob(
        format=FORMAT,
        version=_version(),
        job_id=job.job_id,
        spec=job.spec,
        context=job.context.recipe() if job.context.can_detach else None,
        progress=None,
        created_at=time.time(),
    )
