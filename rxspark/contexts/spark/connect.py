"""The engine of Spark Connect sessions: a job's chunks as the partitions of one DataFrame.

The shape of a job on a Connect session (no JVM, no SparkContext, no RDDs on the client):

* rxspark itself is uploaded once per session as a ``pyfile`` artifact (a zip
  of the package), so the cluster's workers need not have it installed;
* the payload (function, shared arguments, exec objects) and the chunks are
  two files uploaded once per job with ``addArtifacts(file=True)`` (names
  unique per job: Connect cannot delete artifacts before the session ends);
  workers read them with ``SparkFiles.get`` and load them once per Python
  worker process (the cache of :mod:`rxspark.worker`, keyed by the job id);
* ``spark.range(0, n, 1, n)`` has exactly one row per partition; partition
  ``i`` runs chunk ``i`` through :func:`rxspark.worker.run_chunk` inside
  ``mapInArrow`` and yields the pickled ChunkResult as one binary cell;
* the client reads them with ``toLocalIterator()`` (partitions arrive in
  partition order), under a tag named after the job so ``cancel`` can
  ``interruptTag`` it from any thread;
* a chunk whose serialized result is over the per-chunk limit sends a small
  error row instead of the result (a result over the server's limits crashed
  the local server and hung the client): the job fails at once with an
  ``RxJobError`` naming the limit;
* the run loop follows the contract of ``contexts/base.py``: on
  ``job.should_stop()`` or an error it leaves, and the job interrupts the tag
  (:meth:`ConnectEngine.cancel`).

pyspark is imported only inside functions.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..._compat import connect_endpoint, connect_unsupported
from ...errors import RxJobCanceledError, RxJobError, RxSparkUnavailableError
from ...worker import InlinePayload, load_payload, run_chunk
from ...worker.failures import worker_environment
from ..base import INLINE_PAYLOAD_BYTES, check_nodes_ran, deliver
from .engine import SparkEngine, barrier_addresses, chunk_result, lost_chunk, run_on_this_node

if TYPE_CHECKING:
    from ..base import JobSink

_RXSPARK_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULT_SCHEMA = "index long, result binary, error string"
# The largest serialized ChunkResult a chunk may send back (bytes), unless spark.driver.maxResultSize is smaller.
DEFAULT_CHUNK_RESULT_LIMIT = 256 * 1024 * 1024


def is_connect_session(session: Any) -> bool:
    """Whether ``session`` is a Spark Connect SparkSession (tested on any object; never raises)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def parse_size(text: str | None, default: int) -> int:
    """A Spark size ('1g', '512m', '4096') in bytes; ``default`` when unset or unreadable; 0 means unlimited."""
    if text is None:
        return default
    match = re.fullmatch(r"\s*(\d+)\s*([kmgtp]?)b?\s*", str(text).lower())
    if not match:
        return default
    return int(match.group(1)) * 1024 ** "bkmgtp".index(match.group(2) or "b")


# ---------------------------------------------------------------- worker side

_chunks: OrderedDict[str, list[Any]] = OrderedDict()
_chunks_lock = threading.Lock()


@dataclass(frozen=True)
class ArtifactPayload:
    """The payload as a file artifact of the session, read with SparkFiles and loaded once per worker process."""

    key: str
    name: str

    def load(self) -> Any:
        from pyspark import SparkFiles

        with open(SparkFiles.get(self.name), "rb") as f:
            blob = f.read()
        return load_payload(blob)


def _job_chunks(key: str, name: str | list[Any]) -> list[Any]:
    if not isinstance(name, str):
        return name  # small jobs: the chunks ride in the query itself
    with _chunks_lock:
        chunks = _chunks.get(key)
        if chunks is not None:
            return chunks
    from pyspark import SparkFiles

    with open(SparkFiles.get(name), "rb") as f:
        chunks = pickle.load(f)
    with _chunks_lock:
        _chunks[key] = chunks
        while len(_chunks) > 4:
            _chunks.popitem(last=False)
    return chunks


def _result_batch(index: int, blob: bytes | None, error: str | None) -> Any:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(
        [pa.array([index], pa.int64()), pa.array([blob], pa.binary()), pa.array([error], pa.string())],
        names=["index", "result", "error"],
    )


def _send(index: int, result: Any, limit: int) -> Any:
    blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    if limit and len(blob) > limit:
        return _result_batch(
            index,
            None,
            f"the results of chunk {index} (tasks {result.start}..{result.stop - 1}) are {len(blob) / 2**20:.1f} MiB "
            f"serialized, over the Spark Connect limit of {limit / 2**20:.1f} MiB per chunk",
        )
    return _result_batch(index, blob, None)


def _run_partition(ref: Any, chunks_name: Any, limit: int, batches: Any) -> Any:
    from pyspark import TaskContext

    for _ in batches:  # one row: the partition's index
        pass
    index = TaskContext.get().partitionId()
    chunk = _job_chunks(ref.key, chunks_name)[index]
    yield _send(index, run_chunk(ref, chunk, serialize_results=True), limit)


