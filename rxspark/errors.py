"""Exception hierarchy of rxspark.

Every exception rxspark raises derives from :class:`RxError`. Argument errors
also derive from ``ValueError`` / ``TypeError`` so ordinary ``except`` clauses
keep working. Failures inside the user's function are reported as
:class:`RxTaskError` records that carry the remote traceback and the place the
task ran.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any


class RxError(Exception):
    """Base class of every exception raised by rxspark."""


class RxArgumentError(RxError, ValueError):
    """An argument has a wrong value. Raised before anything runs."""


class RxArgumentTypeError(RxError, TypeError):
    """An argument has a wrong type (or does not fit the function). Raised before anything runs."""


class RxMissingExtraError(RxError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


class RxSparkUnavailableError(RxError):
    """Spark could not be started or reached; the message says why and how to fix it."""


class RxJobCanceledError(RxError, concurrent.futures.CancelledError):
    """The results of a canceled job were asked for."""


class RxJobError(RxError):
    """A job could not be found, read, or completed (missing or corrupted record, lost workers)."""


class RxWorkerLostError(RxJobError):
    """The process running a chunk died on every allowed attempt."""


class RxPayloadError(RxJobError):
    """The job's function and shared arguments cannot be loaded on a worker (a module missing there ...).

    No task of the job can run where that happens, so the job fails as a
    whole, once, whatever ``continue_on_failure`` says. The message names what
    is missing and how to fix it.

    Attributes:
        module: The module the workers could not import, when that was the cause (else None).
    """

    def __init__(self, message: str, module: str | None = None) -> None:
        super().__init__(message)
        self.module = module

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.module))


class RxShareError(RxError):
    """Shared data could not be stored or loaded (missing, truncated or altered file).

    Attributes:
        path: The file (path or URI) concerned.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.path))


class RxLargeObjectWarning(UserWarning):
    """A large object is copied to the workers where a shared handle would do."""


class RxTaskFailureWarning(UserWarning):
    """Issued once per job whose result holds failed tasks."""


class RxTaskError(RxError):
    """One failed task.

    Attributes:
        task_index: Index of the task (0-based) in the job.
        chunk_index: Index of the chunk the task belonged to.
        exc_type: Name of the exception raised by the user's function.
        message: ``str()`` of that exception.
        remote_traceback: Formatted traceback from the worker.
        node: Name of the node (host or executor) the task ran on.
    """

    def __init__(
        self,
        task_index: int,
        chunk_index: int,
        exc_type: str,
        message: str,
        remote_traceback: str = "",
        node: str = "",
    ) -> None:
        self.task_index = task_index
        self.chunk_index = chunk_index
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.node = node
        super().__init__(task_index, chunk_index, exc_type, message, remote_traceback, node)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (self.task_index, self.chunk_index, self.exc_type, self.message, self.remote_traceback, self.node),
        )

    def __str__(self) -> str:
        where = f"task {self.task_index} (chunk {self.chunk_index}"
        where += f", node {self.node})" if self.node else ")"
        text = f"{where} failed: {self.exc_type}: {self.message}"
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return text

    def __repr__(self) -> str:
        return f"RxTaskError(task_index={self.task_index}, exc_type={self.exc_type!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RxTaskError):
            return NotImplemented
        return (self.task_index, self.exc_type, self.message) == (other.task_index, other.exc_type, other.message)

    __hash__ = Exception.__hash__
