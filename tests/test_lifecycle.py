"""Lifecycle: close(), interpreter exit and a driver's death never wait on what a task left behind.

Three kinds of leftovers a task may leave in its worker process: a nested
joblib/loky pool (idle workers that time out only after 300 s), a
``multiprocessing.Pool`` kept open, and a non-daemon thread that never ends.
On RxLocalParallel, on RxForeachDoPar over a caller's loky executor and on
RxSpark, closing (or exiting) must return within seconds and leave none of the
worker processes, nor anything they started, alive; RxLocalParallel's close()
also kills a worker whose exit hangs outright (no thread of it can run). A
driver killed with SIGKILL must take its RxLocalParallel workers with it.

Every wait is a poll with a deadline, every child process has a timeout, and
every test kills what it saw started (by pid) if the code under test did not.
Run as a script (``python test_lifecycle.py MODE ...``), this module is the
child driver of the subprocess tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import cloudpickle
import pytest
from reliability.conftest import Child, child_env

import rxspark
from rxspark import RxForeachDoPar, RxLocalParallel, rx_elem_arg, rx_exec

HERE = os.path.abspath(__file__)
# Seconds close() (or an exit) may take at most; rxspark's grace period is 2 s.
LIMIT = 10.0
KINDS = ["nested-loky", "open-pool", "endless-thread"]

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # loky's and Spark's workers cannot import this file


# ---------------------------------------------------------------- processes, through /proc


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended: it only waits for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    found[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):  # ended meanwhile
                continue
    return found


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children ...)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _tree(pids: set[int]) -> set[int]:
    """``pids`` and everything they started that still runs."""
    return set(pids).union(*(_descendants(pid) for pid in pids))


def _wait_dead(pids: set[int], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(pid for pid in pids if _alive(pid))
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: processes {left} still alive {timeout} s later ({_describe(left)})")
        time.sleep(0.05)


def _describe(pids: list[int]) -> str:
    names = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().replace(b"\0", b" ").decode(errors="replace")
            names.append(f"{pid}: {argv[:100]}")
        except OSError:
            continue
    return "; ".join(names)


@contextlib.contextmanager
def _reaped():
    """A set of pids the test adds to; whatever of them (and below them) still runs at the end is killed."""
    pids: set[int] = set()
    try:
        yield pids
    finally:
        for pid in _tree(pids):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _returns_within(call, limit: float, what: str) -> float:
    """Run ``call`` in a thread; its duration, or AssertionError if it did not return within ``limit`` s.

    A thread, so that a hanging close() fails the test instead of hanging it
    (the test then kills the processes, which lets the thread end).
    """
    began = time.monotonic()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"test-{what}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise AssertionError(f"{what} did not return within {limit} s")
    if errors:
        raise errors[0]
    return time.monotonic() - began


# ---------------------------------------------------------------- the tasks (run in worker processes)


def _left_behind() -> tuple[int, list[int]]:
    return os.getpid(), _descendants(os.getpid())


def nested_loky(i: int) -> tuple[int, list[int]]:
    """joblib's loky backend inside the worker: its idle workers would live on for 300 s."""
    from joblib import Parallel, delayed

    assert sum(Parallel(n_jobs=2, backend="loky")(delayed(abs)(j) for j in range(4))) == 6
    return _left_behind()


def open_pool(i: int) -> tuple[int, list[int]]:
    """A multiprocessing.Pool never closed, kept alive for the worker's life (as in a module global)."""
    import multiprocessing

    pool = multiprocessing.Pool(2)
    assert pool.map(abs, range(-2, 2)) == [2, 1, 0, 1]
    sys.__dict__.setdefault("_rxspark_test_pools", []).append(pool)
    return _left_behind()


def endless_thread(i: int) -> tuple[int, list[int]]:
    """A non-daemon thread that never ends: an exit joins it forever."""
    threading.Thread(target=threading.Event().wait, name="left-behind", daemon=False).start()
    return _left_behind()


