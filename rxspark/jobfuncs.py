"""The job functions (``rx_get_job_status`` ...) and :class:`StoredJob`.

Each function takes an :class:`~rxspark.jobs.RxJob` or a job id. An id is
looked up first among the jobs of this process, then in the job store of the
``compute_context`` (default: the active one) or of an explicit ``share_dir``.
A job found only in the store, because another (or an earlier) process ran
it, is returned as a :class:`StoredJob`: a read-only ``RxJob`` whose answers
come from the job's record.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from . import _active
from . import store as _store
from .contexts.base import ComputeContext
from .errors import RxArgumentError, RxArgumentTypeError, RxJobCanceledError, RxJobError
from .jobs import DONE_STATES, HEARTBEAT, STATES, RxJob, _live, _monitor
from .options import get_option
from .plan import _check_bool

__all__ = [
    "StoredJob",
    "rx_cancel_job",
    "rx_cleanup_jobs",
    "rx_get_job_output",
    "rx_get_job_results",
    "rx_get_job_status",
    "rx_get_jobs",
    "rx_wait_for_job",
]

# A record from another host that has not been refreshed for this long is "undetermined".
STALE_AFTER = 4 * HEARTBEAT

JobLike = RxJob | str


def record_status(record: dict[str, Any]) -> str:
    """The status a record stands for, checking that a queued/running job still has a live owner."""
    status = record.get("status")
    if status not in STATES or status == "missing":
        return "undetermined"
    if status not in ("queued", "running"):
        return status
    owner = record.get("owner")
    alive = _store.owner_alive(owner)
    if alive is None:  # another host: trust a recent heartbeat only
        updated = record.get("updated_at")
        fresh = isinstance(updated, (int, float)) and time.time() - updated < STALE_AFTER
        return status if fresh else "undetermined"
    if not alive:
        return "undetermined"
    if owner["pid"] == os.getpid() and record.get("job_id") not in _live:
        return "undetermined"  # recorded by this process, which no longer runs it
    return status


class StoredJob(RxJob):
    """A job known only from its record: another process (or an earlier one) runs or ran it.

    It is an ``RxJob`` and a ``concurrent.futures.Future``. ``status()``,
    ``progress()`` and ``output()`` read the record afresh on each call;
    ``result()`` waits for the job to end (by polling its record), then
    returns the results stored by its owner. ``done()``, ``add_done_callback``
    and ``concurrent.futures.wait`` work too: while the job runs, the record is
    polled about once a second. ``cancel()`` asks the owner process to cancel
    the job; the owner notices within about a second.

    Only non-waiting jobs store their results: for a waiting job, they went to
    the caller that ran it.
    """

    def __init__(self, store: _store.JobStore, record: dict[str, Any]) -> None:
        Future.__init__(self)
        self.store = store
        self._share_dir = store.root
        self.job_id = record["job_id"]
        self.plan = None  # type: ignore[assignment]
        self.context = None  # type: ignore[assignment]
        self.callback = None
        self.waiting = bool(record.get("wait", False))
        self.console_output = bool(record.get("console_output", False))
        self.auto_cleanup = bool(record.get("auto_cleanup", True))
        self.continue_on_failure = bool(record.get("continue_on_failure", True))
        self._collected = False
        self._cleaned = False
        self._recorded = True
        self._apply(record)

    # ------------------------------------------------------------ the record

    def _apply(self, record: dict[str, Any] | None) -> str:
        """Take a freshly read record (None: gone from the store); return the job's status."""
        if record is None:
            self._status = "missing"
        else:
            self._data = record
            self._status = record_status(record)
        if self._status in DONE_STATES or self._status == "missing":
            _monitor.discard(self)
            if not Future.done(self):
                Future.set_result(self, None)  # wakes concurrent.futures.wait and done-callbacks
        else:
            _monitor.add(self)
        return self._status

    def refresh(self) -> str:
        """Read the record again; return the job's status."""
        return self._apply(self.store.read_record(self.job_id))

    def _tick(self, now: float) -> None:
        try:
            self.refresh()
        except RxJobError:  # corrupted or no longer private: stop watching; status() reports it
            _monitor.discard(self)

    @property
    def record(self) -> dict[str, Any]:
        """The job's record as last read (a copy)."""
        return dict(self._data)

    # ------------------------------------------------------------ RxJob API from the record

    @property
    def rng_seed(self) -> int | None:
        return self._data.get("rng_seed")

    @property
    def rng_kind(self) -> str | None:
        return self._data.get("rng_kind")

    @property
    def n_tasks(self) -> int:
        return int(self._data.get("n_tasks") or 0)

    @property
    def function_name(self) -> str:
        return str(self._data.get("function", "?"))

    @property
    def submitted_at(self) -> float | None:  # type: ignore[override]
        return self._data.get("submitted_at")

    @property
    def started_at(self) -> float | None:  # type: ignore[override]
        return self._data.get("started_at")

    @property
    def finished_at(self) -> float | None:  # type: ignore[override]
        return self._data.get("finished_at")

    def status(self) -> str:
        """The job's status, read from its record ("missing" once the record is gone)."""
        return self.refresh()

    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks in all) as last recorded (refreshed about once a second while running)."""
        self.refresh()
        done, total = self._data.get("progress") or (0, self.n_tasks)
        return int(done), int(total)

    def output(self) -> str:
        """The tasks' captured output as last recorded."""
        self.refresh()
        return str(self._data.get("output") or "")

    def task_times(self) -> list[float | None]:
        return [None] * self.n_tasks

    def nodes(self) -> list[str | None]:
        return [None] * self.n_tasks

    def done(self) -> bool:
        return self.refresh() in DONE_STATES or self._status == "missing"

    def running(self) -> bool:
        return self.refresh() == "running"

    def cancelled(self) -> bool:
        return self.refresh() == "canceled"

    def cancel(self) -> bool:
        """Ask the owner process to cancel the job.

        Returns:
            True if the job is canceled or a cancel request was recorded (the
            owner acts on it within about a second), False if it already ended.
        """
        status = self.refresh()
        if status == "canceled":
            return True
        if status in ("finished", "failed", "missing"):
            return False
        if status == "undetermined":  # nobody runs it any more: just say so in the record
            record = dict(self._data, status="canceled", updated_at=time.time())
            self.store.write_record(self.job_id, record)
            self._apply(record)
            return True
        self.store.request_cancel(self.job_id)
        return True

    def wait_done(self, timeout: float | None = None) -> str:
        """Wait until the job ends (polling its record); return its final status.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            status = self.refresh()
            if status in DONE_STATES or status == "missing":
                return status
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise concurrent.futures.TimeoutError(f"job {self.job_id} is still {status} after {timeout} s")
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, 1.0)

    def result(self, timeout: float | None = None) -> Any:
        return self.collect(timeout=timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The job's exception once it ends (None if it finished), as ``Future.exception``."""
        status = self.wait_done(timeout)
        if status == "missing":
            raise _missing(self.job_id, self.store)
        if status == "canceled":
            raise RxJobCanceledError(f"job {self.job_id} was canceled; it has no results")
        if status == "failed":
            return self._stored_exception()
        return self._lost() if status == "undetermined" else None

    def _lost(self) -> RxJobError:
        owner = self._data.get("owner") or {}
        return RxJobError(
            f"job {self.job_id} was {self._data.get('status')} in process {owner.get('pid')} on "
            f"{owner.get('host')}, which no longer runs it: its results are lost. Run it again "
            f"(rng_seed={self.rng_seed!r} reproduces its random numbers), then rx_cleanup_jobs({self.job_id!r})."
        )

    def collect(self, timeout: float | None = None, console_output: bool | None = None, auto_cleanup: bool | None = None) -> Any:
        """The job's results, once it ends, from the job store.

        Raises:
            RxJobCanceledError: The job was canceled.
            RxJobError: The job's owner died ("undetermined"), the record is
                gone, or the results were not stored (a waiting job).
            TimeoutError: Not done within ``timeout`` seconds.
            Exception: The job's own exception, when it failed.
        """
        status = self.wait_done(timeout)
        if status == "missing":
            raise _missing(self.job_id, self.store)
        if status == "undetermined":
            raise self._lost()
        if status == "canceled":
            self._collected_outcome(auto_cleanup)
            raise RxJobCanceledError(f"job {self.job_id} was canceled; it has no results")
        if status == "failed":
            error = self._stored_exception()
            self._collected_outcome(auto_cleanup)
            raise error
        if self._data.get("results") != _store.RESULTS:
            why = self._data.get("results_error") or (
                "it was a waiting job: its results went to the call that ran it" if self.waiting else "unknown reason"
            )
            raise RxJobError(f"job {self.job_id} finished but its results were not stored ({why})")
        value = self.store.read_pickle(self.job_id, _store.RESULTS)
        if not self._collected:
            self._report(value, self.console_output if console_output is None else console_output)
        self._collected_outcome(auto_cleanup)
        return value

    def _stored_exception(self) -> BaseException:
        if self._data.get("results") == _store.ERROR:
            stored = self.store.read_pickle(self.job_id, _store.ERROR)
            if isinstance(stored, tuple) and len(stored) == 2 and isinstance(stored[0], BaseException):
                error, cause = stored
                if isinstance(cause, BaseException):
                    error.__cause__ = cause
                return error
        info = self._data.get("error") or {}
        return RxJobError(f"job {self.job_id} failed: {info.get('type', '?')}: {info.get('message', '')}")

    def _mark_retrieved(self) -> None:
        if not self._data.get("results_retrieved"):
            self._data = dict(self._data, results_retrieved=True)
            try:
                self.store.write_record(self.job_id, self._data)
            except OSError as exc:
                warnings.warn(f"rxspark: could not update the record of job {self.job_id}: {exc}", RuntimeWarning, stacklevel=3)

    def results_retrieved(self) -> bool:
        return self._collected or bool(self._data.get("results_retrieved")) or self._data.get("results") != _store.RESULTS

    def cleanup(self) -> bool:
        """Delete the job's directory in the store. Idempotent."""
        if self._cleaned:
            return False
        self._cleaned = True
        self.store.remove(self.job_id)
        _monitor.discard(self)
        return True

    def __repr__(self) -> str:
        status = self.refresh()
        done, total = self._data.get("progress") or (0, self.n_tasks)
        return f"<RxJob {self.job_id} {self.function_name} {status} {done}/{total} tasks (stored)>"


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


