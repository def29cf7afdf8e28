"""The engine of classic SparkSessions: a job's chunks as the partitions of one Spark job.

The shape of a job on a classic session (a JVM driver in this process):

* the payload (function, shared arguments, exec objects) is one broadcast
  variable, deserialized once per Python worker process and cached there;
* the chunks become an RDD with exactly one chunk per partition; without
  per-call arguments a chunk is only ``(index, start, stop)``;
* each partition runs :func:`rxspark.worker.run_chunk` and sends its
  :class:`~rxspark.worker.ChunkResult` back through an accumulator, which
  Spark merges on the driver as each task succeeds (once per partition, never
  for failed attempts), so results stream in as partitions finish;
* every ``rx_exec`` is one Spark job in its own job group (named after the
  function, cancellable); user exceptions are data, so Spark retries only
  infrastructure failures, and a retried partition replays the same RNG stream;
* the run loop follows the contract of ``contexts/base.py``: on
  ``job.should_stop()`` it returns, and the job cancels the group
  (:meth:`ClassicEngine.cancel`, which also stops a job not submitted yet).

pyspark is imported only inside functions (this module is imported with ``RxSpark``).
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import _compat
from ...errors import RxJobError
from ...worker import InlinePayload, load_payload, run_chunk
from ...worker.failures import worker_environment
from ..base import INLINE_PAYLOAD_BYTES, check_nodes_ran, deliver
from .engine import SparkEngine, barrier_addresses, chunk_result, lost_chunk, run_on_this_node

if TYPE_CHECKING:
    from ..base import JobSink

# ---------------------------------------------------------------- worker side


@dataclass(frozen=True)
class BroadcastPayload:
    """The payload as a Spark broadcast variable (bytes), loaded once per worker process."""

    key: str
    broadcast: Any

    def load(self) -> Any:
        return load_payload(self.broadcast.value)  # fetch errors propagate (Spark retries); unpickling ones are the job's


def _channel_param() -> Any:
    from pyspark.accumulators import AccumulatorParam

    class ChunkChannel(AccumulatorParam):
        """Carries ChunkResults from tasks to the driver.

        On a worker the accumulator collects the partition's serialized
        results; on the driver each task's collection is handed to ``sink``
        (the job's queue) and nothing is kept.
        """

        def __init__(self, sink: Any = None) -> None:
            self.sink = sink

        def __getstate__(self) -> dict[str, Any]:
            return {}  # the sink stays on the driver

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.sink = None

        def zero(self, value: Any) -> list[bytes]:
            return []

        def addInPlace(self, acc: list[bytes], item: Any) -> list[bytes]:  # noqa: N802 - pyspark's name
            if self.sink is None:
                acc.append(item)
                return acc
            for blob in item:
                self.sink(blob)
            return acc

    return ChunkChannel


def _run_partition(ref: BroadcastPayload | InlinePayload, channel: Any, iterator: Any) -> Any:
    for chunk in iterator:
        result = run_chunk(ref, chunk, serialize_results=True)
        channel.add(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return iter(())


def _run_on_node(ref: BroadcastPayload | InlinePayload, channel: Any, chunks: list[Any], nodes: list[str], iterator: Any) -> Any:
    """A barrier task of a once_per_elem job: its result goes through the channel (``run_on_this_node``)."""
    result = run_on_this_node(ref, lambda: chunks, nodes)
    if result is not None:
        channel.add(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return iter(())


def _addresses_partition(iterator: Any) -> Any:
    addresses = barrier_addresses()
    return iter(() if addresses is None else (addresses,))


# ---------------------------------------------------------------- the engine


class ClassicEngine(SparkEngine):
    """Runs jobs on a classic SparkSession through its ``SparkContext``."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self._nodes: tuple[tuple[str, ...], list[str]] | None = None

    @staticmethod
    def accepts(session: Any) -> bool:
        # A Spark Connect session has no sparkContext (it raises an AttributeError): not this engine's.
        return hasattr(session, "sparkContext")

    def alive(self) -> bool:
        return _compat.java_spark_context(self.session.sparkContext) is not None

    def parallelism(self) -> int:
        return int(self.session.sparkContext.defaultParallelism)

    def slots(self) -> int:
        slots = _compat.max_concurrent_tasks(self.session.sparkContext)
        return self.parallelism() if slots is None else slots

    def nodes(self) -> list[str]:
        """Executor addresses (host:port), found by a small barrier job and cached per executor set."""
        sc = self.session.sparkContext
        ids = _compat.executor_ids(sc)
        key = tuple(sorted(ids)) if ids is not None else None
        if key is not None and self._nodes is not None and self._nodes[0] == key:
            return list(self._nodes[1])
        slots = max(1, self.slots())
        sc.setJobDescription("rxspark: find executors")
        try:
            (addresses,) = sc.parallelize(range(slots), slots).barrier().mapPartitions(_addresses_partition).collect()
        finally:
            sc.setJobDescription(None)
        self._nodes = (key, addresses) if key is not None else None
        return list(addresses)

    def run_chunks(self, job: JobSink) -> None:
        sc = self.session.sparkContext
        plan = job.plan
        if not plan.chunks or job.should_stop():
            return
        results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        accumulator = sc.accumulator([], _channel_param()(results.put))
        # A small payload travels in the tasks' closure (which Spark ships to each task anyway).
        broadcast = None
        ref: BroadcastPayload | InlinePayload
        if len(plan.payload_blob) <= INLINE_PAYLOAD_BYTES:
            ref = InlinePayload(job.job_id, plan.payload_blob)
        else:
            broadcast = sc.broadcast(plan.payload_blob)
            ref = BroadcastPayload(job.job_id, broadcast)
        done = object()

        def action() -> None:
            try:
                sc.setJobGroup(job.job_id, f"rxspark: {plan.function_name} ({plan.n_tasks} tasks)", interruptOnCancel=True)
                if plan.once_per_elem:
                    assert plan.nodes is not None
                    slots = max(1, self.slots())
                    run = _bind(_run_on_node, ref, accumulator, plan.chunks, plan.nodes)
                    sc.parallelize(range(slots), slots).barrier().mapPartitions(run).collect()
                else:
                    rdd = sc.parallelize(plan.chunks, len(plan.chunks))
                    rdd.foreachPartition(_bind(_run_partition, ref, accumulator))
                results.put(done)
            except BaseException as exc:  # noqa: BLE001 - handed to the job thread
                results.put(exc)

        runner = threading.Thread(target=action, name=f"rxspark-spark-{job.job_id}", daemon=True)
        runner.start()
        # On a stop (and on any error, Ctrl-C included) the loop just leaves: the job cancels the group.
        try:
            while True:
                try:
                    item = results.get(timeout=0.2)
                except queue.Empty:
                    if job.should_stop():
                        return
                    continue
                if item is done:
                    break
                if isinstance(item, BaseException):
                    if job.should_stop():
                        return
                    raise _spark_failure(item, job) from item
                deliver(job, chunk_result(item))
                if job.should_stop():
                    return
            # Results that arrived after the action returned are still in the queue.
            while True:
                try:
                    item = results.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, bytes):
                    deliver(job, chunk_result(item))
            check_nodes_ran(job)
        finally:
            accumulator.accum_param.sink = None
            _compat.drop_accumulator(accumulator)
            if broadcast is not None:
                with contextlib.suppress(Exception):
                    broadcast.unpersist(blocking=False)

    def cancel(self, job: JobSink) -> None:
        """Cancel the job's group: its running Spark job, or one the action's thread has not submitted yet."""
        _compat.cancel_job_group(self.session.sparkContext, job.job_id)

    def master(self) -> str:
        return str(self.session.sparkContext.master)

    def ui_url(self) -> str | None:
        try:
            return self.session.sparkContext.uiWebUrl
        except Exception:  # noqa: BLE001 - a stopped session
            return None

    def console_progress(self) -> bool:
        shown = _compat.console_progress_bar(self.session.sparkContext)
        if shown is not None:
            return shown
        conf = self.session.sparkContext.getConf()
        return conf.get("spark.ui.showConsoleProgress", "false").lower() == "true"

    def describe(self) -> dict[str, Any]:
        sc = self.session.sparkContext
        return {
            "master": sc.master,
            "application_id": sc.applicationId,
            "spark_version": sc.version,
            "spark_conf": dict(sc.getConf().getAll()),
        }


