"""ChunkResult: what one chunk sends back to the driver, and how its values travel."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..errors import RxPayloadError, RxTaskError


@dataclass
class ChunkResult:
    """What one chunk sends back. ``values`` (in-process) or ``values_blob`` is set."""

    index: int
    start: int
    stop: int
    node: str
    pid: int
    values: list[Any] | None = None
    values_blob: bytes | None = None
    errors: dict[int, RxTaskError] = field(default_factory=dict)
    causes: dict[int, bytes] = field(default_factory=dict)
    output: str = ""
    offsets: list[int] = field(default_factory=list)
    times: Any = field(default_factory=lambda: array("d"))  # seconds per task
    payload_loaded: bool = False
    # Set when the job's payload could not be loaded where the chunk ran: no task of it ran there.
    payload_error: str | None = None
    payload_module: str | None = None

    def get_values(self) -> list[Any]:
        if self.values is None:
            self.load_values()
        assert self.values is not None
        return self.values

    def payload_failure(self) -> RxPayloadError | None:
        """Why no task of this chunk ran, when the job's payload could not be loaded where it ran.

        No task of the job can run there either: the job fails as a whole, once,
        whatever ``continue_on_failure`` says (the job decides so when the chunk is delivered).
        """
        if self.payload_error is None:
            return None
        return RxPayloadError(
            f"{self.payload_error}. No task ran (found by chunk {self.index}, tasks {self.start}..{self.stop - 1})",
            self.payload_module,
        )

    def load_values(self) -> None:
        """Deserialize the values (on the driver; contexts do it before delivering the chunk).

        Values the driver cannot load (say, of a class that exists only on
        the workers) fail the chunk's tasks as RxTaskErrors, not the job. A
        chunk whose payload could not be loaded has no values (see
        :meth:`payload_failure`).
        """
        if self.values is not None:
            return
        n = self.stop - self.start
        if self.values_blob is None or self.payload_error is not None:
            self.values = [None] * n
            return
        try:
            self.values = cloudpickle.loads(self.values_blob)
        except Exception as exc:  # noqa: BLE001 - reported per task
            self.values = [None] * n
            why = (
                f"the results of chunk {self.index} (tasks {self.start}..{self.stop - 1}) cannot be loaded on the driver: "
                f"{type(exc).__name__}: {safe_str(exc)} (does a result need a module or class the driver lacks?)"
            )
            for task in range(self.start, self.stop):
                self.errors.setdefault(task, RxTaskError(task, self.index, "RxResultDeserializationError", why, "", self.node))
        self.values_blob = None

    def task_output(self, local_index: int) -> str:
        if not self.offsets:
            return ""
        return self.output[self.offsets[local_index] : self.offsets[local_index + 1]]


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` itself raises."""
    try:
        return str(exc)
    except Exception as err:  # noqa: BLE001
        return f"<str() of the {type(exc).__qualname__} failed: {type(err).__name__}>"


def serialize_values(values: list[Any], result: ChunkResult, node: str) -> bytes:
    try:
        return cloudpickle.dumps(values)
    except Exception:  # noqa: BLE001 - find which task's result is the problem
        pass
    for local, value in enumerate(values):
        try:
            cloudpickle.dumps(value)
        except Exception as exc:  # noqa: BLE001
            task = result.start + local
            result.errors[task] = RxTaskError(
                task,
                result.index,
                "RxResultSerializationError",
                f"the result of type {type(value).__module__}.{type(value).__qualname__} cannot be serialized: "
                f"{type(exc).__name__}: {safe_str(exc)}",
                "",
                node,
            )
            values[local] = None
    return cloudpickle.dumps(values)
