"""The job record: :class:`JobRecord`, its one schema, and :class:`Recorder`, the one place that decides when it is written.

A record is the JSON file ``<share_dir>/<job_id>/record.json`` (see
:mod:`rxspark.jobs.store`) that lets other processes list, query and cancel a
job. :class:`JobRecord` names and types its keys; :meth:`JobRecord.to_json`
and :meth:`JobRecord.from_json` convert it to and from the JSON object on
disk (same keys as ever, ``RECORD_FORMAT`` 1, so records written by earlier
versions read back, and keys this version does not know are kept).

When a job of this process writes its record (:class:`Recorder`), and when
the record goes. The rule: a record is kept until the job's outcome (results,
exception or cancellation) has been handed out; then, with ``auto_cleanup``
(the default), it is removed, and the job id reads "missing" everywhere
(``rx_get_job_status``, ``rx_get_jobs``, ``rxspark job status``):

* a non-waiting job writes it when submitted, when it starts, and when it
  ends (with its results or exception); the record is kept until the outcome
  is collected (``job.result()``, ``rx_get_job_results``, ``rxspark job
  results``) or ``rx_cleanup_jobs`` removes it. A canceled one stays
  "canceled" until then;
* a waiting job writes nothing unless it runs longer than ``RECORD_DELAY``
  (then it becomes visible to ``rx_get_jobs`` from other processes, which
  may cancel it), or ``auto_cleanup=False`` asks for a record to be kept:
  short waiting calls never touch the disk. Its outcome goes to the
  ``rx_exec`` call itself (results, a raised error, ``RxJobCanceledError``,
  or the ``KeyboardInterrupt`` of a Ctrl-C), so its record goes when the job
  ends, whatever the outcome;
* ``auto_cleanup=False`` keeps every record (finished, failed or canceled)
  until ``rx_cleanup_jobs``;
* while a recorded job runs, the monitor ticks it about once per ``TICK``: its
  progress is refreshed, a heartbeat written every ``HEARTBEAT``, and a cancel
  request written by another process is noticed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import types
import typing
import warnings
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._warn import user_stacklevel
from . import store as _store
from .monitor import TICK

if TYPE_CHECKING:
    from .job import RxJob

__all__ = ["CHUNKS", "DONE_STATES", "HEARTBEAT", "RECORD_DELAY", "RECORD_FORMAT", "STATES", "JobRecord", "Recorder"]

RECORD_FORMAT = 1

# ``JobRecord.results`` of a durable job whose every chunk is checkpointed: its results are read from there.
CHUNKS = "chunks"

STATES = ("queued", "running", "finished", "failed", "canceled", "missing", "undetermined")
DONE_STATES = frozenset({"finished", "failed", "canceled", "undetermined"})

# A waiting job gets a record only once it has run this long (seconds).
RECORD_DELAY = 1.0
# A running job's record is rewritten at least this often, even without progress,
# so readers on other hosts can tell a live owner from a dead one.
HEARTBEAT = 15.0

@dataclasses.dataclass(kw_only=True)
class JobRecord:
    """One job's record: what it runs, how, its status and timings, and where its outcome is.

    Attributes:
        format: ``RECORD_FORMAT`` of the writer.
        job_id: The job's id.
        function: Name of the function the tasks call.
        n_tasks, chunk_size, n_chunks: The plan's layout.
        rng_seed, rng_kind, rng_scope: The random-number setup (None without one).
        context: The compute context's description (secrets redacted).
        wait, auto_cleanup, console_output, continue_on_failure: The job's settings.
        submitted_at, started_at, finished_at, updated_at: ``time.time()`` stamps, or None.
        status: One of ``STATES`` as written by the owner (readers check the owner is alive).
        progress: (tasks done, tasks in all), or None.
        output: The tasks' captured output so far.
        owner: The owning process: ``{"pid", "host", "start_time"}``.
        results: The name of the outcome file (``results.pkl`` or ``error.pkl``), or None.
        results_error: Why the outcome could not be stored, or None.
        error: ``{"type", "message"}`` of a failed job's exception, or None.
        results_retrieved: Whether the outcome was handed out.
        durable: Whether the job checkpoints its chunks (``rx_resume_job`` can finish it).
        chunks_saved, chunks_total: A durable job's checkpointed chunks and its chunks in all.
        extra: Keys this version does not know (written back unchanged).
    """

    format: int = RECORD_FORMAT
    job_id: str
    function: str = "?"
    n_tasks: int = 0
    chunk_size: int | None = None
    n_chunks: int | None = None
    rng_seed: int | None = None
    rng_kind: str | None = None
    rng_scope: str | None = None
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    wait: bool = False
    auto_cleanup: bool = True
    console_output: bool = False
    continue_on_failure: bool = True
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    status: str = "undetermined"
    progress: tuple[int, int] | None = None
    output: str = ""
    owner: dict[str, Any] | None = None
    results: str | None = None
    results_error: str | None = None
    error: dict[str, Any] | None = None
    results_retrieved: bool = False
    durable: bool = False
    chunks_saved: int | None = None
    chunks_total: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object written to ``record.json``."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "extra"}
        if self.progress is not None:
            data["progress"] = list(self.progress)
        return {**self.extra, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobRecord:
        """A record from the JSON object read from ``record.json``.

        A value of the wrong type (a damaged or hand-edited record) reads as
        the field's default, so readers can rely on the types above.
        """
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name != "extra" and field.name in data:
                value = _checked(field.name, data[field.name])
                if value is not _WRONG:
                    values[field.name] = value
        if "job_id" not in values:
            raise ValueError("not a job record: no job_id string")
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**values, extra={key: value for key, value in data.items() if key not in names})

    @property
    def context_name(self) -> str:
        """The compute context's class name (``"?"`` if not recorded)."""
        return str(self.context.get("context", "?"))

    @property
    def owner_pid(self) -> int | None:
        pid = (self.owner or {}).get("pid")
        return pid if isinstance(pid, int) else None

    @property
    def owner_host(self) -> str | None:
        host = (self.owner or {}).get("host")
        return host if isinstance(host, str) else None


