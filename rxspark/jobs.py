"""RxJob: one ``rx_exec`` call in flight, as a ``concurrent.futures.Future``.

The job receives :class:`~rxspark.worker.ChunkResult` objects from its compute
context as chunks finish, calls the user's callback, applies the failure
policy (``continue_on_failure``), and assembles the results in task order
(a list, or a dict for named ``elem_args`` / ``once_per_elem``). Warnings and
console output are emitted in the thread that collects the results.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING
from typing import TYPE_CHECKING, Any

import cloudpickle

from .errors import RxJobCanceledError, RxTaskError, RxTaskFailureWarning
from .plan import TaskPlan
from .worker import ChunkResult

if TYPE_CHECKING:
    from .contexts.base import ComputeContext

STATES = ("queued", "running", "finished", "failed", "canceled", "missing", "undetermined")


def new_job_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"rx-{stamp}-{secrets.token_hex(3)}"


class RxJob(Future):
    """A running or finished ``rx_exec`` job.

    It is a ``concurrent.futures.Future``: ``result(timeout)``, ``done()``,
    ``add_done_callback`` and ``concurrent.futures.wait`` / ``as_completed``
    work as usual. ``result()`` returns what a waiting ``rx_exec`` returns.

    Attributes:
        job_id: Unique id of the job (also accepted by the ``rx_get_job_*`` functions).
        rng_seed: The seed in force (the drawn one for ``rng_seed="auto"``), or None.
    """

    def __init__(
        self,
        plan: TaskPlan,
        context: ComputeContext,
        *,
        continue_on_failure: bool = True,
        console_output: bool = False,
        auto_cleanup: bool = True,
        callback: Callable[[Any], Any] | None = None,
        job_id: str | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id or new_job_id()
        self.plan = plan
        self.context = context
        self.continue_on_failure = continue_on_failure
        self.console_output = console_output
        self.auto_cleanup = auto_cleanup
        self.callback = callback
        self.submitted_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._chunks: dict[int, ChunkResult] = {}
        self._tasks_done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first_failure: RxTaskError | None = None
        self._failure_causes: dict[int, bytes] = {}
        self._collected = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ public API

    @property
    def rng_seed(self) -> int | None:
        return self.plan.rng.seed if self.plan.rng is not None else None

    @property
    def n_tasks(self) -> int:
        return self.plan.n_tasks

    def status(self) -> str:
        """One of "queued", "running", "finished", "failed", "canceled"."""
        with self._condition:
            state = self._state
            if state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return "canceled"
            if state == FINISHED:
                return "failed" if self._exception is not None else "finished"
            return "running" if state == RUNNING else "queued"

    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks in all)."""
        return self._tasks_done, self.plan.n_tasks

    def output(self) -> str:
        """Captured stdout/stderr of the tasks done so far, each line prefixed by its task index."""
        with self._lock:
            chunks = [self._chunks[k] for k in sorted(self._chunks)]
        parts = []
        for cr in chunks:
            for local in range(cr.stop - cr.start):
                text = cr.task_output(local)
                if text:
                    parts.append(_prefix(cr.start + local, text))
        return "".join(parts)

    def task_times(self) -> list[float | None]:
        """Seconds each task took (None for tasks not run)."""
        times: list[float | None] = [None] * self.plan.n_tasks
        with self._lock:
            for cr in self._chunks.values():
                times[cr.start : cr.start + len(cr.times)] = cr.times
        return times

    def nodes(self) -> list[str | None]:
        """The node each task ran on (None for tasks not run)."""
        where: list[str | None] = [None] * self.plan.n_tasks
        with self._lock:
            for cr in self._chunks.values():
                where[cr.start : cr.stop] = [cr.node] * (cr.stop - cr.start)
        return where

    def cancel(self) -> bool:
        """Stop the job: pending chunks are dropped and running ones stopped.

        Returns:
            True if the job is canceled, False if it had already finished.
        """
        with self._condition:
            if self._state == FINISHED:
                return False
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            was_running = self._state == RUNNING
            self._state = CANCELLED
            self._condition.notify_all()
        self._stop.set()
        if was_running:
            self.context._cancel(self)
        self.finished_at = time.time()
        self._invoke_callbacks()
        return True

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its results (list in task order, or dict).

        Raises:
            RxJobCanceledError: The job was canceled.
            RxTaskError: With ``continue_on_failure=False``, the first failed task.
            TimeoutError: Not done within ``timeout`` seconds.
        """
        return self.collect(timeout=timeout)

    def collect(self, timeout: float | None = None, console_output: bool | None = None, auto_cleanup: bool | None = None) -> Any:
        """``result()`` with per-call overrides of ``console_output`` and ``auto_cleanup``."""
        try:
            value = super().result(timeout)
        except CancelledError:
            raise RxJobCanceledError(f"job {self.job_id} was canceled; it has no results") from None
        first = not self._collected
        self._collected = True
        if first:
            if self.console_output if console_output is None else console_output:
                text = self.output()
                if text:
                    sys.stdout.write(text)
            failures = [v for v in (value.values() if isinstance(value, dict) else value) if isinstance(v, RxTaskError)]
            if failures:
                shown = ", ".join(str(f.task_index) for f in failures[:10]) + (" ..." if len(failures) > 10 else "")
                warnings.warn(
                    RxTaskFailureWarning(
                        f"{len(failures)} of {self.plan.n_tasks} tasks of {self.plan.function_name} failed "
                        f"(tasks {shown}); first: {failures[0].exc_type}: {failures[0].message}"
                    ),
                    stacklevel=_user_stacklevel(),
                )
        return value

    def __repr__(self) -> str:
        done, total = self.progress()
        return f"<RxJob {self.job_id} {self.plan.function_name} {self.status()} {done}/{total} tasks>"

    def _repr_html_(self) -> str:
        done, total = self.progress()
        pct = 100 * done // total if total else 100
        return (
            f"<div><b>RxJob</b> <code>{self.job_id}</code> &middot; {self.plan.function_name} &middot; "
            f"<b>{self.status()}</b> &middot; {done}/{total} tasks"
            f"<div style='background:#ddd;width:200px;height:8px'><div style='background:#4a4;width:{pct * 2}px;"
            f"height:8px'></div></div></div>"
        )

    # ------------------------------------------------------------ used by contexts

    def should_stop(self) -> bool:
        """True once the job is canceled or (continue_on_failure=False) a task failed."""
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def deliver(self, result: ChunkResult) -> None:
        """Take one finished chunk (called by the context, in the job's driver thread)."""
        with self._lock:
            if result.index in self._chunks:  # a duplicate attempt (speculation, retry race)
                return
            self._chunks[result.index] = result
            self._tasks_done += result.stop - result.start
        if result.errors and self._first_failure is None:
            first = min(result.errors)
            self._first_failure = result.errors[first]
            self._failure_causes = dict(result.causes)
            if not self.continue_on_failure:
                self._stop.set()
        if self.callback is not None:
            values = result.get_values()
            for local, value in enumerate(values):
                task = result.start + local
                self.callback(result.errors.get(task, value))

    # ------------------------------------------------------------ running

    def run(self) -> None:
        """Run the job to completion in this thread."""
        if not self.set_running_or_notify_cancel():
            return
        self.started_at = time.time()
        try:
            self.context._run_chunks(self)
            if self.cancelled():
                return
            if self._first_failure is not None and not self.continue_on_failure:
                error = self._first_failure
                cause = self._failure_causes.get(error.task_index)
                if cause is not None:
                    try:
                        error.__cause__ = cloudpickle.loads(cause)
                    except Exception:  # noqa: BLE001 - the record still describes it
                        pass
                self._finish(exception=error)
                return
            if len(self._chunks) != len(self.plan.chunks):
                missing = sorted(set(range(len(self.plan.chunks))) - set(self._chunks))
                raise RuntimeError(f"rxspark internal error: chunks {missing[:10]} were never delivered")
            self._finish(result=self._assemble())
        except KeyboardInterrupt:
            self.cancel()
            raise
        except BaseException as exc:  # noqa: BLE001 - the job fails with it
            if not self.cancelled():
                self._finish(exception=exc)

    def start_background(self) -> None:
        """Run the job in a daemon thread (wait=False)."""
        self._thread = threading.Thread(target=self.run, name=f"rxspark-{self.job_id}", daemon=True)
        self._thread.start()

    def _finish(self, result: Any = None, exception: BaseException | None = None) -> None:
        self.finished_at = time.time()
        with self._condition:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED) or self._state == PENDING:
                return
        if exception is not None:
            self.set_exception(exception)
        else:
            self.set_result(result)

    def _assemble(self) -> Any:
        values: list[Any] = []
        for k in range(len(self.plan.chunks)):
            cr = self._chunks[k]
            chunk_values = cr.get_values()
            for task, error in cr.errors.items():
                chunk_values[task - cr.start] = error
            values.extend(chunk_values)
        if self.plan.names is not None:
            return dict(zip(self.plan.names, values))
        if self.plan.once_per_elem:
            assert self.plan.nodes is not None
            return dict(zip(self.plan.nodes, values))
        return values


def _user_stacklevel() -> int:
    """Stack level of the first frame outside rxspark, so warnings point at the user's line."""
    package = __name__.rsplit(".", 1)[0]
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(package + "."):
        frame = frame.f_back
        level += 1
    return level


def _prefix(task: int, text: str) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(f"[task {task}] {line}" for line in lines)
