"""The compute context interface and the active-context slot.

A backend implements ``_run_chunks`` (run every chunk of a job through
``run_chunk`` and hand each result to ``job.deliver``), ``parallelism`` and,
if it can stop running work, ``_cancel``. Everything else (validation,
ordering, failure policy, RNG, output) lives outside the backends.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import RxArgumentError, RxArgumentTypeError
from ..options import get_option
from ..worker import default_node

if TYPE_CHECKING:
    from ..jobs import RxJob


class ComputeContext:
    """Base class of compute contexts.

    Args:
        wait: Whether ``rx_exec`` blocks (True) or returns an ``RxJob`` (False).
        console_output: Print each task's captured output on the driver when results are collected.
        auto_cleanup: Delete job artifacts once results are returned.
        packages_to_load: Modules imported on each worker before the first task.
        share_dir: Where job records and shared data are kept (default: ``rx_options()["share_dir"]``).
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
    ) -> None:
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
        self._share_dir = os.fspath(share_dir) if share_dir is not None else None
        self._previous: list[ComputeContext] = []
        self._closed = False

    # ------------------------------------------------------------ backend interface

    def parallelism(self) -> int:
        """How many chunks can run at once (the default number of chunks)."""
        return 1

    def nodes(self) -> list[str]:
        """Names of the nodes (``elem_type="nodes"``, ``once_per_elem``)."""
        return [default_node()]

    def _run_chunks(self, job: RxJob) -> None:
        """Run every chunk of ``job.plan`` and call ``job.deliver`` for each as it finishes.

        Return once all are delivered or ``job.should_stop()``; raise on an
        infrastructure failure that could not be retried.
        """
        raise NotImplementedError

    def _cancel(self, job: RxJob) -> None:
        """Stop the running work of ``job`` (called from any thread)."""

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
        from .. import api

        self._previous.append(api.rx_set_compute_context(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        from .. import api

        previous = self._previous.pop() if self._previous else None
        api.rx_set_compute_context(previous if previous is not None else "local")
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(wait={self.wait})"


def check_positive_int(owner: str, name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RxArgumentError(f"{owner}: {name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")

