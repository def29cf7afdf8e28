"""The backend interface: what a compute context implements, the view of a job it gets, and the steps backends share.

A backend is a :class:`ComputeContext` subclass that implements
:meth:`~ComputeContext.run_chunks` and, where they differ from the defaults,
:meth:`~ComputeContext.parallelism`, :meth:`~ComputeContext.nodes`,
:meth:`~ComputeContext.cancel` and :meth:`~ComputeContext.close`. It sees a job
only through :class:`JobSink`. Its module registers the backend's names
(:func:`rxspark.contexts.registry.register`), so ``rx_set_compute_context("name")``
finds it. Everything else (validation, ordering, failure policy, RNG, output
capture, job records) lives once, outside the backends.

The run-loop contract (what ``run_chunks`` does, in this order):

1. Ship the payload (``job.plan.payload_blob``) once per job: inline with the
   chunks when it is at most :data:`INLINE_PAYLOAD_BYTES`, else by reference
   (a broadcast, an artifact, a file), loaded once per worker process.
2. Launch the chunks, each through :func:`rxspark.worker.run_chunk`, unless
   ``job.should_stop()`` already. ``once_per_elem`` plans run one chunk per node:
   :func:`node_chunk` says which worker runs which chunk.
3. For each finished chunk, in the job's thread: make its values loadable,
   then ``job.deliver(result)``; :func:`deliver` does both. A chunk may arrive
   twice (a retried or speculative attempt): ``job.deliver`` drops the copy.
4. Return once every chunk is delivered (``once_per_elem``: raise
   :func:`check_nodes_ran`'s error if a node's chunk never ran), or as soon as
   ``job.should_stop()``. Never cancel on its own: the job decides.
5. Raise on an infrastructure failure that could not be retried (a lost
   worker, a query the cluster refused); user exceptions are already data in
   the ``ChunkResult``. The job then fails with that error.

``cancel(job)`` is called by the job, exactly once, from any thread, when the
job must stop: on ``job.cancel()`` (a user, Ctrl-C in the job's thread,
another process), when the first task failure stops a
``continue_on_failure=False`` job, and when ``run_chunks`` raised. It may come
before the chunks were launched, while they run, or after ``run_chunks``
returned; it stops whatever of the job still runs or is about to start, and
never raises.
"""

from __future__ import annotations

import html as _html
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .. import _active
from ..errors import RxArgumentError, RxArgumentTypeError, RxJobError
from ..options import get_option
from ..worker import ChunkResult, default_node

if TYPE_CHECKING:
    from ..plan import TaskPlan

