"""The one job monitor of a process: a daemon thread that ticks the jobs it watches about once per TICK.

Jobs of this process tick to refresh their record and look for cancel
requests from other processes; stored jobs of other processes tick to re-read
their record (so ``concurrent.futures.wait`` on them returns). What a tick
does is the job's business: the monitor only calls ``job._tick(now)``.
"""

from __future__ import annotations

import threading
import time
import warnings
import weakref
from typing import Any

# The monitor's period: progress refreshes and cancel-request checks happen at most this often.
TICK = 1.0


class _Monitor:
    """One daemon thread per process that calls ``_tick(now)`` on watched jobs about once per TICK.

    Adding a job does not wake the thread (that would cost every short waiting
    call a thread switch): it keeps ticking while jobs come and go, and only
    after ``IDLE_SLEEP`` seconds without any does it block until the next
    ``add``. Watched objects are held weakly; a running job is kept alive by
    its own thread anyway.
    """

    IDLE_SLEEP = 30.0

    def __init__(self) -> None:
        self._watched: weakref.WeakSet[Any] = weakref.WeakSet()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sleeping = False

    def add(self, job: Any) -> None:
        with self._cond:
            self._watched.add(job)
            if self._thread is None or not self._thread.is_alive():  # first use, or after fork
                self._thread = threading.Thread(target=self._loop, name="rxspark-job-monitor", daemon=True)
                self._thread.start()
            elif self._sleeping:
                self._cond.notify()

    def discard(self, job: Any) -> None:
        with self._cond:
            self._watched.discard(job)

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                if self._watched:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.IDLE_SLEEP:
                    self._sleeping = True
                    while not self._watched:
                        self._cond.wait()
                    self._sleeping = False
                self._cond.wait(TICK)
            self._tick_all()

    def _tick_all(self) -> None:
        with self._cond:
            watched = list(self._watched)
        now = time.monotonic()
        for job in watched:
            try:
                job._tick(now)
            except Exception as exc:  # noqa: BLE001 - never let one job stop the monitor
                warnings.warn(f"rxspark job monitor: {job!r}: {exc!r}", RuntimeWarning, stacklevel=1)


monitor = _Monitor()
