"""Chunks: the finished chunks of a job this process runs, and what is read off them.

An :class:`~rxspark.jobs.RxJob` keeps each delivered
:class:`~rxspark.worker.ChunkResult` here (a duplicate attempt of a chunk is
dropped) and asks it for the tasks done, their output, times and nodes, the
failures in task order, and at the end the results in task order.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import RxTaskError
from ..plan import TaskPlan
from ..worker import ChunkResult


class Chunks:
    """The delivered chunks of one job, by chunk index (thread-safe)."""

    def __init__(self) -> None:
        self._by_index: dict[int, ChunkResult] = {}
        self._lock = threading.Lock()
        self.tasks_done = 0
        # The first failed task seen (by delivery order, the lowest task of its chunk) and the
        # pickled exceptions of its chunk's failures.
        self.first_failure: RxTaskError | None = None
        self.first_causes: dict[int, bytes] = {}

    def add(self, result: ChunkResult) -> bool:
        """Keep ``result``; False if its chunk was delivered before (speculation, a retry race)."""
        with self._lock:
            if result.index in self._by_index:
                return False
            self._by_index[result.index] = result
            self.tasks_done += result.stop - result.start
            if result.errors and self.first_failure is None:
                self.first_failure = result.errors[min(result.errors)]
                self.first_causes = dict(result.causes)
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_index)

    def missing(self, n_chunks: int) -> list[int]:
        """The chunk indices below ``n_chunks`` not delivered."""
        with self._lock:
            return sorted(set(range(n_chunks)) - set(self._by_index))

    def delivered(self) -> list[ChunkResult]:
        """The delivered chunks, in chunk order."""
        return self._in_order()

    def _in_order(self) -> list[ChunkResult]:
        with self._lock:
            return [self._by_index[k] for k in sorted(self._by_index)]

    def failures(self) -> list[RxTaskError]:
        """Every failed task's error, in task order."""
        return [error for cr in self._in_order() for _, error in sorted(cr.errors.items())]

    def failed_count(self) -> int:
        return sum(len(cr.errors) for cr in self._in_order())

    def output(self) -> str:
        """The tasks' captured output, each line prefixed by its task index."""
        parts = []
        for cr in self._in_order():
            for local in range(cr.stop - cr.start):
                text = cr.task_output(local)
                if text:
                    parts.append(_prefix(cr.start + local, text))
        return "".join(parts)

    def task_times(self, n_tasks: int) -> list[float | None]:
        """Seconds each task took (None for tasks not run)."""
        times: list[float | None] = [None] * n_tasks
        for cr in self._in_order():
            times[cr.start : cr.start + len(cr.times)] = cr.times
        return times

    def task_nodes(self, n_tasks: int) -> list[str | None]:
        """The node each task ran on (None for tasks not run)."""
        where: list[str | None] = [None] * n_tasks
        for cr in self._in_order():
            where[cr.start : cr.stop] = [cr.node] * (cr.stop - cr.start)
        return where

    def assemble(self, plan: TaskPlan) -> Any:
        """The results in task order: a list, or a dict for named ``elem_args`` / ``once_per_elem``.

        A failed task's slot holds its ``RxTaskError``.
        """
        values: list[Any] = []
        for cr in self._in_order():
            chunk_values = cr.get_values()
            for task, error in cr.errors.items():
                chunk_values[task - cr.start] = error
            values.extend(chunk_values)
        if plan.names is not None:
            return dict(zip(plan.names, values))
        if plan.once_per_elem:
            assert plan.nodes is not None
            return dict(zip(plan.nodes, values))
        return values


def _prefix(task: int, text: str) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(f"[task {task}] {line}" for line in lines)
