"""What an RxSpark engine implements, and what engines share.

An engine runs jobs on one kind of SparkSession: ``classic.py`` on a classic
session (a JVM driver in this process: RDDs, broadcast variables,
accumulators, job groups), and a Spark Connect engine on a Connect session
(DataFrames, artifacts, tags). ``RxSpark`` (context.py) finds and starts the
session, then hands everything that differs by session kind to the engine
that accepts it. Engines must not import pyspark at module level.
"""

from __future__ import annotations

import abc
import pickle
import sys
import warnings
from typing import TYPE_CHECKING, Any

from ..._warn import user_stacklevel

if TYPE_CHECKING:
    from ...plan import TaskPlan
    from ...worker import ChunkResult
    from ..base import JobSink


class SparkEngine(abc.ABC):
    """Runs rx_exec jobs on one SparkSession of the kind it :meth:`accepts`.

    Made by ``RxSpark`` once per session (cheap: no Spark call in ``__init__``);
    it may cache what it learns about the session (executor addresses ...).

    Args:
        session: The SparkSession.
    """

    def __init__(self, session: Any) -> None:
        self.session = session

    @staticmethod
    @abc.abstractmethod
    def accepts(session: Any) -> bool:
        """Whether this engine runs jobs on ``session`` (tested on any object; must not raise)."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether the session still runs (not stopped)."""

    @abc.abstractmethod
    def parallelism(self) -> int:
        """How many chunks a job gets by default."""

    @abc.abstractmethod
    def slots(self) -> int:
        """How many tasks can run at once on the current executors."""

    @abc.abstractmethod
    def nodes(self) -> list[str]:
        """Executor addresses (``elem_type="nodes"``, ``once_per_elem``)."""

    @abc.abstractmethod
    def run_chunks(self, job: JobSink, progress: bool | None) -> None:
        """``ComputeContext.run_chunks`` on this session; ``progress`` is ``RxSpark``'s setting."""

    @abc.abstractmethod
    def cancel(self, job: JobSink) -> None:
        """``ComputeContext.cancel``: stop the job's Spark work (any thread; must not raise)."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What job records say about the session (``master``, ``application_id``, ``spark_version``, ``spark_conf``)."""


def chunk_result(blob: bytes) -> ChunkResult:
    """A ChunkResult sent by a worker, its values loaded (values the driver cannot load fail their tasks)."""
    result = pickle.loads(blob)
    result.load_values()
    return result


def progress_bar(progress: bool | None, plan: TaskPlan) -> Any:
    """A tqdm bar over the job's tasks: None when ``progress`` is False, or None and not interactive."""
    if progress is False or (progress is None and not _interactive()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            warnings.warn("progress=True needs tqdm: pip install 'rxspark[progress]'", stacklevel=user_stacklevel())
        return None
    return tqdm(total=plan.n_tasks, desc=f"rxspark {plan.function_name}", unit="task", leave=False)


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