def stuck_exit(i: int) -> tuple[int, list[int]]:
    """An exit hook that never returns and holds the GIL (a C library stuck at exit): no thread of the worker runs."""
    import ctypes
    import multiprocessing.util

    # Higher than any priority rxspark's reaper uses: it runs first, so the reaper never even hears of the exit.
    multiprocessing.util.Finalize(None, ctypes.PyDLL(None).sleep, args=(3600,), exitpriority=sys.maxsize)
    return _left_behind()


TASKS = {"nested-loky": nested_loky, "open-pool": open_pool, "endless-thread": endless_thread, "stuck-exit": stuck_exit}


def _leave(kind: str, cc: rxspark.ComputeContext) -> set[int]:
    """Run ``kind``'s task twice, one chunk each; the worker processes and what they started."""
    out = rx_exec(TASKS[kind], rx_elem_arg(range(2)), task_chunk_size=1, compute_context=cc)
    pids = {worker for worker, _ in out}.union(*(set(below) for _, below in out))
    if kind in ("nested-loky", "open-pool"):
        assert any(below for _, below in out), out  # the task did leave processes behind
    return _tree(pids)


def hold(i: int, marker_dir: str, limit: float = 120.0) -> int:
    """Say which process runs it (a marker file), then run ``limit`` seconds at most."""
    with open(os.path.join(marker_dir, f"running.{os.getpid()}"), "w"):
        pass
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return i


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("kind", KINDS)
def test_rxlocalparallel_close_ends_what_tasks_left_behind(kind):
    cc = RxLocalParallel(2)
    with _reaped() as pids:
        pids |= _leave(kind, cc)
        pids |= _tree(pids)  # what the leftovers started since
        seconds = _returns_within(cc.close, LIMIT, "RxLocalParallel.close()")
        print(f"{kind}: RxLocalParallel.close() took {seconds:.2f} s")
        _wait_dead(pids, 5.0, "after RxLocalParallel.close()")


def test_rxlocalparallel_close_kills_workers_whose_exit_hangs_outright():
    """The worker's own reaper cannot act here: close() itself kills what did not exit in time."""
    cc = RxLocalParallel(2)
    with _reaped() as pids:
        pids |= _leave("stuck-exit", cc)
        seconds = _returns_within(cc.close, LIMIT, "RxLocalParallel.close()")
        print(f"stuck-exit: RxLocalParallel.close() took {seconds:.2f} s")
        _wait_dead(pids, 5.0, "after RxLocalParallel.close()")


@pytest.mark.parametrize("kind", KINDS)
def test_rxforeachdopar_neither_shuts_down_nor_hangs_the_callers_loky_executor(kind):
    import loky

    executor = loky.ProcessPoolExecutor(2)
    cc = RxForeachDoPar(executor)
    with _reaped() as pids:
        pids |= _leave(kind, cc)
        _returns_within(cc.close, LIMIT, "RxForeachDoPar.close()")
        assert executor.submit(abs, -3).result(timeout=60) == 3  # still the caller's, still running
        pids |= _tree(pids)
        # The caller's own shutdown does not wait on what rxspark's tasks left in its workers either.
        seconds = _returns_within(lambda: executor.shutdown(wait=True), LIMIT, "the caller's executor.shutdown()")
        print(f"{kind}: loky executor.shutdown() after RxForeachDoPar took {seconds:.2f} s")
        _wait_dead(pids, 5.0, "after the caller's executor.shutdown()")


def test_interpreter_exit_with_an_open_rxlocalparallel_ends_what_tasks_left_behind():
    child = Child([HERE, "exit"], env=child_env())
    with _reaped() as pids:
        try:
            pids |= set(child.expect("LEFT", timeout=180)["pids"])
            began = time.monotonic()
            child.wait(LIMIT + 30)  # bounded: a hang fails here, then everything is killed
            seconds = time.monotonic() - began
            print(f"interpreter exit took {seconds:.2f} s")
            assert child.proc.returncode == 0, child.output[-3000:]
            assert seconds < LIMIT, f"the exit took {seconds:.1f} s"
            _wait_dead(pids, 5.0, "after the driver's exit")
        finally:
            child.kill()


