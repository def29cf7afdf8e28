"""What an RxSpark engine implements, and what engines share.

An engine runs jobs on one kind of SparkSession: ``classic.py`` on a classic
session (a JVM driver in this process: RDDs, broadcast variables,
accumulators, job groups), and a Spark Connect engine on a Connect session
(DataFrames, artifacts, tags). ``RxSpark`` (context.py) finds and starts the
session, then hands everything that differs by session kind to the engine
that accepts it. Both follow the run-loop contract of ``contexts/base.py``
(its shared steps are there); what only Spark engines share is here: the
worker side of ``once_per_elem`` and of finding the executors (barrier
stages), reading a worker's ChunkResult, and reading a failed Spark job.
Engines must not import pyspark at module level.
"""

from __future__ import annotations

import abc
import pickle
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import RxWorkerLostError
from ...worker import run_chunk
from ..base import node_chunk

if TYPE_CHECKING:
    from ...plan import Chunk
    from ...worker import ChunkResult, PayloadRef
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
    def run_chunks(self, job: JobSink) -> None:
        """``ComputeContext.run_chunks`` on this session, as its contract says (contexts/base.py).

        On ``job.should_stop()`` it returns without canceling: the job calls :meth:`cancel`.
        """

    @abc.abstractmethod
    def cancel(self, job: JobSink) -> None:
        """``ComputeContext.cancel``: stop the job's Spark work, even one not launched yet (any thread; must not raise)."""

    @abc.abstractmethod
    def master(self) -> str:
        """Where the session runs, for reprs: the master URL (classic), the server's ``sc://`` URL (Connect)."""

    def ui_url(self) -> str | None:
        """The Spark UI's address, when the client can tell."""
        return None

    def console_progress(self) -> bool:
        """Whether Spark's own console progress bar is on in this session."""
        return False

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What job records say about the session (``master``, ``application_id``, ``spark_version``, ``spark_conf``)."""


# ---------------------------------------------------------------- worker side (in Spark tasks)


def run_on_this_node(ref: PayloadRef, chunks: Callable[[], Sequence[Chunk]], nodes: Sequence[str]) -> ChunkResult | None:
    """In a task of a barrier stage of a ``once_per_elem`` job: run this executor's chunk, if this task is its first.

    Args:
        ref: The job's payload.
        chunks: The job's chunks; called only by a task that runs one (Connect may read them from a file).
        nodes: The plan's nodes: chunk ``k`` runs on ``nodes[k]`` (see ``contexts.base.node_chunk``).

    Returns:
        The chunk's result (values serialized), or None when this task runs nothing.
    """
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    addresses = [info.address for info in context.getTaskInfos()]
    index = node_chunk(addresses, context.partitionId(), nodes)
    if index is None:
        return None
    return run_chunk(ref, chunks()[index], serialize_results=True, node=addresses[context.partitionId()])


def barrier_addresses() -> list[str] | None:
    """In a task of a barrier stage: the sorted addresses of the stage's executors (task 0 only, None in the others)."""
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    if context.partitionId() != 0:
        return None
    return sorted({info.address for info in context.getTaskInfos()})


# ---------------------------------------------------------------- driver side


def chunk_result(blob: bytes) -> ChunkResult:
    """A ChunkResult as a worker sent it (``contexts.base.deliver`` then loads its values)."""
    result: ChunkResult = pickle.loads(blob)
    return result


_TASK_FAILED = re.compile(r"Task (\d+) in stage [\d.]+ failed (\d+) times")


def lost_chunk(text: str, job: JobSink, said: str) -> RxWorkerLostError | None:
    """The error for a Spark job that failed because one task (a chunk) failed every attempt, else None.

    Args:
        text: Spark's message (classic: Py4J's; Connect: the server's).
        job: The job whose chunk it was.
        said: What Spark said, in one line, quoted at the end.
    """
    match = _TASK_FAILED.search(text)
    if match is None:
        return None
    chunk = int(match.group(1))
    tasks = ""
    if chunk < len(job.plan.chunks):
        c = job.plan.chunks[chunk]
        tasks = f" (tasks {c.start}..{c.stop - 1})"
    worker_died = "Python worker exited unexpectedly" in text or "crashed" in text or "EOFException" in text
    cause = "the Python worker process died" if worker_died else "the Spark task failed"
    return RxWorkerLostError(
        f"chunk {chunk}{tasks} of job {job.job_id}: {cause} on each of {match.group(2)} attempts "
        f"(spark.task.maxFailures). Spark said: {said}"
    )
