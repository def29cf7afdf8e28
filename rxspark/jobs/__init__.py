"""Jobs: one ``rx_exec`` call as a ``concurrent.futures.Future``, its record, and the job functions.

* ``job``: :class:`RxJob`, a job of this process (the Future ``rx_exec(wait=False)`` returns);
* ``stored``: :class:`StoredJob`, a job of another process, read from its record;
* ``functions``: ``rx_get_job_status`` ... ``rx_cleanup_jobs``;
* ``store``: the job store's files under a ``share_dir``;
* ``monitor``: the one thread that refreshes records and polls for cancel requests.
"""

from __future__ import annotations

from .functions import (
    rx_cancel_job,
    rx_cleanup_jobs,
    rx_get_job_output,
    rx_get_job_results,
    rx_get_job_status,
    rx_get_jobs,
    rx_wait_for_job,
)
from .job import DONE_STATES, STATES, RxJob
from .store import JobStore, register_cleanup_hook, store_for, unregister_cleanup_hook
from .stored import StoredJob

__all__ = [
    "DONE_STATES",
    "STATES",
    "JobStore",
    "RxJob",
    "StoredJob",
    "register_cleanup_hook",
    "rx_cancel_job",
    "rx_cleanup_jobs",
    "rx_get_job_output",
    "rx_get_job_results",
    "rx_get_job_status",
    "rx_get_jobs",
    "rx_wait_for_job",
    "store_for",
    "unregister_cleanup_hook",
]
