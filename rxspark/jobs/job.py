"""RxJob: one ``rx_exec`` call run by this process, as a ``concurrent.futures.Future``.

The job receives :class:`~rxspark.worker.ChunkResult` objects from its compute
context as chunks finish (it is the context's :class:`~rxspark.contexts.base.JobSink`),
calls the user's callback, applies the failure policy (``continue_on_failure``),
and assembles the results in task order (a list, or a dict for named
``elem_args`` / ``once_per_elem``). Warnings and console output are emitted in
the thread that collects the results. ``run()`` drives the job in the calling
thread; ``start_background()`` in a daemon thread of its own. Both are called
in the submitting thread, which is where the job's progress bar is made
(:mod:`rxspark.progress`), so it lives in the notebook cell that started the
job, whichever thread then runs it.

Its record in the job store (so other processes can list, query and cancel
it) is written by its :class:`~rxspark.jobs.record.Recorder`, which the job
tells about each event of its life.

The Future's state is reached through its public methods only. One
consequence: the Future stays PENDING while the job runs (``Future.cancel()``
refuses a RUNNING future, and a job can be canceled while it runs), so the
job keeps its own phase (queued, running, then ending or canceling, decided
once under a lock) and answers ``running()`` and ``status()`` from it.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import threading
import time
import weakref
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import TYPE_CHECKING, Any

import cloudpickle

from .. import progress as _progress
from .._compat import JobTimeoutError
from ..errors import RxTaskError
from ..plan import TaskPlan, lay_out
from ..spec import JobSpec
from ..worker import ChunkResult
from .base import BaseJob
from .chunks import Chunks
from .durable import Durability
from .monitor import monitor as _monitor
from .record import Recorder

if TYPE_CHECKING:
    from ..contexts.base import ComputeContext
    from .resume import Resumed

# The job's own phase. Its Future stays PENDING until the job ends (see RxJob._run); the phase says
# whether it runs, and ENDING / CANCELING mean its outcome is decided (one of them, once).
_QUEUED, _RUNNING, _ENDING, _CANCELING = "queued", "running", "ending", "canceling"

# The jobs of this process by id (held weakly: a running job is held by its thread).
_live: weakref.WeakValueDictionary[str, RxJob] = weakref.WeakValueDictionary()


def new_job_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"rx-{stamp}-{secrets.token_hex(3)}"


class RxJob(BaseJob):
    """A running or finished ``rx_exec`` job.

    It is a ``concurrent.futures.Future``: ``result(timeout)``, ``done()``,
    ``add_done_callback`` and ``concurrent.futures.wait`` / ``as_completed``
    work as usual. ``result()`` returns what a waiting ``rx_exec`` returns.

    To its compute context it is a :class:`~rxspark.contexts.base.JobSink`
    (``job_id``, ``plan``, ``stop_event``, ``deliver``, ``should_stop``,
    ``delivered``): the only part of it a backend uses.

    Attributes:
        job_id: Unique id of the job (also accepted by the ``rx_get_job_*`` functions).
        rng_seed: The seed in force (the drawn one for ``rng_seed="auto"``), or None.
        spec: The job's :class:`~rxspark.spec.JobSpec` (what was asked for).
        plan: The job's :class:`~rxspark.plan.TaskPlan` (its chunks on its context), None until laid out.
        context: The compute context that runs it.
    """

    def __init__(
        self,
        spec: JobSpec,
        context: ComputeContext,
        *,
        job_id: str | None = None,
        progress: bool | None = None,
        resumed: Resumed | None = None,
        share_dir: str | None = None,
    ) -> None:
        super().__init__(
            job_id or new_job_id(),
            waiting=True,  # until start_background()
            console_output=context.console_output if spec.console_output is None else spec.console_output,
            auto_cleanup=context.auto_cleanup if spec.auto_cleanup is None else spec.auto_cleanup,
            continue_on_failure=spec.continue_on_failure,
        )
        self.spec = spec
        # Laid out for the context in the job's thread (run(): the caller's), once the context is ready.
        self.plan: TaskPlan | None = None
        self.context = context
        self.callback = spec.callback
        self.submitted_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._chunks = Chunks()
        self._stop = threading.Event()
        self._payload_failure: BaseException | None = None  # a chunk could not load the job's payload
        self._thread: threading.Thread | None = None
        self._phase = _QUEUED
        self._phase_lock = threading.Lock()
        self._share_dir: str | None = share_dir
        self._resumed = resumed  # a durable job run again: its stored layout and saved chunks
        self._halted = False  # the job's work was told to stop (context.cancel called, if it had started)
        self._recorder = Recorder(self)
        self._progress_setting = progress  # None: the context's ``progress`` setting
        self._bar: _progress.ProgressBar | None = None
        self._durability = Durability(self, (resumed.frozen, resumed.fingerprint) if resumed else None, resumed.checkpoints if resumed else None)
        _live[self.job_id] = self

    # ------------------------------------------------------------ public API

    @property
    def rng_seed(self) -> int | None:
        return self.spec.rng.seed if self.spec.rng is not None else None

    @property
    def rng_kind(self) -> str | None:
        """The generator kind in force (``"PCG64"`` for ``rng_kind="auto"``), or None."""
        return self.spec.rng.kind if self.spec.rng is not None else None

    @property
    def n_tasks(self) -> int:
        """Tasks in all (0 while it is the context's to decide and the job is not laid out yet)."""
        plan = self.plan
        if plan is not None:
            return plan.n_tasks
        return self.spec.n_known or 0  # None for once_per_elem too: the context's nodes decide

    @property
    def function_name(self) -> str:
        return self.spec.function_name

    @property
    def share_dir(self) -> str:
        """The job store this job's record goes to (its context's ``share_dir`` when first needed)."""
        if self._share_dir is None:
            self._share_dir = self.context.share_dir
        return self._share_dir

    def status(self) -> str:
        """One of "queued", "running", "finished", "failed", "canceled"."""
        if self.done():
            try:
                return "failed" if self.exception() is not None else "finished"
            except CancelledError:
                return "canceled"
        phase = self._phase
        if phase == _CANCELING:
            return "canceled"
        return "queued" if phase == _QUEUED else "running"

    def running(self) -> bool:
        """True while the job runs (``Future.running()`` would not say so: see ``_run``)."""
        return self._phase in (_RUNNING, _ENDING) and not self.done()

    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks in all)."""
        return self._chunks.tasks_done, self.n_tasks

    def output(self) -> str:
        """Captured stdout/stderr of the tasks done so far, each line prefixed by its task index."""
        return self._chunks.output()

    def task_times(self) -> list[float | None]:
        """Seconds each task took (None for tasks not run)."""
        return self._chunks.task_times(self.n_tasks)

    def nodes(self) -> list[str | None]:
        """The node each task ran on (None for tasks not run)."""
        return self._chunks.task_nodes(self.n_tasks)

    def cancel(self) -> bool:
        """Stop the job: pending chunks are dropped and running ones stopped.

        Returns:
            True if the job is canceled, False if it had already finished.
        """
        with self._phase_lock:
            if self._phase == _ENDING:
                return False  # its outcome is decided (and being recorded)
            if self._phase == _CANCELING:
                return True  # canceled, or being canceled by another thread
            was_running = self._phase == _RUNNING
            self._phase = _CANCELING
        self.finished_at = time.time()
        self._durability.finish()
        try:
            self._recorder.on_cancel()  # before the future resolves, as for a finished job
        finally:
            # The Future is still PENDING (it stays so while the job runs), so Future.cancel()
            # succeeds: it wakes result() / exception() waiters and runs the done-callbacks. It
            # leaves the state CANCELLED, which concurrent.futures.wait / as_completed do not count
            # as done until set_running_or_notify_cancel() moves it on and tells their waiters.
            Future.cancel(self)  # (BaseJob.cancel is abstract: name the Future's own)
            self.set_running_or_notify_cancel()
            # Only now, so a backend that looks finds the job cancelled() once it sees it stop.
            self._halt(was_running)
            self._close_bar("canceled")
        return True

    def _halt(self, started: bool = True) -> None:
        """Stop the job's work: the ONE cancel path (``job.cancel()``, the first failure of a
        ``continue_on_failure=False`` job, a run loop that raised). The context's ``cancel`` is
        called once, and only if its work may have started; run loops never cancel on their own."""
        with self._phase_lock:
            if self._halted:
                return
            self._halted = True
        self._stop.set()
        if started:
            self.context.cancel(self)

    def wait_done(self, timeout: float | None = None) -> str:
        """Block until the job ends; return its final status.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds.
        """
        try:
            self.exception(timeout)
        except CancelledError:
            pass
        except FuturesTimeoutError:
            raise JobTimeoutError(f"job {self.job_id} is still {self.status()} after {timeout} s") from None
        return self.status()

    def results_retrieved(self) -> bool:
        """Whether the job's outcome was handed out (a waiting call always hands it out)."""
        return self._collected or self.waiting

    def _outcome(self, timeout: float | None) -> tuple[str, Any]:
        try:
            error = self.exception(timeout)
        except CancelledError:
            return "canceled", None
        except FuturesTimeoutError:  # the built-in TimeoutError too on 3.10, as the docstrings say
            raise JobTimeoutError(f"job {self.job_id} is still {self.status()} after {timeout} s") from None
        # Future's own result(): this class's result() is collect(), which called this.
        return ("failed", error) if error is not None else ("finished", Future.result(self))

    def _failures(self, value: Any) -> list[RxTaskError]:
        if not len(self._chunks):
            return super()._failures(value)
        # This process ran the job: its chunks list the failures, no need to scan every
        # result (1e6 isinstance calls cost ~0.1 s).
        return self._chunks.failures()

    def _on_collected(self, cleanup: bool, first: bool) -> None:
        self._recorder.on_collected(cleanup, first)

    def cleanup(self) -> bool:
        """Delete the job's artifacts (its record and results in the job store). Idempotent.

        Returns:
            True if this call cleaned up, False if it was done before.
        """
        return self._recorder.on_cleanup()

    # ------------------------------------------------------------ used by contexts

    def should_stop(self) -> bool:
        """True once the job is canceled or (continue_on_failure=False) a task failed."""
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def delivered(self) -> int:
        """How many distinct chunks were delivered so far."""
        return len(self._chunks)

    def note_progress(self, text: str) -> None:
        """A short note after the count on the job's bar, if it has one."""
        bar = self._bar
        if bar is not None:
            bar.note(text)

    def deliver(self, result: ChunkResult) -> None:
        """Take one finished chunk (called by the context, in the job's driver thread)."""
        failure = result.payload_failure()
        if failure is not None:  # no task can run where the payload cannot be loaded: the job fails, once
            if self._payload_failure is None:
                self._payload_failure = failure
                self._halt()
            return
        if not self._chunks.add(result):
            return  # a duplicate attempt (speculation, retry race)
        self._durability.save(result)  # committed before anyone hears of it: a resume never runs it again
        bar = self._bar
        if bar is not None:
            bar.update(result.stop - result.start)
        if result.errors and not self.continue_on_failure:
            self._halt()  # the first failure stops a fail-fast job
        if self.callback is not None:
            values = result.get_values()
            for local, value in enumerate(values):
                task = result.start + local
                self.callback(result.errors.get(task, value))

    # ------------------------------------------------------------ running

    def run(self) -> None:
        """Run the job to completion in this thread.

        Raises:
            RxArgumentError: The job cannot be laid out on its context (raised before anything runs).
        """
        self.plan = self._lay_out()
        self._open_bar()
        self._drive()

    def _lay_out(self) -> TaskPlan:
        resumed = self._resumed
        if resumed is None:
            return lay_out(self.spec, self.context.parallelism, self.context.nodes)
        plan = lay_out(self.spec, self.context.parallelism, self.context.nodes, resumed.layout)
        for result in resumed.saved.values():
            if result.index < plan.chunk_count:
                self._chunks.add(result)
        self._durability.preload(resumed.saved, resumed.layout is not None)
        return plan.only(self._chunks.missing(plan.chunk_count))

    def _drive(self) -> None:
        _monitor.add(self)
        try:
            self._run()
        finally:
            _monitor.discard(self)

    def _open_bar(self) -> None:
        """Make the job's progress bar here, in the submitting thread (so it lives in the submitting cell)."""
        setting = self._progress_setting
        if setting is None:
            setting = getattr(self.context, "progress", False)
        try:
            self._bar = _progress.job_bar(setting, self.n_tasks, self.function_name)
        except Exception:  # noqa: BLE001 - a display that cannot be made must not fail the job
            self._bar = None

    def _close_bar(self, status: str) -> None:
        bar = self._bar
        if bar is None:
            return
        if status == "finished":
            failed = self._chunks.failed_count()
            if failed:
                status = f"{failed} failed"
        try:
            bar.close(status)
        except Exception:  # noqa: BLE001, S110 - never fail a job over its bar
            pass

    def _run(self) -> None:
        with self._phase_lock:
            if self._phase != _QUEUED:
                return  # canceled before it started
        try:
            # Still queued: a context may start its session here (in the job's own thread for wait=False),
            # and only then is the job laid out for it (its parallelism and nodes are known).
            self.context.prepare(self)
            if self.plan is None:
                self.plan = self._lay_out()
                if self._bar is not None:
                    self._bar.set_total(self.plan.n_tasks)
            not_ready: BaseException | None = None
        except KeyboardInterrupt as exc:
            self.cancel()
            raise exc.with_traceback(None) from None  # the user's call, not rxspark's frames
        except BaseException as exc:  # noqa: BLE001 - the job fails with it
            not_ready = exc
        with self._phase_lock:
            if self._phase != _QUEUED:
                return  # canceled before it started
            # The Future is not set_running_or_notify_cancel()'d: Future.cancel() refuses a RUNNING
            # future, and an RxJob is cancellable while it runs. It stays PENDING until the job ends;
            # the job's phase says that it runs (status(), running()).
            self._phase = _RUNNING
            self.started_at = time.time()
        self._recorder.on_start()
        if not_ready is None and self._durability.wanted_from_start():
            self._durability.activate()
        if self._bar is not None:
            self._bar.start_clock()
        if not_ready is not None:
            self._finish(exception=not_ready)
            return
        try:
            self.context.run_chunks(self)
            if self._phase != _RUNNING:
                return  # canceled meanwhile
            if self._payload_failure is not None:
                self._finish(exception=self._payload_failure)
                return
            if self._chunks.first_failure is not None and not self.continue_on_failure:
                error = self._chunks.first_failure
                cause = self._chunks.first_causes.get(error.task_index)
                if cause is not None:
                    try:
                        error.__cause__ = cloudpickle.loads(cause)
                    except Exception:  # noqa: BLE001 - the record still describes it
                        pass
                self._finish(exception=error)
                return
            assert self.plan is not None
            missing = self._chunks.missing(self.plan.chunk_count)
            if missing:
                raise RuntimeError(f"rxspark internal error: chunks {missing[:10]} were never delivered")
            self._finish(result=self._chunks.assemble(self.plan))
        except KeyboardInterrupt as exc:
            self.cancel()
            # Raised anew from here: the frames below (the context's wait for its workers) are rxspark's.
            raise exc.with_traceback(None) from None
        except BaseException as exc:  # noqa: BLE001 - the job fails with it (unless it was canceled)
            self._halt()  # what the context launched must not run on
            self._finish(exception=exc)

    def start_background(self) -> None:
        """Run the job in a daemon thread (wait=False), after writing its record.

        Raises:
            RxJobError: The record cannot be written (e.g. a share_dir that is not the user's own).
        """
        self.waiting = False
        self._recorder.on_submit()
        self._open_bar()
        self._thread = threading.Thread(target=self._drive, name=f"rxspark-{self.job_id}", daemon=True)
        self._thread.start()

    def _finish(self, result: Any = None, exception: BaseException | None = None) -> None:
        with self._phase_lock:
            if self._phase != _RUNNING:
                return  # cancel() came first: the job is canceled
            self._phase = _ENDING
        self.finished_at = time.time()
        self._durability.finish()
        try:
            self._recorder.on_finish(result, exception)  # before the future resolves: see Recorder.on_finish
        finally:  # an interrupt while writing must not leave the outcome decided but never delivered
            try:
                self._close_bar("failed" if exception is not None else "finished")  # before waiters print
            finally:
                if exception is not None:
                    self.set_exception(exception)
                else:
                    self.set_result(result)

    def _tick(self, now: float) -> None:
        """Called by the monitor about once per TICK while the job runs."""
        if self._recorder.on_tick(now):
            self.cancel()  # another process asked for it
            return
        durability = self._durability
        if not durability.active and self._recorder.recorded and self.plan is not None and self._phase == _RUNNING:
            durability.activate()  # a waiting call past the record delay
        durability.tick(now)
