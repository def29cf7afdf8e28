"""RxJob: one ``rx_exec`` call in flight, as a ``concurrent.futures.Future``.

The job receives :class:`~rxspark.worker.ChunkResult` objects from its compute
context as chunks finish, calls the user's callback, applies the failure
policy (``continue_on_failure``), and assembles the results in task order
(a list, or a dict for named ``elem_args`` / ``once_per_elem``). Warnings and
console output are emitted in the thread that collects the results.

It also keeps the job's record in the job store (:mod:`rxspark.jobs.store`), so
other processes can list, query and cancel it:

* a non-waiting job writes its record when submitted, when it starts, and when
  it ends (with its results or exception); the record is kept until the results are
  collected (``auto_cleanup``) or ``rx_cleanup_jobs`` removes it;
* a waiting job writes nothing unless it runs longer than ``RECORD_DELAY``
  (then it becomes visible to ``rx_get_jobs`` from other processes), or
  ``auto_cleanup=False`` asks for a record to be kept: short waiting calls
  never touch the disk;
* while a recorded job runs, one monitor thread per process refreshes its
  progress (at most once per ``TICK``, heartbeat every ``HEARTBEAT``) and
  looks for a cancel request written by another process.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import secrets
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._warn import user_stacklevel
from ..errors import RxJobCanceledError, RxTaskError, RxTaskFailureWarning
from ..plan import TaskPlan
from ..worker import ChunkResult
from . import store as _store
from .monitor import TICK
from .monitor import monitor as _monitor

if TYPE_CHECKING:
    from ..contexts.base import ComputeContext

STATES = ("queued", "running", "finished", "failed", "canceled", "missing", "undetermined")
DONE_STATES = frozenset({"finished", "failed", "canceled", "undetermined"})

# A waiting job gets a record only once it has run this long (seconds).
RECORD_DELAY = 1.0
# A running job's record is rewritten at least this often, even without progress,
# so readers on other hosts can tell a live owner from a dead one.
HEARTBEAT = 15.0

# The jobs of this process by id (held weakly: a running job is held by its thread).
_live: weakref.WeakValueDictionary[str, RxJob] = weakref.WeakValueDictionary()


_NOTHING: Any = object()


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
        # Job store state (see the module docstring).
        self._share_dir: str | None = None
        self.waiting = True
        self._recorded = False
        self._final = False
        self._cleaned = False
        self._saved: tuple[str, int] | None = None
        self._saved_at = 0.0
        self._description: dict[str, Any] | None = None
        self._store_warned = False
        self._final_record: dict[str, Any] | None = None
        self._rec_lock = threading.Lock()
        _live[self.job_id] = self

    # ------------------------------------------------------------ public API

    @property
    def rng_seed(self) -> int | None:
        return self.plan.rng.seed if self.plan.rng is not None else None

    @property
    def rng_kind(self) -> str | None:
        """The generator kind in force (``"PCG64"`` for ``rng_kind="auto"``), or None."""
        return self.plan.rng.kind if self.plan.rng is not None else None

    @property
    def n_tasks(self) -> int:
        return self.plan.n_tasks

    @property
    def function_name(self) -> str:
        return self.plan.function_name

    @property
    def share_dir(self) -> str:
        """The job store this job's record goes to (its context's ``share_dir`` when first needed)."""
        if self._share_dir is None:
            self._share_dir = self.context.share_dir
        return self._share_dir

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
            self.context.cancel(self)
        self.finished_at = time.time()
        if self._recorded or not self.waiting:
            self._save_quietly("canceled", final=True)
        self._invoke_callbacks()
        return True

    def wait_done(self, timeout: float | None = None) -> str:
        """Block until the job ends; return its final status.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds.
        """
        with self._condition:
            ended = self._condition.wait_for(lambda: self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED), timeout)
        if not ended:
            raise FuturesTimeoutError(f"job {self.job_id} is still {self.status()} after {timeout} s")
        return self.status()

    def results_retrieved(self) -> bool:
        """Whether the job's outcome was handed out (a waiting call always hands it out)."""
        return self._collected or self.waiting

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its results (list in task order, or dict).

        Raises:
            RxJobCanceledError: The job was canceled.
            RxTaskError: With ``continue_on_failure=False``, the first failed task.
            TimeoutError: Not done within ``timeout`` seconds.
        """
        return self.collect(timeout=timeout)

    def collect(self, timeout: float | None = None, console_output: bool | None = None, auto_cleanup: bool | None = None) -> Any:
        """``result()`` with per-call overrides of ``console_output`` and ``auto_cleanup``.

        Once the job's outcome (results, exception or cancellation) is handed
        out, its artifacts are cleaned up when ``auto_cleanup`` (default: the
        job's setting) is on; otherwise its record notes that the results were
        retrieved, so ``rx_cleanup_jobs`` removes it without ``force``.
        """
        try:
            value = super().result(timeout)
        except CancelledError:
            self._collected_outcome(auto_cleanup)
            raise RxJobCanceledError(f"job {self.job_id} was canceled; it has no results") from None
        except BaseException:
            if self.done():
                self._collected_outcome(auto_cleanup)
            raise
        if not self._collected:
            self._report(value, self.console_output if console_output is None else console_output)
        self._collected_outcome(auto_cleanup)
        return value

    def _report(self, value: Any, console_output: bool) -> None:
        """Print the tasks' output (``console_output``) and warn about failed tasks, once per job."""
        if console_output:
            text = self.output()
            if text:
                sys.stdout.write(text)
        chunks = getattr(self, "_chunks", None)  # a StoredJob (another process's job) has none
        if chunks:
            # This process ran the job: its chunks list the failures, no need to scan every
            # result (1e6 isinstance calls cost ~0.1 s).
            failures = [error for k in sorted(chunks) for _, error in sorted(chunks[k].errors.items())]
        else:
            failures = [v for v in (value.values() if isinstance(value, dict) else value) if isinstance(v, RxTaskError)]
        if failures:
            shown = ", ".join(str(f.task_index) for f in failures[:10]) + (" ..." if len(failures) > 10 else "")
            warnings.warn(
                RxTaskFailureWarning(
                    f"{len(failures)} of {self.n_tasks} tasks of {self.function_name} failed "
                    f"(tasks {shown}); first: {failures[0].exc_type}: {failures[0].message}"
                ),
                stacklevel=user_stacklevel(),
            )

    def _collected_outcome(self, auto_cleanup: bool | None) -> None:
        first = not self._collected
        self._collected = True
        if self.auto_cleanup if auto_cleanup is None else auto_cleanup:
            if self._recorded or not self.waiting:
                self.cleanup()
            else:
                # A short waiting call: nothing on disk, and its id was never shown to
                # anyone (so nothing can be tagged with it); skip the cleanup hooks.
                self._cleaned = True
        elif first:
            self._mark_retrieved()

    def _mark_retrieved(self) -> None:
        """Note in the record that the results were handed out (``rx_cleanup_jobs`` needs no force then)."""
        if self._recorded and not self.waiting:
            self._save_quietly(self.status(), final=True, keep_results=True)

    def cleanup(self) -> bool:
        """Delete the job's artifacts (its record and results in the job store). Idempotent.

        Returns:
            True if this call cleaned up, False if it was done before.
        """
        with self._rec_lock:
            if self._cleaned:
                return False
            self._cleaned = True
            recorded = self._recorded
        if recorded:
            try:
                _store.store_for(self.share_dir).remove(self.job_id)
            except Exception as exc:  # noqa: BLE001 - the results are already in hand
                warnings.warn(f"rxspark: could not clean up job {self.job_id}: {exc}", RuntimeWarning, stacklevel=3)
        else:
            _store.run_cleanup_hooks(self.job_id, self.share_dir)
        return True

    def __repr__(self) -> str:
        done, total = self.progress()
        return f"<RxJob {self.job_id} {self.function_name} {self.status()} {done}/{total} tasks>"

    def _repr_html_(self) -> str:
        done, total = self.progress()
        pct = 100 * done // total if total else 100
        return (
            f"<div><b>RxJob</b> <code>{_html.escape(self.job_id)}</code> &middot; {_html.escape(self.function_name)} &middot; "
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

    def delivered(self) -> int:
        """How many distinct chunks were delivered so far."""
        with self._lock:
            return len(self._chunks)

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
        _monitor.add(self)
        try:
            self._run()
        finally:
            _monitor.discard(self)

    def _run(self) -> None:
        if not self.set_running_or_notify_cancel():
            return
        self.started_at = time.time()
        if not self.waiting:
            self._save_quietly("running")
        try:
            self.context.run_chunks(self)
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
        """Run the job in a daemon thread (wait=False), after writing its record.

        Raises:
            RxJobError: The record cannot be written (e.g. a share_dir that is not the user's own).
        """
        self.waiting = False
        self._save("queued")
        self._thread = threading.Thread(target=self.run, name=f"rxspark-{self.job_id}", daemon=True)
        self._thread.start()

    def _finish(self, result: Any = None, exception: BaseException | None = None) -> None:
        self.finished_at = time.time()
        with self._condition:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED) or self._state == PENDING:
                return
        if self._recorded or not self.waiting or not self.auto_cleanup:
            # Before the future resolves, so whoever it wakes finds the final record.
            if exception is not None:
                self._save_quietly("failed", final=True, exception=exception)
            else:
                self._save_quietly("finished", final=True, results=result)
        if exception is not None:
            self.set_exception(exception)
        else:
            self.set_result(result)

    # ------------------------------------------------------------ the job record

    def _record(self, status: str) -> dict[str, Any]:
        plan = self.plan
        rng = plan.rng
        if self._description is None:
            try:
                description = self.context.describe()
            except Exception as exc:  # noqa: BLE001 - a record without it is still useful
                description = {"context": type(self.context).__name__, "describe_error": repr(exc)}
            self._description = _store.redact(description)
        done, total = self.progress()
        return {
            "format": _store.RECORD_FORMAT,
            "job_id": self.job_id,
            "function": plan.function_name,
            "n_tasks": total,
            "chunk_size": plan.chunk_size,
            "n_chunks": len(plan.chunks),
            "rng_seed": rng.seed if rng is not None else None,
            "rng_kind": rng.kind if rng is not None else None,
            "rng_scope": rng.scope if rng is not None else None,
            "context": self._description,
            "wait": self.waiting,
            "auto_cleanup": self.auto_cleanup,
            "console_output": self.console_output,
            "continue_on_failure": self.continue_on_failure,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "updated_at": time.time(),
            "status": status,
            "progress": [done, total],
            "output": self.output(),
            "owner": _store.owner(),
            "results": None,
            "results_error": None,
            "error": None,
            # A waiting call hands its results back itself.
            "results_retrieved": self.waiting or self._collected,
        }

    def _save(
        self,
        status: str,
        *,
        final: bool = False,
        results: Any = _NOTHING,
        exception: BaseException | None = None,
        keep_results: bool = False,
    ) -> None:
        """Write the job's record (and, for a non-waiting job, its results or exception)."""
        with self._rec_lock:
            if self._cleaned or (self._final and not final):
                return
            if final and status != "canceled" and self.cancelled():
                return  # cancel() won the race; its record stands
            store = _store.store_for(self.share_dir)
            if not self._recorded:
                store.create(self.job_id)
            record = self._record(status)
            if keep_results and self._final_record is not None:
                for key in ("results", "results_error", "error"):
                    record[key] = self._final_record[key]
            if not self.waiting and results is not _NOTHING:
                try:
                    store.write_pickle(self.job_id, _store.RESULTS, results)
                    record["results"] = _store.RESULTS
                except Exception as exc:  # noqa: BLE001 - the job still finished; say why there is no file
                    record["results_error"] = f"{type(exc).__name__}: {exc}"
            if exception is not None:
                record["error"] = {"type": type(exception).__qualname__, "message": str(exception)}
                if not self.waiting:
                    # Pickling keeps neither __cause__ nor the traceback: store the cause beside it.
                    try:
                        try:
                            store.write_pickle(self.job_id, _store.ERROR, (exception, exception.__cause__))
                        except Exception:  # noqa: BLE001 - an unpicklable cause: keep the error itself
                            store.write_pickle(self.job_id, _store.ERROR, (exception, None))
                        record["results"] = _store.ERROR
                    except Exception as exc:  # noqa: BLE001
                        record["results_error"] = f"{type(exc).__name__}: {exc}"
            try:
                store.write_record(self.job_id, record)
            except FileNotFoundError:
                if not self._recorded:
                    raise
                self._cleaned = True  # someone removed the job's directory: it was cleaned up
                return
            self._recorded = True
            self._final = self._final or final
            if final:
                self._final_record = record
            self._saved = (status, record["progress"][0])
            self._saved_at = time.monotonic()

    def _save_quietly(self, status: str, **kwargs: Any) -> None:
        """``_save`` where a failing store must not fail the job: warn once instead."""
        try:
            self._save(status, **kwargs)
        except Exception as exc:  # noqa: BLE001
            if not self._store_warned:
                self._store_warned = True
                warnings.warn(
                    f"rxspark: could not write the record of job {self.job_id} in {self.share_dir}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _tick(self, now: float) -> None:
        """Called by the monitor about once per TICK while the job runs."""
        if self._final or self._cleaned or self.done():
            return
        if not self._recorded:
            if self.started_at is not None and time.time() - self.started_at >= RECORD_DELAY:
                self._save_quietly(self.status())
            return
        if _store.store_for(self.share_dir).cancel_requested(self.job_id):
            self.cancel()
            return
        status, done = self.status(), self._tasks_done
        saved_status, saved_done = self._saved or ("", -1)
        since = now - self._saved_at
        if status != saved_status or (done != saved_done and since >= TICK * 0.9) or since >= HEARTBEAT:
            self._save_quietly(status)

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


def _prefix(task: int, text: str) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(f"[task {task}] {line}" for line in lines)