# Step 1 of the run-loop contract, on every transport: a payload up to this size travels inline, a copy
# with each chunk (in a Spark task's closure, a Connect query, a call submitted to a pool); a larger
# one goes once per job by reference (a broadcast, an artifact, a file). A reference has a fixed
# price (JVM round trips to make and drop a broadcast, an upload, a file written and read) that a
# small payload's copies do not reach; a large payload's copies would exceed it, one per chunk.
INLINE_PAYLOAD_BYTES = 256 * 1024


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
        """Run every chunk of ``job.plan`` and deliver each to the job as it finishes.

        Called once per job, in the job's thread. In order:

        1. Ship the payload once: inline when ``len(job.plan.payload_blob)`` is at
           most :data:`INLINE_PAYLOAD_BYTES`, else by reference (loaded once per
           worker process).
        2. Launch the chunks through :func:`rxspark.worker.run_chunk` (nothing if
           ``job.should_stop()`` already); for ``once_per_elem``, one chunk per
           node, chosen by :func:`node_chunk`. In-process chunks get
           ``job.stop_event``.
        3. For each finished chunk: :func:`deliver` (its values made loadable on
           the driver, then ``job.deliver``). Duplicates are dropped by the job.
        4. Return once every chunk is delivered (an open plan: and its feed is
           closed; see ``accepts_feeds``), after :func:`check_nodes_ran` for
           ``once_per_elem``; or as soon as ``job.should_stop()``, without
           canceling anything: the job calls :meth:`cancel` itself.
        5. Raise on an infrastructure failure that could not be retried (user
           exceptions are already data in the ``ChunkResult``); the job fails
           with it and calls :meth:`cancel`.

        Args:
            job: The job to run.

        Raises:
            RxJobError: The chunks could not be run (a lost worker, a refused query ...).
            RxPayloadError: The job's function and shared arguments cannot be loaded
                where a chunk ran (from :func:`deliver`).
        """
        raise NotImplementedError

    def prepare(self, job: JobSink) -> None:
        """Get ready to run ``job`` (e.g. start a session); called in the job's thread while it is still queued.

        Raising here fails the job with that error.
        """

    def cancel(self, job: JobSink) -> None:
        """Stop whatever of ``job`` still runs or is about to start. Must not raise.

        The job calls it exactly once, from any thread, after ``job.should_stop()``
        became true: on ``job.cancel()`` (Ctrl-C included), when the first task
        failure stops a ``continue_on_failure=False`` job, and when :meth:`run_chunks`
        raised. It may come before the chunks were launched, while they run, or
        after :meth:`run_chunks` returned. Run loops never call it.
        """

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

    # Whether another process can build this context again from :meth:`recipe` (a detached driver).
    can_detach = True

    def recipe(self) -> dict[str, Any]:
        """How to build this context again in another process: ``{"class": "module.Name", "kwargs": {...}}``.

        A detached driver runs its job on it (``rx_exec(..., detach=True)``): the
        same kind of context with the same settings, never this process's engine.
        The recipe is stored with durable jobs, so secret settings are left out of
        it (the other side's own configuration supplies them).
        """
        kwargs = {
            "console_output": self.console_output,
            "auto_cleanup": self.auto_cleanup,
            "packages_to_load": list(self.packages_to_load),
            "share_dir": self.share_dir,
            "progress": False,
        }
        from ..jobs.store import without_secrets  # the recipe is stored: no secret goes with it

        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "kwargs": without_secrets({**kwargs, **self._recipe_kwargs()}),
        }

    def _recipe_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments for :meth:`recipe`."""
        return {}

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


# ---------------------------------------------------------------- steps every backend shares


def deliver(job: JobSink, result: ChunkResult) -> None:
    """Step 3 of the run-loop contract: make ``result``'s values loadable on the driver, then hand it to ``job``.

    Values the driver cannot load (a class only the workers have) fail the
    chunk's tasks as RxTaskErrors, not the job. A chunk whose payload could not
    be loaded where it ran is delivered too: the job then stops and fails
    (``ChunkResult.payload_failure``), and the run loop returns on ``should_stop``.

    Args:
        job: The job the chunk belongs to.
        result: The finished chunk, as the worker sent it.
    """
    result.load_values()
    job.deliver(result)


def node_chunk(addresses: Sequence[str], worker: int, nodes: Sequence[str]) -> int | None:
    """Which chunk of a ``once_per_elem`` plan worker ``worker`` runs, or None.

    A ``once_per_elem`` plan has one chunk per node, chunk ``k`` for ``nodes[k]``
    (the plan's nodes). The backend starts workers on every node at once (on
    Spark: the tasks of one barrier stage, at least one per executor); the
    first worker of each node runs that node's chunk, the others nothing. A
    node the plan does not name (it joined after the plan was made) runs
    nothing, and a node of the plan that no worker is on leaves its chunk
    undelivered (:func:`check_nodes_ran`).

    Args:
        addresses: The node of each worker, in worker order.
        worker: This worker's position in ``addresses``.
        nodes: The plan's nodes (``job.plan.nodes``).
    """
    mine = addresses[worker]
    if addresses.index(mine) != worker or mine not in nodes:
        return None
    return nodes.index(mine)


def check_nodes_ran(job: JobSink) -> None:
    """Step 4 for ``once_per_elem`` plans: every node's chunk ran, or the nodes changed while the job ran.

    Call it once the chunks are all back (not after a stop).

    Raises:
        RxJobError: A chunk was not delivered: its node was gone, or no worker ran there.
    """
    plan = job.plan
    if plan.once_per_elem and job.delivered() < len(plan.chunks):
        raise RxJobError(f"once_per_elem: the executors changed during job {job.job_id} (expected {plan.nodes}); run it again")