def _run_on_node(ref: Any, chunks_name: Any, limit: int, nodes: list[str], batches: Any) -> Any:
    """A barrier task of a once_per_elem job: its result is the task's one row (``run_on_this_node``)."""
    for _ in batches:
        pass
    result = run_on_this_node(ref, lambda: _job_chunks(ref.key, chunks_name), nodes)
    if result is not None:
        yield _send(result.index, result, limit)


def _addresses_partition(batches: Any) -> Any:
    for _ in batches:
        pass
    addresses = barrier_addresses()
    if addresses is not None:
        yield _result_batch(0, pickle.dumps(addresses), None)


def _partition_count(batches: Any) -> Any:
    from pyspark import TaskContext

    for _ in batches:
        pass
    yield _result_batch(TaskContext.get().partitionId(), None, None)


# ---------------------------------------------------------------- the engine


class ConnectEngine(SparkEngine):
    """Runs jobs on a Spark Connect session through DataFrames, artifacts and tags."""

    def __init__(self, session: Any) -> None:
        why = connect_unsupported()
        if why:  # a Connect session of pyspark 3.5, passed in as spark= or found running
            raise RxSparkUnavailableError(f"RxSpark: {why}")
        super().__init__(session)
        self._parallelism: int | None = None
        self._nodes: list[str] | None = None
        self._shipped = False
        self._ship_lock = threading.Lock()
        self._tmp = tempfile.mkdtemp(prefix="rxspark-connect-")
        self.parallelism_override: int | None = None

    @staticmethod
    def accepts(session: Any) -> bool:
        return is_connect_session(session)

    def alive(self) -> bool:
        return not getattr(self.session, "is_stopped", False)

    def _conf(self, key: str) -> str | None:
        try:
            return self.session.conf.get(key, None)
        except Exception:  # noqa: BLE001 - a property the server hides
            return None

    def parallelism(self) -> int:
        """The server's default parallelism: ``spark.default.parallelism`` if set, else probed once and cached.

        The client has no ``defaultParallelism``; ``spark.range`` without a
        partition count is split into the server's default parallelism, so
        one small query counts its partitions.
        """
        if self.parallelism_override is not None:
            return self.parallelism_override
        if self._parallelism is None:
            configured = self._conf("spark.default.parallelism")
            if configured and configured.isdigit() and int(configured) > 0:
                self._parallelism = int(configured)
            else:
                self._ship_rxspark()  # the probe runs a function of rxspark's on the workers
                rows = self.session.range(0, 1 << 16).mapInArrow(_partition_count, RESULT_SCHEMA).collect()
                self._parallelism = max(1, len(rows))
        return self._parallelism

    def slots(self) -> int:
        return self.parallelism()

    def nodes(self) -> list[str]:
        """Executor addresses, from a barrier stage's task infos (cached for the session)."""
        if self._nodes is None:
            slots = max(1, self.slots())
            self._ship_rxspark()
            df = self.session.range(0, slots, 1, slots).mapInArrow(_addresses_partition, RESULT_SCHEMA, barrier=True)
            (row,) = df.collect()
            self._nodes = pickle.loads(row["result"])
        return list(self._nodes)

    def result_limit(self) -> int:
        """The largest serialized ChunkResult a chunk may send (bytes)."""
        limit = DEFAULT_CHUNK_RESULT_LIMIT
        max_result = parse_size(self._conf("spark.driver.maxResultSize"), 1 << 30)
        if max_result:
            limit = min(limit, max_result)
        return limit

    def _ship_rxspark(self) -> None:
        """Upload rxspark as a zip ``pyfile`` artifact, once per session, so workers import it from there.

        Before any query that runs one of rxspark's functions: the workers unpickle them by reference.
        """
        with self._ship_lock:
            if self._shipped:
                return
            path = os.path.join(self._tmp, "rxspark.zip")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for root, dirs, files in os.walk(_RXSPARK_DIR):
                    dirs[:] = [d for d in dirs if d != "__pycache__"]
                    for name in files:
                        if name.endswith((".py", ".typed", ".properties")):
                            full = os.path.join(root, name)
                            zf.write(full, os.path.relpath(full, os.path.dirname(_RXSPARK_DIR)))
            self.session.addArtifacts(path, pyfile=True)
            self._shipped = True

    def _upload(self, job: JobSink) -> tuple[Any, Any]:
        """Where the job's payload and chunks are: inline in the query when small, else file artifacts."""
        plan = job.plan
        chunks_blob = pickle.dumps(list(plan.chunks), protocol=pickle.HIGHEST_PROTOCOL)
        if len(plan.payload_blob) + len(chunks_blob) <= INLINE_PAYLOAD_BYTES:  # the chunks ride along with it
            return InlinePayload(job.job_id, plan.payload_blob), list(plan.chunks)
        payload_name = f"rxspark-{job.job_id}.payload"
        chunks_name = f"rxspark-{job.job_id}.chunks"
        payload_path = os.path.join(self._tmp, payload_name)
        chunks_path = os.path.join(self._tmp, chunks_name)
        with open(payload_path, "wb") as f:
            f.write(plan.payload_blob)
        with open(chunks_path, "wb") as f:
            f.write(chunks_blob)
        try:
            self.session.addArtifacts(payload_path, chunks_path, file=True)
        finally:
            for path in (payload_path, chunks_path):
                with contextlib.suppress(OSError):
                    os.remove(path)
        return ArtifactPayload(job.job_id, payload_name), chunks_name

    def run_chunks(self, job: JobSink) -> None:
        plan = job.plan
        if not plan.chunks or job.should_stop():
            return
        import functools

        self._ship_rxspark()
        ref, chunks_name = self._upload(job)
        limit = self.result_limit()
        spark = self.session
        if plan.once_per_elem:
            assert plan.nodes is not None
            slots = max(1, self.slots())
            run = functools.partial(_run_on_node, ref, chunks_name, limit, list(plan.nodes))
            df = spark.range(0, slots, 1, slots).mapInArrow(run, RESULT_SCHEMA, barrier=True)
        else:
            n = len(plan.chunks)
            run = functools.partial(_run_partition, ref, chunks_name, limit)
            df = spark.range(0, n, 1, n).mapInArrow(run, RESULT_SCHEMA)
        handler = _ProgressHandler(job)
        with contextlib.suppress(Exception):
            spark.registerProgressHandler(handler)
        spark.addTag(job.job_id)
        rows = df.toLocalIterator()  # the query starts on the first next()
        # On a stop (and on any error, Ctrl-C included) the loop just leaves: the job interrupts the tag.
        try:
            if job.should_stop():
                return  # stopped while the job's files were uploaded
            for row in rows:
                if row["error"] is not None:
                    raise RxJobError(f"job {job.job_id}: {row['error']}; return smaller results or use more chunks")
                deliver(job, chunk_result(row["result"]))
                if job.should_stop():
                    return
            check_nodes_ran(job)
        except (RxJobError, RxJobCanceledError):
            raise  # rxspark's own errors, as they are
        except Exception as exc:  # noqa: BLE001 - Connect raises generic exceptions
            if job.should_stop() or "OPERATION_CANCELED" in str(exc):
                return  # canceled: the job already knows
            raise _connect_failure(exc, job) from exc
        finally:
            with contextlib.suppress(Exception):
                rows.close()  # release the server's copy of the results not read
            with contextlib.suppress(Exception):
                spark.removeTag(job.job_id)
            with contextlib.suppress(Exception):
                spark.removeProgressHandler(handler)

    def cancel(self, job: JobSink) -> None:
        """Interrupt the job's query (every operation with the job's tag).

        Connect cannot cancel a query the server has not received yet: the run
        loop does not start one once ``job.should_stop()``, which leaves one
        round trip in which a cancel finds nothing to interrupt.
        """
        with contextlib.suppress(Exception):
            self.session.interruptTag(job.job_id)

    def master(self) -> str:
        endpoint = connect_endpoint(self.session)
        return f"sc://{endpoint}" if endpoint else "sc://?"

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"master": self._conf("spark.master"), "application_id": self._conf("spark.app.id")}
        with contextlib.suppress(Exception):
            info["spark_version"] = self.session.version
        info["remote"] = connect_endpoint(self.session)
        return info


