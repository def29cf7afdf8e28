"""CallsRun: one job of RxExecutor calls, run on a compute context through the backend interface.

RxExecutor's calls are not ``rx_exec`` jobs: their outcome is each call's
Future, not a job a user holds by id, so such a job has no record, no results
of its own, no progress bar and is never durable. A :class:`CallsRun` is
simply the :class:`~rxspark.contexts.base.JobSink` a context's ``run_chunks``
sees: it hands each delivered chunk to its listener (which resolves the calls'
futures or feeds a map's iterator) and, on ``cancel``, stops the context's work
once, as :class:`~rxspark.jobs.RxJob` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..contexts.base import ComputeContext
from ..jobs.job import new_job_id
from ..plan import TaskPlan
from ..worker import ChunkResult


class CallsRun:
    """A plan of calls run on ``context``; each chunk goes to ``listener`` as it arrives.

    Attributes:
        job_id: The job's id (backends name Spark job groups, files and tags after it).
        plan: The calls' :class:`~rxspark.plan.TaskPlan` (an open plan grows while it runs).
        failure: An infrastructure failure the context could not retry, once ``run`` returned.
    """

    def __init__(self, plan: TaskPlan, context: ComputeContext, listener: Callable[[ChunkResult], None] | None = None) -> None:
        self.job_id = new_job_id()
        self.plan = plan
        self.context = context
        self.listener = listener
        self.stop_event = threading.Event()
        self.failure: BaseException | None = None
        self._delivered: set[int] = set()
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False  # cancel() was called
        self._halted = False  # the context was told to stop (once)

    # ------------------------------------------------------------ JobSink

    def deliver(self, result: ChunkResult) -> None:
        """Hand a finished chunk to the listener (a duplicate attempt of a chunk is dropped)."""
        failure = result.payload_failure()
        if failure is not None:  # no call can run where the payload cannot be loaded: they all fail
            if self.failure is None:
                self.failure = failure
            self._halt()
            return
        with self._lock:
            if result.index in self._delivered:
                return
            self._delivered.add(result.index)
        listener = self.listener
        if listener is not None:
            listener(result)

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def delivered(self) -> int:
        with self._lock:
            return len(self._delivered)

    def note_progress(self, text: str) -> None:
        """No bar: the calls' futures are what the user sees."""

    # ------------------------------------------------------------ lifecycle

    @property
    def canceled(self) -> bool:
        return self._stopped

    def run(self) -> None:
        """Run every chunk in this thread; an infrastructure failure is kept in ``failure``, not raised."""
        with self._lock:
            if self._stopped:
                return
            self._started = True
        try:
            self.context.prepare(self)
            if not self.should_stop():
                self.context.run_chunks(self)
            if self.failure is None and not self.should_stop() and self.delivered() != len(self.plan.chunks):
                missing = sorted(set(range(len(self.plan.chunks))) - self._delivered)
                raise RuntimeError(f"rxspark internal error: chunks {missing[:10]} of job {self.job_id} were never delivered")
        except KeyboardInterrupt:
            self.cancel()
            raise
        except BaseException as exc:  # noqa: BLE001 - the calls fail with it
            if not self._stopped and self.failure is None:
                self.failure = exc
            self._halt()

    def cancel(self) -> bool:
        """Stop the calls' work (queued chunks are dropped, running ones stopped). Idempotent."""
        with self._lock:
            self._stopped = True
        self._halt()
        return True

    def _halt(self) -> None:
        with self._lock:
            if self._halted:
                return
            self._halted = True
            started = self._started
        self.stop_event.set()
        if started:
            self.context.cancel(self)
