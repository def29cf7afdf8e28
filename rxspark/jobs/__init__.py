"""Jobs: one ``rx_exec`` call as a ``concurrent.futures.Future``, its record, and the job functions.

The modules, each with one role (imports point down this list):

* ``functions``: ``rx_get_job_status`` ... ``rx_cleanup_jobs`` (a job object or an id);
* ``stored``: :class:`StoredJob`, a job of another process, answered from its record;
* ``job``: :class:`RxJob`, a job this process runs (the Future ``rx_exec(wait=False)`` returns);
* ``base``: :class:`BaseJob`, what both kinds of job offer (the results hand-out);
* ``record``: :class:`JobRecord`, the record's one schema, and the ``Recorder`` that decides when it is written;
* ``store``: the job store's files under a ``share_dir`` (file I/O only);
* ``resume``: ``rx_resume_job``, a durable job's missing chunks run again;
* ``detach`` and ``driver``: a job run by a driver process of its own (``detach=True``);
* ``durable``: a durable job's frozen form, lease and chunk checkpoints in its store entry;
* ``monitor``: the one thread that ticks running jobs (progress, heartbeats, cancel requests).
"""

from __future__ import annotations

from .base import BaseJob
from .functions import *  # noqa: F403 - the job functions, as listed in functions.__all__
from .functions import __all__ as _functions
from .job import RxJob
from .record import DONE_STATES, RECORD_FORMAT, STATES, JobRecord
from .resume import rx_resume_job
from .store import JobStore, register_cleanup_hook, store_for, unregister_cleanup_hook
from .stored import StoredJob

__all__ = [
    "DONE_STATES",
    "RECORD_FORMAT",
    "STATES",
    "BaseJob",
    "JobRecord",
    "JobStore",
    "RxJob",
    "StoredJob",
    "register_cleanup_hook",
    "rx_resume_job",
    "store_for",
    "unregister_cleanup_hook",
    *_functions,
]