class _ProgressHandler:
    """Shows the server's task counts on the job's bar while results are held back.

    The server sends partitions in order, so the bar's count (chunks received)
    waits for the first chunk; this says how many of the stage's tasks already
    finished. Handlers are per session: only reports of the job's own thread
    (the one reading its results) count. An exception here would fail the
    query, so nothing escapes.
    """

    def __init__(self, job: JobSink) -> None:
        self.job = job
        self.thread = threading.get_ident()

    def __call__(self, stages: Any, inflight_tasks: int, operation_id: Any, done: bool) -> None:
        try:
            if threading.get_ident() != self.thread or not stages:
                return
            total = sum(stage.num_tasks for stage in stages)
            finished = sum(stage.num_completed_tasks for stage in stages)
            self.job.note_progress(f"{finished}/{total} chunks finished on the server")
        except Exception:  # noqa: BLE001, S110 - never fail the query over a progress bar
            pass


def _connect_failure(exc: BaseException, job: JobSink) -> BaseException:
    text = str(exc)
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)[:400]
    environment = worker_environment(text)
    if environment is not None:
        return RxJobError(f"job {job.job_id}: {environment}")
    lost = lost_chunk(text, job, first)
    if lost is not None:
        return lost
    return RxJobError(f"job {job.job_id}: the Spark Connect query failed: {type(exc).__name__}: {first}")
