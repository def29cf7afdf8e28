"""StoredJob: a job of another (or an earlier) process, known from its :class:`~rxspark.jobs.record.JobRecord`.

It answers from the record in the job store (re-read on each question), waits
by polling the record, and cancels by leaving a request that the owner's
monitor picks up. :func:`record_status` says what a record stands for once
the owner's liveness is checked: a job recorded as running by a process that
is gone is "undetermined".
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from .._compat import JobTimeoutError
from .._warn import user_stacklevel
from ..errors import RxJobCanceledError, RxJobError
from . import store as _store
from .base import BaseJob
from .durable import Checkpoints
from .job import RxJob, _live
from .monitor import monitor as _monitor
from .record import CHUNKS, DONE_STATES, HEARTBEAT, STATES, JobRecord

__all__ = ["STALE_AFTER", "StoredJob", "missing_job_error", "read_job", "record_status"]

# A record from another host that has not been refreshed for this long is "undetermined".
STALE_AFTER = 4 * HEARTBEAT


def record_status(record: JobRecord | Mapping[str, Any]) -> str:
    """The status a record stands for, checking that a queued/running job still has a live owner."""
    if not isinstance(record, JobRecord):
        record = JobRecord.from_json(record)
    status = record.status
    if status not in STATES or status == "missing":
        return "undetermined"
    if status not in ("queued", "running"):
        return status
    alive = _store.owner_alive(record.owner)
    if alive is None:  # another host: trust a recent heartbeat only
        updated = record.updated_at
        fresh = updated is not None and time.time() - updated < STALE_AFTER
        return status if fresh else "undetermined"
    if not alive:
        return "undetermined"
    if record.owner_pid == os.getpid() and record.job_id not in _live:
        return "undetermined"  # recorded by this process, which no longer runs it
    return status


def read_job(store: _store.JobStore, job_id: str) -> JobRecord | None:
    """The record of ``job_id`` in ``store``, or None if it has none.

    Raises:
        RxJobError: The record is corrupted, or the store is not private to this user.
    """
    data = store.read_record(job_id)
    return None if data is None else JobRecord.from_json(data)


def missing_job_error(job_id: str, store: _store.JobStore) -> RxJobError:
    return RxJobError(
        f"no job {job_id!r} in this process or in the job store {store.root} (status 'missing'): it never ran "
        "with that share_dir (pass compute_context= or share_dir= to look elsewhere), or its record was removed: "
        "with auto_cleanup once its outcome was handed out (a blocking rx_exec returning or raising, job.result(), "
        "rx_get_job_results or `rxspark job results` without --keep), or by rx_cleanup_jobs"
    )


def _recorded(name: str) -> Any:
    """A read-only attribute of a stored job: the field ``name`` of its record as last read."""
    return property(lambda job: getattr(job._record, name), doc=f"The job's {name!r}, from its record.")


class StoredJob(BaseJob):
    """A job known only from its record: another process (or an earlier one) runs or ran it.

    It is a ``concurrent.futures.Future`` and answers as an ``RxJob`` does
    (``isinstance(job, RxJob)`` holds). ``status()``,
    ``progress()`` and ``output()`` read the record afresh on each call;
    ``result()`` waits for the job to end (by polling its record), then
    returns the results stored by its owner. ``done()``, ``add_done_callback``
    and ``concurrent.futures.wait`` work too: while the job runs, the record is
    polled about once a second. ``cancel()`` asks the owner process to cancel
    the job; the owner notices within about a second.

    Only non-waiting jobs store their results: for a waiting job, they went to
    the caller that ran it.

    Args:
        store: The job store the record is in.
        record: The record as read from it.
    """

    _repr_note = " (stored)"

    def __init__(self, store: _store.JobStore, record: JobRecord) -> None:
        super().__init__(
            record.job_id,
            waiting=record.wait,
            console_output=record.console_output,
            auto_cleanup=record.auto_cleanup,
            continue_on_failure=record.continue_on_failure,
        )
        self.store = store
        self._record = record
        self._status = "undetermined"
        self._cleaned = False
        self._apply(record)

    # ------------------------------------------------------------ the record

    def _apply(self, record: JobRecord | None) -> str:
        """Take a freshly read record (None: gone from the store); return the job's status."""
        if record is None:
            self._status = "missing"
        else:
            self._record = record
            self._status = record_status(record)
        if self._status in DONE_STATES or self._status == "missing":
            _monitor.discard(self)
            # The Future's own done() and set_result(): this class answers done() from the record.
            if not Future.done(self):
                Future.set_result(self, None)  # wakes concurrent.futures.wait and done-callbacks
        else:
            _monitor.add(self)
        return self._status

    def refresh(self) -> str:
        """Read the record again; return the job's status."""
        return self._apply(read_job(self.store, self.job_id))

    def _tick(self, now: float) -> None:
        try:
            self.refresh()
        except RxJobError:  # corrupted or no longer private: stop watching; status() reports it
            _monitor.discard(self)

    @property
    def record(self) -> JobRecord:
        """The job's record as last read (a copy)."""
        return dataclasses.replace(self._record)

    # ------------------------------------------------------------ the job API, from the record

    rng_seed = _recorded("rng_seed")
    rng_kind = _recorded("rng_kind")
    n_tasks = _recorded("n_tasks")
    function_name = _recorded("function")
    submitted_at = _recorded("submitted_at")
    started_at = _recorded("started_at")
    finished_at = _recorded("finished_at")

    @property
    def share_dir(self) -> str:
        return self.store.root

    def status(self) -> str:
        """The job's status, read from its record ("missing" once the record is gone)."""
        return self.refresh()

    def _progress(self) -> tuple[int, int]:
        return self._record.progress or (0, self.n_tasks)

    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks in all) as last recorded (refreshed about once a second while running)."""
        self.refresh()
        return self._progress()

    def output(self) -> str:
        """The tasks' captured output as last recorded."""
        self.refresh()
        return self._record.output

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
            record = dataclasses.replace(self._record, status="canceled", updated_at=time.time())
            self.store.write_record(self.job_id, record.to_json())
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
                raise JobTimeoutError(f"job {self.job_id} is still {status} after {timeout} s")
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, 1.0)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The job's exception once it ends (None if it finished), as ``Future.exception``."""
        status = self.wait_done(timeout)
        if status == "missing":
            raise missing_job_error(self.job_id, self.store)
        if status == "canceled":
            raise RxJobCanceledError(f"job {self.job_id} was canceled; it has no results")
        if status == "failed":
            return self._stored_exception()
        return self._lost() if status == "undetermined" else None

    def chunks_saved(self) -> tuple[int, int] | None:
        """(chunks saved, chunks in all) of a durable job, counted in the store now; None if not durable."""
        record = self._record
        checkpoints = Checkpoints(self.store, self.job_id)
        try:
            layout = checkpoints.read_layout(None) if record.durable or record.status in ("queued", "running") else None
        except RxJobError:
            layout = None
        if not record.durable and layout is None:
            return None
        total = layout["n_chunks"] if layout is not None else (record.chunks_total or record.n_chunks or 0)
        return len(checkpoints.saved()), int(total)

    def resume_command(self) -> str:
        """The command that resumes this job (``rxspark job resume``)."""
        return f"rxspark job resume {self.job_id} --share-dir {self.store.root}"

    def iter_results(self) -> Iterator[Any]:
        """A finished durable job's results in task order, read from the store chunk by chunk."""
        status = self.wait_done()
        if status != "finished" or self._record.results != CHUNKS:
            yield from self._outcome_values()
            return
        yield from Checkpoints(self.store, self.job_id).iter_results()

    def _outcome_values(self) -> Iterator[Any]:
        value = self.result()
        yield from (value.values() if isinstance(value, dict) else value)

    def _lost(self) -> RxJobError:
        record = self._record
        saved = self.chunks_saved()
        if saved is not None:
            return RxJobError(
                f"job {self.job_id} was {record.status} in process {record.owner_pid} on {record.owner_host}, which no "
                f"longer runs it; it is durable, with {saved[0]} of {saved[1]} chunks saved: finish it with "
                f"rx_resume_job({self.job_id!r}) or `{self.resume_command()}`"
            )
        return RxJobError(
            f"job {self.job_id} was {record.status} in process {record.owner_pid} on "
            f"{record.owner_host}, which no longer runs it: its results are lost. Run it again "
            f"(rng_seed={self.rng_seed!r} reproduces its random numbers), then rx_cleanup_jobs({self.job_id!r})."
        )

    def _outcome(self, timeout: float | None) -> tuple[str, Any]:
        """The outcome from the job store, once the job ends.

        Raises:
            RxJobError: The job's owner died ("undetermined"), the record is
                gone, or the results were not stored (a waiting job).
            TimeoutError: Not done within ``timeout`` seconds.
        """
        status = self.wait_done(timeout)
        if status == "missing":
            raise missing_job_error(self.job_id, self.store)
        if status == "undetermined":
            raise self._lost()
        if status == "canceled":
            return "canceled", None
        if status == "failed":
            return "failed", self._stored_exception()
        if self._record.results == CHUNKS:
            return "finished", Checkpoints(self.store, self.job_id).read_results()
        if self._record.results != _store.RESULTS:
            why = self._record.results_error or (
                "it was a waiting job: its results went to the call that ran it" if self.waiting else "unknown reason"
            )
            raise RxJobError(f"job {self.job_id} finished but its results were not stored ({why})")
        return "finished", self.store.read_pickle(self.job_id, _store.RESULTS)

    def _stored_exception(self) -> BaseException:
        if self._record.results == _store.ERROR:
            stored = self.store.read_pickle(self.job_id, _store.ERROR)
            if isinstance(stored, tuple) and len(stored) == 2 and isinstance(stored[0], BaseException):
                error, cause = stored
                if isinstance(cause, BaseException):
                    error.__cause__ = cause
                return error
        info = self._record.error or {}
        return RxJobError(f"job {self.job_id} failed: {info.get('type', '?')}: {info.get('message', '')}")

    def _on_collected(self, cleanup: bool, first: bool) -> None:
        if cleanup:
            self.cleanup()
        elif first and not self._record.results_retrieved:
            # Note in the record that the results were handed out (rx_cleanup_jobs needs no force then).
            self._record = dataclasses.replace(self._record, results_retrieved=True)
            try:
                self.store.write_record(self.job_id, self._record.to_json())
            except OSError as exc:
                warnings.warn(f"rxspark: could not update the record of job {self.job_id}: {exc}", RuntimeWarning, stacklevel=user_stacklevel())

    def results_retrieved(self) -> bool:
        return self._collected or self._record.results_retrieved or self._record.results not in (_store.RESULTS, CHUNKS)

    def cleanup(self) -> bool:
        """Delete the job's directory in the store. Idempotent."""
        if self._cleaned:
            return False
        self._cleaned = True
        self.store.remove(self.job_id)
        _monitor.discard(self)
        return True

    def _summary(self) -> tuple[str, int, int]:
        return self.refresh(), *self._progress()


# Users treat the jobs rx_get_jobs() returns as RxJobs: a stored one answers the same questions
# (from its record), so it counts as one for isinstance() without inheriting a running job's state.
RxJob.register(StoredJob)
