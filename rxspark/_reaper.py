"""Worker-side lifecycle: a local worker process neither hangs on what its tasks left nor outlives its driver.

:func:`install` runs once in each worker process of a local process pool that
runs rxspark's chunks: RxLocalParallel's loky workers (from the pool's
initializer) and the workers of a caller's ``ProcessPoolExecutor`` or loky
executor (with their first chunk). It starts one daemon thread that:

* bounds the worker's exit. A worker's exit joins what its tasks left behind:
  a nested process pool's idle workers (joblib's loky workers idle for 300 s),
  a non-daemon thread that never ends. From the moment the exit begins (the
  pool's shutdown), the worker gets :data:`GRACE_SECONDS` to end by itself;
  then its whole process tree is killed, as loky's
  ``shutdown(kill_workers=True)`` does, with loky's own ``kill_process_tree``.
  So a pool's ``shutdown(wait=True)``, and with it ``close()`` and the driver's
  interpreter exit, never wait longer on leftovers.
* watches the parent (POSIX). When the driver dies, its orphaned worker is
  re-parented and ``os.getppid()`` changes: the worker kills its process tree.
  Not ``prctl(PR_SET_PDEATHSIG)``: that fires when the parent *thread* ends,
  and loky starts workers from whichever driver thread needs one (a job's
  thread, or the executor's manager thread), which ends long before the driver.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import signal
import sys
import threading
import time

__all__ = ["GRACE_SECONDS", "install"]

# Seconds a worker's exit may take before its process tree is killed.
GRACE_SECONDS = 2.0
# How often the watch looks at the parent: a dead driver's workers end within about this.
_WATCH_SECONDS = 0.5
# Run first among the exit hooks of a multiprocessing child (higher runs earlier; Pool's is 15),
# before it joins the child processes and threads its tasks left.
_EXIT_PRIORITY = 1_000_000

# The pid of the process it was installed in: a child forked from it has no reaper thread, and may install its own.
_installed_in: int | None = None


class _ThisProcess:
    """This process as loky's ``kill_process_tree`` takes it (a process object: pid, kill, join)."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def kill(self) -> None:  # loky's fallback when it cannot list the descendants
        os.kill(os.getpid(), signal.SIGKILL)

    def join(self) -> None:  # never reached: the process killed itself just before
        pass


class _Reaper(threading.Thread):
    """The daemon thread of :func:`install`: the parent watch, then the exit deadline."""

    def __init__(self, parent: int | None, grace: float) -> None:
        super().__init__(name="rxspark-reaper", daemon=True)
        # Imported now, not while the process exits (a thread stuck in an import would hold its lock).
        from loky.backend.utils import kill_process_tree

        self._kill_process_tree = kill_process_tree
        self.parent = parent
        self.grace = grace
        self.exiting = threading.Event()

    def run(self) -> None:
        if self.parent is None:
            self.exiting.wait()
        else:
            while not self.exiting.wait(_WATCH_SECONDS):
                if os.getppid() != self.parent:  # the driver died: nobody will ever use this worker
                    self.kill_tree()
        # The exit began. A daemon thread does not keep the process alive: one whose exit ends
        # within the grace period never gets past this wait.
        time.sleep(self.grace)
        self.kill_tree()

    def kill_tree(self) -> None:
        """Kill every process below this one (the deepest first), then this one."""
        for stream in (sys.stdout, sys.stderr):  # what the tasks printed is not lost
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(Exception):
            self._kill_process_tree(_ThisProcess())
        os._exit(1)  # only if loky could not kill this process


def install(driver: int | None = None, grace: float = GRACE_SECONDS) -> None:
    """Bound this worker process's exit, and end it with its parent (once per process).

    Args:
        driver: The driver's pid, when the caller knows the worker is its child
            (loky's start method): the parent to watch. Then a worker whose
            driver died while it started (re-parented already) ends too.
            None: the parent the worker has now.
        grace: Seconds the exit may take before the process tree is killed.
    """
    global _installed_in
    if _installed_in == os.getpid():
        return
    _installed_in = os.getpid()
    parent = None
    if os.name == "posix":  # Windows does not re-parent orphans: there getppid() tells nothing
        parent = driver if driver is not None else os.getppid()
    reaper = _Reaper(parent, grace)
    reaper.start()
    # multiprocessing runs these when the worker's process function returns, before it joins the
    # child processes and non-daemon threads the tasks left (see the module docstring).
    multiprocessing.util.Finalize(None, reaper.exiting.set, exitpriority=_EXIT_PRIORITY)
