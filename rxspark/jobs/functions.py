"""The job functions: ``rx_get_job_status``, ``rx_get_job_results`` ... ``rx_cleanup_jobs``.

Each function takes an :class:`~rxspark.jobs.RxJob` or a job id. An id is
looked up first among the jobs of this process, then in the job store of the
``compute_context`` (default: the active one) or of an explicit ``share_dir``.
A job found only in the store, because another (or an earlier) process ran
it, is returned as a :class:`~rxspark.jobs.StoredJob` whose answers come
from the job's record.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .. import _active
from .._arguments import check_bool as _check_bool
from ..contexts.base import ComputeContext
from ..errors import RxArgumentError, RxArgumentTypeError, RxJobError
from ..options import get_option
from . import store as _store
from .base import BaseJob, JobTable
from .job import RxJob, _live
from .record import STATES
from .stored import StoredJob, missing_job_error, read_job

__all__ = [
    "rx_cancel_job",
    "rx_cleanup_jobs",
    "rx_get_job_output",
    "rx_get_job_results",
    "rx_get_job_status",
    "rx_get_jobs",
    "rx_wait_for_job",
]

JobLike = RxJob | str


# ---------------------------------------------------------------- resolving jobs


def _store_of(compute_context: ComputeContext | None, share_dir: str | os.PathLike[str] | None) -> _store.JobStore:
    if share_dir is not None:
        if not isinstance(share_dir, (str, os.PathLike)):
            raise RxArgumentTypeError(f"share_dir must be a path, got {type(share_dir).__name__}")
        return _store.store_for(share_dir)
    if compute_context is None:
        compute_context = _active.current()
        if compute_context is None:  # rxspark.api (which installs the default context) not imported
            return _store.store_for(os.path.expanduser(get_option("share_dir")))
    if not isinstance(compute_context, ComputeContext):
        raise RxArgumentTypeError(f"compute_context must be a compute context or None, got {type(compute_context).__name__}")
    return _store.store_for(compute_context.share_dir)


def _resolve(job: Any, compute_context: Any, share_dir: Any) -> tuple[BaseJob | None, _store.JobStore | None]:
    """(the job, or None if no record; the store looked in, or None for a job object)."""
    if isinstance(job, BaseJob):
        return job, None
    if not isinstance(job, str):
        raise RxArgumentTypeError(f"job must be an RxJob or a job id string, got {type(job).__name__}")
    _store.check_job_id(job)
    live = _live.get(job)
    if live is not None and not _cleaned(live):
        return live, None
    store = _store_of(compute_context, share_dir)
    record = read_job(store, job)
    return (StoredJob(store, record) if record is not None else None), store


def _cleaned(job: RxJob) -> bool:
    """Whether a job of this process ended and its record was removed (here, or by another
    process that collected or cleaned it up).

    An id then reads "missing", here as in any other process; the job object itself keeps
    answering with its final state.
    """
    if not job.done():
        return False
    recorder = getattr(job, "_recorder", None)
    if getattr(recorder, "cleaned", False):
        return True
    if getattr(recorder, "recorded", False):
        return not _store.store_for(job.share_dir).exists(job.job_id)
    return False


def _require(job: Any, compute_context: Any, share_dir: Any) -> BaseJob:
    found, store = _resolve(job, compute_context, share_dir)
    if found is None:
        assert store is not None
        raise missing_job_error(job, store)
    return found


# ---------------------------------------------------------------- the functions


def rx_get_job_status(job: JobLike, *, compute_context: ComputeContext | None = None, share_dir: str | None = None) -> str:
    """The status of a job.

    Args:
        job: An ``RxJob`` or a job id.
        compute_context: Whose job store to look an id up in (default: the active context's).
        share_dir: Look an id up in this job store instead.

    Returns:
        "queued", "running", "finished", "failed", "canceled", "missing" or
        "undetermined". "missing": no record of that id (it never ran with this
        job store, or its record was removed once its outcome was handed out
        with ``auto_cleanup``, or by ``rx_cleanup_jobs``); "undetermined":
        recorded as queued or running, but the process that ran it is gone.
        A job object answers with its own state, never "missing".

    Raises:
        RxJobError: The job's record is corrupted or not private to this user.
    """
    found, _ = _resolve(job, compute_context, share_dir)
    return "missing" if found is None else found.status()


def rx_get_job_results(
    job: JobLike,
    console_output: bool | None = None,
    auto_cleanup: bool | None = None,
    *,
    timeout: float | None = None,
    compute_context: ComputeContext | None = None,
    share_dir: str | None = None,
    as_iterator: bool = False,
) -> Any:
    """The results of a job, waiting for it to end if needed.

    Args:
        job: An ``RxJob`` or a job id.
        console_output: Print the tasks' output (None: the job's setting).
        auto_cleanup: Delete the job's artifacts once the results are returned
            (None: the job's setting).
        timeout: Seconds to wait at most (None: no limit).
        as_iterator: Yield the results in task order instead; a durable job's are read from
            the store chunk by chunk, never all in memory at once. The artifacts are cleaned up
            (``auto_cleanup``) once the iterator is exhausted.
        compute_context: Whose job store to look an id up in (default: the active context's).
        share_dir: Look an id up in this job store instead.

    Returns:
        What a waiting ``rx_exec`` returns.

    Raises:
        RxJobCanceledError: The job was canceled.
        RxJobError: No such job, a corrupted record, results that were not
            stored, or an owner process that died.
        RxTaskError: With ``continue_on_failure=False``, the first failed task.
        TimeoutError: Not done within ``timeout``.
    """
    _check_bool("as_iterator", as_iterator)
    found = _require(job, compute_context, share_dir)
    if as_iterator:
        return _iterate(found, timeout, auto_cleanup)
    return found.collect(timeout=timeout, console_output=console_output, auto_cleanup=auto_cleanup)


def _iterate(job: BaseJob, timeout: float | None, auto_cleanup: bool | None) -> Iterator[Any]:
    if isinstance(job, StoredJob):
        job.wait_done(timeout)
        yield from job.iter_results()
        first = not job._collected
        job._collected = True
        job._on_collected(job.auto_cleanup if auto_cleanup is None else auto_cleanup, first)
        return
    value = job.collect(timeout=timeout, auto_cleanup=auto_cleanup)
    yield from (value.values() if isinstance(value, dict) else value)


def rx_get_job_output(job: JobLike, *, compute_context: ComputeContext | None = None, share_dir: str | None = None) -> str:
    """The captured stdout/stderr of a job's tasks so far, each line prefixed by its task index.

    Raises:
        RxJobError: No such job, or a corrupted record.
    """
    return _require(job, compute_context, share_dir).output()


def rx_cancel_job(job: JobLike, *, compute_context: ComputeContext | None = None, share_dir: str | None = None) -> bool:
    """Cancel a job.

    A job of this process stops at once (running tasks are interrupted as the
    context allows). For a job of another process, a cancel request is
    recorded and that process cancels the job within about a second.

    Returns:
        True if the job is canceled (or the request was recorded), False if it had already ended.

    Raises:
        RxJobError: No such job, or a corrupted record.
    """
    return _require(job, compute_context, share_dir).cancel()


def rx_wait_for_job(
    job: JobLike,
    timeout: float | None = None,
    *,
    compute_context: ComputeContext | None = None,
    share_dir: str | None = None,
) -> str:
    """Block until a job ends.

    Returns:
        Its final status ("finished", "failed", "canceled", "undetermined", or
        "missing" if its record disappeared meanwhile).

    Raises:
        TimeoutError: Still running after ``timeout`` seconds.
        RxJobError: No such job, or a corrupted record.
    """
    return _require(job, compute_context, share_dir).wait_done(timeout)


def _check_states(states: Any) -> frozenset[str] | None:
    if states is None:
        return None
    if isinstance(states, str):
        states = [states]
    if not isinstance(states, Iterable):
        raise RxArgumentTypeError(f"states must be a state name or a list of them, got {type(states).__name__}")
    states = frozenset(states)
    unknown = sorted(str(s) for s in states - set(STATES))
    if unknown:
        raise RxArgumentError(f"states: unknown state(s) {unknown}; valid: {', '.join(STATES)}")
    return states


def rx_get_jobs(
    compute_context: ComputeContext | None = None,
    states: str | Iterable[str] | None = None,
    *,
    share_dir: str | None = None,
) -> dict[str, RxJob]:
    """The jobs in a job store (and the running jobs of this process that belong to it).

    Args:
        compute_context: Whose job store to list (default: the active context's).
        states: Only jobs in these states (a name or a list of names).
        share_dir: List this job store instead.

    Returns:
        Job id -> job, oldest first. Jobs of this process are their ``RxJob``;
        the others are read-only :class:`StoredJob` views. Corrupted records
        are skipped with a warning naming them.
    """
    wanted = _check_states(states)
    store = _store_of(compute_context, share_dir)
    found: dict[str, BaseJob] = {}
    for job_id in store.job_ids():
        live = _live.get(job_id)
        if live is not None and not _cleaned(live):
            found[job_id] = live
            continue
        try:
            record = read_job(store, job_id)
        except RxJobError as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
            continue
        if record is not None:
            found[job_id] = StoredJob(store, record)
    for job in list(_live.values()):  # running here, not recorded (yet): a short waiting call
        if job.job_id not in found and not job.done() and _store.store_for(job.share_dir).root == store.root:
            found[job.job_id] = job
    statuses = {job_id: job.status() for job_id, job in found.items()}
    ordered = sorted(found.values(), key=lambda j: (j.submitted_at or 0.0, j.job_id))
    return JobTable((j.job_id, j) for j in ordered if wanted is None or statuses[j.job_id] in wanted)


def _flatten(jobs: Any) -> list[Any]:
    if isinstance(jobs, (BaseJob, str)):
        return [jobs]
    if isinstance(jobs, Mapping):
        return list(jobs.values())
    if isinstance(jobs, Iterable):
        return list(jobs)
    raise RxArgumentTypeError(
        f"jobs must be an RxJob, a job id, or a list/dict of them (as rx_get_jobs returns), got {type(jobs).__name__}"
    )


def rx_cleanup_jobs(
    jobs: JobLike | Iterable[JobLike] | Mapping[str, RxJob],
    force: bool = False,
    *,
    compute_context: ComputeContext | None = None,
    share_dir: str | None = None,
) -> list[str]:
    """Delete the artifacts (records, stored results) of ended jobs.

    A finished job whose results were never retrieved is kept, with a
    warning, unless ``force``. Running jobs are kept with a warning (cancel
    them first). A corrupted record is deleted only with ``force``.

    Args:
        jobs: A job, a job id, or a list or dict of them (``rx_get_jobs()`` output).
        force: Also delete unretrieved results and corrupted records.
        compute_context: Whose job store to look ids up in (default: the active context's).
        share_dir: Look ids up in this job store instead.

    Returns:
        The ids of the jobs cleaned up.
    """
    _check_bool("force", force)
    removed = []
    for item in _flatten(jobs):
        try:
            job, store = _resolve(item, compute_context, share_dir)
        except RxJobError as exc:
            if force and isinstance(item, str):
                _store_of(compute_context, share_dir).remove(item)
                removed.append(item)
            else:
                warnings.warn(f"{exc} (kept: pass force=True to delete it)", RuntimeWarning, stacklevel=2)
            continue
        if job is None:
            continue
        status = job.status()
        if status in ("queued", "running"):
            warnings.warn(f"job {job.job_id} is {status}: kept (cancel it first)", RuntimeWarning, stacklevel=2)
            continue
        if status == "finished" and not job.results_retrieved() and not force:
            warnings.warn(
                f"job {job.job_id} finished but its results were never retrieved: kept "
                "(get them with rx_get_job_results, or pass force=True)",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        job.cleanup()
        removed.append(job.job_id)
    return removed
