"""rx_resume_job: finish a durable job whose driver died, running only its chunks without a checkpoint.

The stored job (:mod:`rxspark.jobs.durable`) says what to run and how it was
laid out; the chunks with a valid checkpoint are read back, the others run on
the given context as a new :class:`~rxspark.jobs.RxJob` with the same id, which
takes the job's lease first (a live owner is refused) and checkpoints what it
runs. The results equal an uninterrupted run's, on any context: the layout
and the ``(seed, chunk)`` random streams are the stored ones.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from .. import _active
from ..errors import RxArgumentError, RxArgumentTypeError, RxJobError
from . import store as _store
from .base import BaseJob
from .durable import Checkpoints, FrozenJob

if TYPE_CHECKING:
    from ..contexts.base import ComputeContext
    from ..worker import ChunkResult
    from .job import RxJob

__all__ = ["Resumed", "rx_resume_job", "prepare"]


@dataclasses.dataclass
class Resumed:
    """A durable job ready to run again here: its lease taken, its saved chunks read back."""

    checkpoints: Checkpoints
    frozen: FrozenJob
    fingerprint: str
    layout: dict[str, Any] | None
    saved: dict[int, ChunkResult]


def prepare(store: _store.JobStore, job_id: str) -> Resumed:
    """Load a durable job for running its missing chunks, and take its lease.

    Raises:
        RxArgumentError: No such job in ``store``.
        RxJobError: Owned by a live driver, not durable, not loadable here, or of another rxspark version.
    """
    if store.read_record(job_id) is None:
        raise RxArgumentError(f"job_id: no job {job_id!r} in the job store {store.root} (pass compute_context= or share_dir= to look elsewhere)")
    checkpoints = Checkpoints(store, job_id)
    frozen, fingerprint = checkpoints.load()
    if frozen.spec.once_per_elem:
        raise RxJobError(f"job {job_id} runs once on each node (once_per_elem): its tasks belong to those nodes, it cannot be resumed elsewhere")
    checkpoints.take()
    layout = checkpoints.read_layout(fingerprint)
    saved: dict[int, ChunkResult] = {}
    if layout is not None:
        for index in sorted(checkpoints.saved()):
            if index < int(layout["n_chunks"]):
                result = checkpoints.load_chunk(index, fingerprint)
                if result is not None:
                    saved[index] = result
    return Resumed(checkpoints, frozen, fingerprint, layout, saved)


def resumed_job(store: _store.JobStore, job_id: str, context: ComputeContext) -> RxJob:
    """The :class:`RxJob` that finishes durable job ``job_id`` on ``context`` (not started)."""
    from .job import RxJob

    resumed = prepare(store, job_id)
    try:
        return RxJob(resumed.frozen.spec, context, job_id=job_id, resumed=resumed, share_dir=store.root, progress=resumed.frozen.progress)
    except BaseException:
        resumed.checkpoints.release()
        raise


def rx_resume_job(
    job: Any,
    compute_context: ComputeContext | str | None = None,
    wait: bool | None = None,
    *,
    share_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """Finish a durable job: run its chunks that have no checkpoint, and return the whole result.

    Only the missing chunks run; the others are read back from the job store.
    The results are bit-identical to an uninterrupted run, on any context,
    because the chunk layout and the ``(seed, chunk)`` streams are the stored ones.

    Args:
        job: An ``RxJob`` or a job id.
        compute_context: Where the missing chunks run (a context or a name; default: the active one).
            Its job store is where a job id is looked up, unless ``share_dir`` is given.
        wait: Block for the results (None: the context's setting) or return an ``RxJob``.
        share_dir: The job store to find the job in.

    Returns:
        What ``rx_exec`` would have returned (a list, or a dict for named calls), or an ``RxJob``.

    Raises:
        RxArgumentError: A job id that is not in the store.
        RxJobError: The job is still owned by a live driver, was not durable, cannot be loaded
            (a bad signature, a missing module), or was written by another rxspark version.
    """
    from ..contexts import registry

    if wait is not None and not isinstance(wait, bool):
        raise RxArgumentTypeError(f"wait must be True, False or None, got {wait!r}")
    context = _active.current() if compute_context is None else registry.resolve(compute_context, "compute_context")
    if isinstance(job, BaseJob):
        job_id = job.job_id
        store = _store.store_for(share_dir if share_dir is not None else job.share_dir)
        if not job.done() and getattr(job, "context", None) is not None:
            raise RxJobError(f"job {job_id} is still running in this process; wait for it or cancel it first")
    elif isinstance(job, str):
        job_id = _store.check_job_id(job)
        store = _store.store_for(share_dir if share_dir is not None else context.share_dir)
    else:
        raise RxArgumentTypeError(f"job must be an RxJob or a job id string, got {type(job).__name__}")
    rxjob = resumed_job(store, job_id, context)
    if not (context.wait if wait is None else wait):
        rxjob.start_background()
        return rxjob
    rxjob.run()
    return rxjob.result()