def _missing(job_id: str, store: _store.JobStore) -> RxJobError:
    return RxJobError(
        f"no job {job_id!r} in this process or in the job store {store.root}: it never ran with that share_dir, "
        "or it was cleaned up (auto_cleanup); pass compute_context= or share_dir= to look elsewhere"
    )


def _resolve(job: Any, compute_context: Any, share_dir: Any) -> tuple[RxJob | None, _store.JobStore | None]:
    """(the job, or None if no record; the store looked in, or None for a job object)."""
    if isinstance(job, RxJob):
        return job, None
    if not isinstance(job, str):
        raise RxArgumentTypeError(f"job must be an RxJob or a job id string, got {type(job).__name__}")
    _store.check_job_id(job)
    live = _live.get(job)
    if live is not None:
        return live, None
    store = _store_of(compute_context, share_dir)
    record = store.read_record(job)
    return (StoredJob(store, record) if record is not None else None), store


def _require(job: Any, compute_context: Any, share_dir: Any) -> RxJob:
    found, store = _resolve(job, compute_context, share_dir)
    if found is None:
        assert store is not None
        raise _missing(job, store)
    return found


# ---------------------------------------------------------------- the functions


def rx_get_job_status(job: JobLike, *, compute_context: ComputeContext | None = None, share_dir: str | None = None) -> str:
    """The status of a job.

    Args:
        job: An ``RxJob`` or a job id.
        compute_context: Whose job store to look an id up in (default: the active context's).
        share_dir: Look an id up in this job store instead.

    Returns:
        "queued", "running", "finished", "failed", "canceled", "missing" (no
        such job) or "undetermined" (recorded as running, but the process that
        ran it is gone).

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
) -> Any:
    """The results of a job, waiting for it to end if needed.

    Args:
        job: An ``RxJob`` or a job id.
        console_output: Print the tasks' output (None: the job's setting).
        auto_cleanup: Delete the job's artifacts once the results are returned
            (None: the job's setting).
        timeout: Seconds to wait at most (None: no limit).
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
    found = _require(job, compute_context, share_dir)
    return found.collect(timeout=timeout, console_output=console_output, auto_cleanup=auto_cleanup)


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
    found: dict[str, RxJob] = {}
    for job_id in store.job_ids():
        live = _live.get(job_id)
        if live is not None:
            found[job_id] = live
            continue
        try:
            record = store.read_record(job_id)
        except RxJobError as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
            continue
        if record is not None:
            found[job_id] = StoredJob(store, record)
    for job in list(_live.values()):  # running here, not recorded (yet): a short waiting call
        if job.job_id not in found and not job.done() and os.path.abspath(job.share_dir) == store.root:
            found[job.job_id] = job
    statuses = {job_id: job.status() for job_id, job in found.items()}
    ordered = sorted(found.values(), key=lambda j: (j.submitted_at or 0.0, j.job_id))
    return {j.job_id: j for j in ordered if wanted is None or statuses[j.job_id] in wanted}


def _flatten(jobs: Any) -> list[Any]:
    if isinstance(jobs, (RxJob, str)):
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