def test_a_killed_driver_takes_its_rxlocalparallel_workers_with_it(tmp_path):
    child = Child([HERE, "orphan", str(tmp_path)], env=child_env())
    with _reaped() as pids:
        try:
            workers = child.expect("RUNNING", timeout=180)["pids"]
            pids |= _tree({child.proc.pid})  # the workers, loky's resource tracker, anything below
            assert set(workers) <= pids
            child.proc.send_signal(signal.SIGKILL)
            began = time.monotonic()
            child.wait(30)
            pids.discard(child.proc.pid)
            _wait_dead(pids, LIMIT, "after the driver was killed")
            print(f"{len(pids)} processes of the killed driver ended within {time.monotonic() - began:.2f} s")
        finally:
            child.kill()


def test_a_worker_whose_driver_died_before_its_reaper_started_ends_at_once():
    """The worker was re-parented before its reaper ran: the reaper watches the driver's pid, not the new parent."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(60)  # its pid belongs to no process any more
    code = f"from rxspark import _reaper; _reaper.install(driver={gone.pid}); import time; time.sleep(60)"
    began = time.monotonic()
    worker = subprocess.run([sys.executable, "-c", code], timeout=LIMIT + 30, env=child_env())
    assert worker.returncode == -signal.SIGKILL
    assert time.monotonic() - began < LIMIT


@pytest.mark.spark
@pytest.mark.slow
def test_rxspark_close_ends_what_tasks_left_behind():
    """A fresh local[2] session of its own in a child driver: this close stops the session.

    Not the shared session: what the tasks leave would live in its Python
    workers until the end of the test session.
    """
    child = Child([HERE, "spark"], env=child_env())
    with _reaped() as pids:
        try:
            for kind in KINDS:
                left = child.expect("LEFT", timeout=240)
                assert left["kind"] == kind
                pids |= set(left["pids"])
            closed = child.expect("CLOSED", timeout=LIMIT + 60)
            print(f"RxSpark.close() took {closed['seconds']:.2f} s")
            assert closed["seconds"] < LIMIT
            pids |= set(closed["pids"])
            _wait_dead(pids, 5.0, "after RxSpark.close()")
            assert child.wait(60) == 0, child.output[-3000:]
        finally:
            child.kill()


# ---------------------------------------------------------------- the child drivers


def _say(tag: str, **info) -> None:
    print(tag, json.dumps(info), flush=True)


def _exit_child() -> None:
    """Leave all three kinds in an RxLocalParallel's workers, then exit without close().

    Says every process below this one first: the workers, what they started, loky's resource tracker.
    """
    cc = RxLocalParallel(2)
    for kind in KINDS:
        _leave(kind, cc)
    _say("LEFT", pids=sorted(_descendants(os.getpid())))


def _orphan_child(marker_dir: str) -> None:
    """Start a non-waiting job on RxLocalParallel(2); say which processes run it, then wait to be killed."""
    cc = RxLocalParallel(2)
    job = rx_exec(hold, rx_elem_arg(range(2)), marker_dir=marker_dir, task_chunk_size=1, compute_context=cc, wait=False)
    deadline = time.monotonic() + 120
    while len(os.listdir(marker_dir)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    _say("RUNNING", pids=sorted(int(name.split(".")[1]) for name in os.listdir(marker_dir)))
    job.wait_done(120)  # the parent kills this process long before


def _spark_child() -> None:
    """On a fresh RxSpark(local[2]): leave all three kinds in its Python workers, then close it."""
    from rxspark import RxSpark

    cc = RxSpark(master="local[2]", progress=False).connect()
    workers: set[int] = set()
    for kind in KINDS:
        left = _leave(kind, cc)
        workers |= left
        _say("LEFT", kind=kind, pids=sorted(left))
    # The whole tree under PySpark's daemon (the workers' parent), as it is before the close.
    parents = _parents()
    daemons = {parents.get(pid) for pid in workers} - {None, os.getpid(), 1}
    pids = _tree(workers | daemons)
    began = time.monotonic()
    cc.close()
    _say("CLOSED", seconds=time.monotonic() - began, pids=sorted(pids))


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    {"exit": _exit_child, "orphan": _orphan_child, "spark": _spark_child}[mode](*rest)
