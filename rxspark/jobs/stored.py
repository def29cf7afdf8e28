"""StoredJob: a job of another (or an earlier) process, known from its record in the job store."""

from __future__ import annotations

import concurrent.futures
import os
import time
import warnings
from concurrent.futures import Future
from typing import Any

from ..errors import RxJobCanceledError, RxJobError
from . import store as _store
from .job import DONE_STATES, HEARTBEAT, STATES, RxJob, _live
from .monitor import monitor as _monitor

# A record from another host that has not been refreshed for this long is "undetermined".
STALE_AFTER = 4 * HEARTBEAT

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


def _missing(job_id: str, store: _store.JobStore) -> RxJobError:
    return RxJobError(
        f"no job {job_id!r} in this process or in the job store {store.root}: it never ran with that share_dir, "
        "or it was cleaned up (auto_cleanup); pass compute_context= or share_dir= to look elsewhere"
    )