_WRONG: Any = object()  # from_json: a value of the wrong type
_NOTHING: Any = object()  # Recorder._save: no results to store


def _json_types(hint: Any) -> tuple[type, ...]:
    """The JSON value types a field annotated ``hint`` accepts (``float | None`` -> float, int, NoneType)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    accepted = tuple(typing.get_origin(option) or option for option in options)
    return (*accepted, int) if float in accepted else accepted


# The schema's types, from the annotations above (progress, a pair, is checked apart).
_TYPES = {name: _json_types(hint) for name, hint in typing.get_type_hints(JobRecord).items() if name != "extra"}


def _checked(name: str, value: Any) -> Any:
    if name == "progress":
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return (int(value[0]), int(value[1])) if ok else (None if value is None else _WRONG)
    accepted = _TYPES[name]
    if isinstance(value, bool) and bool not in accepted:  # bool is an int in Python, not in JSON
        return _WRONG
    return value if isinstance(value, accepted) else _WRONG


class Recorder:
    """Writes the record of one job of this process, when the rules above say so.

    The job calls one method per event (``on_submit``, ``on_start``,
    ``on_tick``, ``on_finish``, ``on_cancel``, ``on_collected``,
    ``on_cleanup``); every decision about the record is taken here. The job
    owns its recorder, which refers back to it weakly (so a finished job is
    freed as soon as nobody holds it).
    """

    def __init__(self, job: RxJob) -> None:
        self._job = weakref.ref(job)
        self._lock = threading.Lock()
        self.recorded = False  # a record was written
        self.cleaned = False  # the job's artifacts were cleaned up (nothing is written any more)
        self._final = False  # the record of the job's outcome was written (progress updates stop)
        self._final_record: JobRecord | None = None
        self._saved: tuple[str, int] | None = None  # (status, tasks done) last written
        self._saved_at = 0.0
        self._description: dict[str, Any] | None = None
        self._warned = False

    def _owner(self) -> RxJob:
        job = self._job()
        assert job is not None, "a recorder outlived its job"
        return job

    def _kept(self, job: RxJob) -> bool:
        """Whether the job has (or, not waiting, is to have) a record on disk."""
        return self.recorded or not job.waiting

    # -------------------------------------------------------- the events

    def on_submit(self) -> None:
        """A non-waiting job was submitted: write its record at once.

        Raises:
            RxJobError: The record cannot be written (e.g. a share_dir that is not the user's own).
        """
        self._save(self._owner(), "queued")

    def ensure_entry(self) -> None:
        """Make sure the job has its entry and record in the store (a job becoming durable).

        Raises:
            RxJobError: The store cannot be written.
        """
        if not self.recorded:
            job = self._owner()
            self._save(job, job.status())

    def on_durable(self) -> None:
        """The job became durable: rewrite its record (it says ``durable`` and counts saved chunks)."""
        job = self._owner()
        self._save_quietly(job, job.status())

    def on_start(self) -> None:
        job = self._owner()
        if not job.waiting:
            self._save_quietly(job, "running")

    def on_tick(self, now: float) -> bool:
        """About once per TICK while the job runs; True if another process asked to cancel it."""
        job = self._owner()
        if self._final or self.cleaned or job.done():
            return False
        if not self.recorded:
            if job.started_at is not None and time.time() - job.started_at >= RECORD_DELAY:
                self._save_quietly(job, job.status())
            return False
        if _store.store_for(job.share_dir).cancel_requested(job.job_id):
            return True
        status, done = job.status(), job.progress()[0]
        saved_status, saved_done = self._saved or ("", -1)
        since = now - self._saved_at
        if status != saved_status or (done != saved_done and since >= TICK * 0.9) or since >= HEARTBEAT:
            self._save_quietly(job, status)
        return False

    def on_finish(self, result: Any = None, exception: BaseException | None = None) -> None:
        """The job ended with ``result`` or ``exception``: called before its Future resolves,
        so whoever that wakes finds the final record."""
        job = self._owner()
        if self._kept(job) or not job.auto_cleanup:
            if exception is not None:
                self._save_quietly(job, "failed", final=True, exception=exception)
            else:
                self._save_quietly(job, "finished", final=True, results=result)

    def on_cancel(self) -> None:
        job = self._owner()
        if job.waiting and job.auto_cleanup:
            # The rx_exec call gets the outcome (RxJobCanceledError, or the KeyboardInterrupt of a
            # Ctrl-C, which never reaches a collect): the record goes now, as for a finished call.
            self.on_collected(cleanup=True, first=True)
        elif self._kept(job) or not job.auto_cleanup:
            self._save_quietly(job, "canceled", final=True)

    def on_collected(self, cleanup: bool, first: bool) -> None:
        """The job's outcome was handed out; ``cleanup``: its artifacts go now (``auto_cleanup``)."""
        job = self._owner()
        if cleanup:
            if self._kept(job):
                self.on_cleanup()
            else:
                # A short waiting call: nothing on disk, and its id was never shown to
                # anyone (so nothing can be tagged with it); skip the cleanup hooks.
                with self._lock:
                    self.cleaned = True
        elif first and self.recorded and not job.waiting:
            # Note that the results were handed out (rx_cleanup_jobs needs no force then).
            self._save_quietly(job, job.status(), final=True, keep_results=True)

    def on_cleanup(self) -> bool:
        """Delete the record and results (and run the cleanup hooks). False if done before."""
        job = self._owner()
        with self._lock:
            if self.cleaned:
                return False
            self.cleaned = True
            recorded = self.recorded
        if recorded:
            try:
                _store.store_for(job.share_dir).remove(job.job_id)
            except Exception as exc:  # noqa: BLE001 - the results are already in hand
                warnings.warn(f"rxspark: could not clean up job {job.job_id}: {exc}", RuntimeWarning, stacklevel=user_stacklevel())
        else:
            _store.run_cleanup_hooks(job.job_id, job.share_dir)
        return True

    # -------------------------------------------------------- writing

    def _build(self, job: RxJob, status: str) -> JobRecord:
        plan = job.plan  # None until the job is laid out for its context
        rng = job.spec.rng
        if self._description is None:
            try:
                description = job.context.describe()
            except Exception as exc:  # noqa: BLE001 - a record without it is still useful
                description = {"context": type(job.context).__name__, "describe_error": repr(exc)}
            self._description = _store.redact(description)
        done, total = job.progress()
        return JobRecord(
            job_id=job.job_id,
            function=job.function_name,
            n_tasks=total,
            chunk_size=plan.chunk_size if plan is not None else None,
            n_chunks=plan.chunk_count if plan is not None else None,
            rng_seed=rng.seed if rng is not None else None,
            rng_kind=rng.kind if rng is not None else None,
            rng_scope=rng.scope if rng is not None else None,
            context=self._description,
            wait=job.waiting,
            auto_cleanup=job.auto_cleanup,
            console_output=job.console_output,
            continue_on_failure=job.continue_on_failure,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=time.time(),
            status=status,
            progress=(done, total),
            output=job.output(),
            owner=dict(_store.owner()),
            results_retrieved=job.results_retrieved(),  # a waiting call hands its results back itself
            durable=job._durability.active,
            chunks_saved=job._durability.saved_count if job._durability.active else None,
            chunks_total=plan.chunk_count if plan is not None and job._durability.active else None,
        )

    def _save(
        self,
        job: RxJob,
        status: str,
        *,
        final: bool = False,
        results: Any = _NOTHING,
        exception: BaseException | None = None,
        keep_results: bool = False,
    ) -> None:
        """Write the record (and, for a non-waiting job, its results or exception)."""
        with self._lock:
            if self.cleaned or (self._final and not final):
                return
            store = _store.store_for(job.share_dir)
            if not self.recorded:
                store.create(job.job_id)
            record = self._build(job, status)
            if keep_results and self._final_record is not None:
                previous = self._final_record
                record.results, record.results_error, record.error = previous.results, previous.results_error, previous.error
            if not job.waiting and results is not _NOTHING and job._durability.complete():
                record.results = CHUNKS  # every chunk is in the store already: read back from there
            elif not job.waiting and results is not _NOTHING:
                try:
                    store.write_pickle(job.job_id, _store.RESULTS, results)
                    record.results = _store.RESULTS
                except Exception as exc:  # noqa: BLE001 - the job still finished; say why there is no file
                    record.results_error = f"{type(exc).__name__}: {exc}"
            if exception is not None:
                record.error = {"type": type(exception).__qualname__, "message": str(exception)}
                if not job.waiting:
                    # Pickling keeps neither __cause__ nor the traceback: store the cause beside it.
                    try:
                        try:
                            store.write_pickle(job.job_id, _store.ERROR, (exception, exception.__cause__))
                        except Exception:  # noqa: BLE001 - an unpicklable cause: keep the error itself
                            store.write_pickle(job.job_id, _store.ERROR, (exception, None))
                        record.results = _store.ERROR
                    except Exception as exc:  # noqa: BLE001
                        record.results_error = f"{type(exc).__name__}: {exc}"
            try:
                store.write_record(job.job_id, record.to_json())
            except FileNotFoundError:
                if not self.recorded:
                    raise
                self.cleaned = True  # someone removed the job's directory: it was cleaned up
                return
            self.recorded = True
            self._final = self._final or final
            if final:
                self._final_record = record
            self._saved = (status, record.progress[0] if record.progress else 0)
            self._saved_at = time.monotonic()

    def _save_quietly(self, job: RxJob, status: str, **kwargs: Any) -> None:
        """``_save`` where a failing store must not fail the job: warn once instead."""
        try:
            self._save(job, status, **kwargs)
        except Exception as exc:  # noqa: BLE001
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"rxspark: could not write the record of job {job.job_id} in {job.share_dir}: {exc}",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