def _bind(function: Any, *args: Any) -> Any:
    """``functools.partial`` for Spark closures (partials of module functions pickle by reference)."""
    import functools

    return functools.partial(function, *args)


def _spark_failure(exc: BaseException, job: JobSink) -> BaseException:
    """Turn a failed Spark action into an rxspark error that says what happened."""
    text = str(exc)
    if "maxResultSize" in text:
        return RxJobError(
            f"job {job.job_id}: the results are larger than spark.driver.maxResultSize; raise it, e.g. "
            "RxSpark(extra_spark_config={'spark.driver.maxResultSize': '4g'}), or return smaller results "
            f"(Spark said: {_first_line(text)})"
        )
    environment = worker_environment(text)
    if environment is not None:
        return RxJobError(f"job {job.job_id}: {environment}")
    lost = lost_chunk(text, job, _first_line(text))
    if lost is not None:
        return lost
    return RxJobError(f"job {job.job_id}: the Spark job failed: {_first_line(text)}")


def _first_line(text: str) -> str:
    """What Spark said about a failed job, in one line.

    Py4J wraps Spark's exception in "An error occurred while calling ..."; the
    useful part is the reason of the last failed attempt, or else the first
    line of Spark's own message.
    """
    recent = re.search(r"most recent failure: (.+)", text)
    if recent:
        return recent.group(1).strip()[:400]
    for line in text.splitlines():
        line = line.strip().lstrip(":").strip()
        if line and not line.startswith("An error occurred while calling"):
            return line[:400]
    return text.strip()[:400]
