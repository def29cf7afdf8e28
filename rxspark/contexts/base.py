"""The backend interface: what a compute context implements, and the view of a job it gets.

A backend is a :class:`ComputeContext` subclass that implements
:meth:`~ComputeContext.run_chunks` (run every chunk of a job through
:func:`rxspark.worker.run_chunk` and hand each result to ``job.deliver``) and,
where they differ from the defaults, :meth:`~ComputeContext.parallelism`,
:meth:`~ComputeContext.nodes`, :meth:`~ComputeContext.cancel` and
:meth:`~ComputeContext.close`. It sees a job only through :class:`JobSink`.
Its module registers the backend's names (:func:`rxspark.contexts.registry.register`),
so ``rx_set_compute_context("name")`` finds it. Everything else (validation,
ordering, failure policy, RNG, output capture, job records) lives once,
outside the backends.
"""

from __future__ import annotations

import html as _html
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from .. import _active
from ..errors import RxArgumentError, RxArgumentTypeError
from ..options import get_option
from ..worker import ChunkResult, default_node

if TYPE_CHECKING:
    from ..plan import TaskPlan


class JobSink(Protocol):
    """The view of a job that a backend may use (an ``RxJob`` provides it).

    Attributes:
        job_id: The job's id (name Spark job groups, files, tags after it).
        plan: The job's :class:`~rxspark.plan.TaskPlan` (chunks, payload, rng spec).
        stop_event: Set once the job must stop; in-process chunks pass it to ``run_chunk``.
    """

    job_id: str
    plan: TaskPlan
    stop_event: threading.Event

    def deliver(self, result: ChunkResult) -> None:
        """Hand over one finished chunk (duplicates of a chunk are ignored)."""

    def should_stop(self) -> bool:
        """True once the job is canceled or, with ``continue_on_failure=False``, a task failed."""

    def delivered(self) -> int:
        """How many distinct chunks were delivered so far."""

    def note_progress(self, text: str) -> None:
        """A short note on the job's progress bar, if it has one (e.g. what a server says)."""


class ComputeContext:
    """Base class of compute contexts.

    Args:
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        console_output: Print each task's captured output on the driver when results are collected.
        auto_cleanup: Delete job artifacts once results are returned.
        packages_to_load: Modules imported on each worker before the first task.
        share_dir: Where job records and shared data are kept (default: ``rx_options()["share_dir"]``).
        progress: Show a progress bar for each job: None (only when interactive: a Jupyter kernel
            or a terminal), True or False. The bar is made where the job is submitted and keeps
            its final line (tasks, time, rate).
    """

    name = "ComputeContext"

    def __init__(
        self,
        *,
        wait: bool = True,
        console_output: bool = False,
        auto_cleanup: bool = True,
        packages_to_load: list[str] | None = None,
        share_dir: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
    ) -> None:
        if progress is not None and not isinstance(progress, bool):
            raise RxArgumentTypeError(f"{type(self).__name__}: progress must be None, True or False, got {progress!r}")
        for arg, value in (("wait", wait), ("console_output", console_output), ("auto_cleanup", auto_cleanup)):
            if not isinstance(value, bool):
                raise RxArgumentTypeError(f"{type(self).__name__}: {arg} must be True or False, got {value!r}")
        if share_dir is not None and not isinstance(share_dir, (str, os.PathLike)):
            raise RxArgumentTypeError(f"{type(self).__name__}: share_dir must be a path, got {type(share_dir).__name__}")
        if packages_to_load is not None and (
            isinstance(packages_to_load, str) or not all(isinstance(p, str) for p in packages_to_load)
        ):
            raise RxArgumentTypeError(f"{type(self).__name__}: packages_to_load must be a list of module names")
        self.wait = wait
        self.console_output = console_output
        self.auto_cleanup = auto_cleanup
        self.packages_to_load = list(packages_to_load or [])
        self.progress = progress
        self._share_dir = os.fspath(share_dir) if share_dir is not None else None
        self._previous: list[ComputeContext] = []
        self._closed = False

    # ------------------------------------------------------------ backend interface

    # Whether run_chunks runs open plans (``job.plan.feed``: chunks added while the job runs,
    # see rxspark.feed) until their feed closes. Contexts that do not leave it False.
    accepts_feeds = False

    def parallelism(self) -> int:
        """How many chunks can run at once (the default number of chunks)."""
        return 1

    def nodes(self) -> list[str]:
        """Names of the nodes (``elem_type="nodes"``, ``once_per_elem``)."""
        return [default_node()]

    def run_chunks(self, job: JobSink) -> None:
        """Run every chunk of ``job.plan`` and call ``job.deliver`` for each as it finishes.

        Called once per job, in the job's driver thread. Return once all are
        delivered (for an open plan: and its feed is closed; see ``accepts_feeds``)
        or ``job.should_stop()``; raise on an infrastructure failure
        that could not be retried (user exceptions are already data in the
        ``ChunkResult``).
        """
        raise NotImplementedError

    def prepare(self, job: JobSink) -> None:
        """Get ready to run ``job`` (e.g. start a session); called in the job's thread while it is still queued.

        Raising here fails the job with that error.
        """

    def cancel(self, job: JobSink) -> None:
        """Stop the running work of ``job`` (called from any thread, once, after ``job.should_stop()``)."""

    def close(self) -> None:
        """Release what this context started. Idempotent."""
        self._closed = True

    # ------------------------------------------------------------ shared behaviour

    @property
    def share_dir(self) -> str:
        return os.path.expanduser(self._share_dir or get_option("share_dir"))

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for job records."""
        return {"context": type(self).__name__, "parallelism": self.parallelism()}

    def __enter__(self) -> ComputeContext:
        self._previous.append(_active.swap(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        previous = self._previous.pop() if self._previous else None
        _active.swap(previous)  # None: the default context
        self.close()

    def ui_url(self) -> str | None:
        """The address of the context's web UI (Spark's), if it has one and it runs."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(wait={self.wait})"

    def _html_rows(self) -> list[tuple[str, str]]:
        """(name, HTML value) rows of the context's HTML repr, after its repr line."""
        return [("wait", str(self.wait)), ("progress", "when interactive" if self.progress is None else str(self.progress))]

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{_html.escape(k)}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in self._html_rows()
        )
        url = self.ui_url()
        link = f" &middot; <a href='{_html.escape(url)}' target='_blank'>Spark UI</a>" if url else ""
        return f"<div><b>{_html.escape(type(self).__name__)}</b>{link}<table>{rows}</table></div>"


def check_positive_int(owner: str, name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RxArgumentError(f"{owner}: {name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")

