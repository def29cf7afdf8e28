"""BaseJob: what every job a user holds offers, whoever runs it.

A job is a ``concurrent.futures.Future`` with the ``rx_exec`` job API. Two
kinds exist: :class:`~rxspark.jobs.RxJob`, a job this process runs, and
:class:`~rxspark.jobs.StoredJob`, a job another (or an earlier) process runs
or ran, known from its record. They share the results hand-out defined here
(``result`` / ``collect``: the failure warning, the tasks' output, cleanup once
the outcome is handed out) and differ in where the answers come from: a
subclass implements the abstract methods.
"""

from __future__ import annotations

import abc
import html as _html
import sys
import warnings
from concurrent.futures import Future
from typing import Any

from .._warn import user_stacklevel
from ..errors import RxError, RxJobCanceledError, RxTaskError, RxTaskFailureWarning


class BaseJob(Future, metaclass=abc.ABCMeta):
    """A job: a ``concurrent.futures.Future`` with the ``rx_exec`` job API.

    Attributes:
        job_id: Unique id of the job (also accepted by the ``rx_get_job_*`` functions).
        waiting: Whether ``rx_exec`` waited for it (its results went to that call).
        console_output: Print the tasks' output when the results are collected.
        auto_cleanup: Delete the job's artifacts once its outcome is handed out.
        continue_on_failure: Whether the job ran on after a failed task.
    """

    _repr_note = ""

    def __init__(
        self, job_id: str, *, waiting: bool, console_output: bool, auto_cleanup: bool, continue_on_failure: bool
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.waiting = waiting
        self.console_output = console_output
        self.auto_cleanup = auto_cleanup
        self.continue_on_failure = continue_on_failure
        self._collected = False

    # ------------------------------------------------------------ what a kind of job answers

    @property
    @abc.abstractmethod
    def rng_seed(self) -> int | None:
        """The seed in force (the drawn one for ``rng_seed="auto"``), or None."""

    @property
    @abc.abstractmethod
    def rng_kind(self) -> str | None:
        """The generator kind in force (``"PCG64"`` for ``rng_kind="auto"``), or None."""

    @property
    @abc.abstractmethod
    def n_tasks(self) -> int: ...

    @property
    @abc.abstractmethod
    def function_name(self) -> str: ...

    @property
    @abc.abstractmethod
    def share_dir(self) -> str:
        """The job store that holds (or would hold) the job's record."""

    @abc.abstractmethod
    def status(self) -> str:
        """One of "queued", "running", "finished", "failed", "canceled" (and, stored, "missing", "undetermined")."""

    @abc.abstractmethod
    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks in all)."""

    @abc.abstractmethod
    def output(self) -> str:
        """Captured stdout/stderr of the tasks done so far, each line prefixed by its task index."""

    @abc.abstractmethod
    def task_times(self) -> list[float | None]:
        """Seconds each task took (None for tasks not run, or not known)."""

    @abc.abstractmethod
    def nodes(self) -> list[str | None]:
        """The node each task ran on (None for tasks not run, or not known)."""

    @abc.abstractmethod
    def cancel(self) -> bool:
        """Cancel the job; True if it is canceled (or the request is recorded), False if it already ended."""

    @abc.abstractmethod
    def wait_done(self, timeout: float | None = None) -> str:
        """Block until the job ends; return its final status.

        Raises:
            TimeoutError: Still running after ``timeout`` seconds.
        """

    @abc.abstractmethod
    def results_retrieved(self) -> bool:
        """Whether the job's outcome was handed out (so ``rx_cleanup_jobs`` needs no ``force``)."""

    @abc.abstractmethod
    def cleanup(self) -> bool:
        """Delete the job's artifacts. Idempotent: True if this call cleaned up."""

    @abc.abstractmethod
    def _outcome(self, timeout: float | None) -> tuple[str, Any]:
        """Wait for the job to end: ("finished", results), ("failed", exception) or ("canceled", None).

        Raises:
            TimeoutError: Not done within ``timeout``; any error that means there is no outcome to hand out.
        """

    @abc.abstractmethod
    def _on_collected(self, cleanup: bool, first: bool) -> None:
        """The outcome was handed out (``first``: for the first time); ``cleanup``: delete the artifacts now."""

    # ------------------------------------------------------------ derived

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
        kind, value = self._outcome(timeout)
        first = not self._collected
        if kind == "finished" and first:
            self._report(value, self.console_output if console_output is None else console_output)
        self._collected = True
        self._on_collected(self.auto_cleanup if auto_cleanup is None else auto_cleanup, first)
        if kind == "canceled":
            raise RxJobCanceledError(f"job {self.job_id} was canceled; it has no results")
        if kind == "failed":
            if isinstance(value, RxError):
                # rxspark's own errors say what happened; the job thread's frames below this call are
                # rxspark's (the cause, e.g. Spark's error or the task's exception, is kept).
                raise value.with_traceback(None)
            raise value
        return value

    def _failures(self, value: Any) -> list[RxTaskError]:
        """The failed tasks' errors among the results."""
        return [v for v in (value.values() if isinstance(value, dict) else value) if isinstance(v, RxTaskError)]

    def _report(self, value: Any, console_output: bool) -> None:
        """Print the tasks' output (``console_output``) and warn about failed tasks, once per job."""
        if console_output:
            text = self.output()
            if text:
                sys.stdout.write(text)
        failures = self._failures(value)
        if failures:
            shown = ", ".join(str(f.task_index) for f in failures[:10]) + (" ..." if len(failures) > 10 else "")
            warnings.warn(
                RxTaskFailureWarning(
                    f"{len(failures)} of {self.n_tasks} tasks of {self.function_name} failed "
                    f"(tasks {shown}); first: {failures[0].exc_type}: {failures[0].message}"
                ),
                stacklevel=user_stacklevel(),
            )

    def _summary(self) -> tuple[str, int, int]:
        """(status, tasks done, tasks in all) for the reprs."""
        return self.status(), *self.progress()

    def __repr__(self) -> str:
        status, done, total = self._summary()
        return f"<RxJob {self.job_id} {self.function_name} {status} {done}/{total} tasks{self._repr_note}>"

    def progress_bar(self) -> Any:
        """Show a live progress bar of this job here (the current notebook cell, or stderr) until it ends.

        Returns:
            The bar (:class:`rxspark.progress.ProgressBar`), or None when tqdm is not installed.
        """
        from .. import progress

        return progress.watch(self)

    def _ipython_display_(self) -> None:
        """``display(job)`` in a notebook: a live bar while the job runs, its summary once it ended."""
        from IPython.display import display

        if self.status() in ("queued", "running") and self.progress_bar() is not None:
            return
        display({"text/plain": repr(self), "text/html": self._repr_html_()}, raw=True)

    def _repr_html_(self) -> str:
        status, done, total = self._summary()
        pct = 100 * done // total if total else 100
        return (
            f"<div><b>RxJob</b> <code>{_html.escape(self.job_id)}</code> &middot; {_html.escape(self.function_name)} &middot; "
            f"<b>{status}</b> &middot; {done}/{total} tasks"
            f"<div style='background:#ddd;width:200px;height:8px'><div style='background:#4a4;width:{pct * 2}px;"
            f"height:8px'></div></div></div>"
        )


class JobTable(dict):
    """What ``rx_get_jobs`` returns: a ``dict`` job id -> job, shown as a table in notebooks."""

    def _repr_html_(self) -> str:
        rows = []
        for job_id, job in self.items():
            try:
                status, done, total = job._summary()
                name = job.function_name
            except Exception:  # noqa: BLE001 - a record that cannot be read is still listed
                status, done, total, name = "undetermined", 0, 0, "?"
            context = getattr(job, "context", None)
            url = context.ui_url() if context is not None and hasattr(context, "ui_url") else None
            link = f"<a href='{_html.escape(url)}' target='_blank'>Spark UI</a>" if url else ""
            rows.append(
                f"<tr><td><code>{_html.escape(str(job_id))}</code></td><td>{_html.escape(name)}</td>"
                f"<td>{_html.escape(status)}</td><td>{done}/{total}</td><td>{link}</td></tr>"
            )
        head = "<tr><th>job</th><th>function</th><th>status</th><th>tasks</th><th></th></tr>"
        return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>" if rows else "<i>no jobs</i>"
