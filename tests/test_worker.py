"""run_chunk details that the conformance suite does not reach: output capture in threads."""

from __future__ import annotations

import io
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import tasks

from rxspark import RxForeachDoPar, rx_elem_arg, rx_exec

RELEASE, STARTED = threading.Event(), threading.Event()


def wait_for_release():
    """Runs in a thread of this process (ThreadPoolExecutor): the events are shared by reference."""
    STARTED.set()
    RELEASE.wait(30)
    print("slow done")
    return 1


def test_output_capture_survives_stdout_replaced_while_a_chunk_runs(capsys):
    context = RxForeachDoPar(ThreadPoolExecutor(2))
    slow = rx_exec(wait_for_release, times_to_run=1, compute_context=context, wait=False)
    assert STARTED.wait(30)
    original = sys.stdout
    sys.stdout = replacement = io.StringIO()  # what pytest or redirect_stdout do between tests
    try:
        job = rx_exec(tasks.printer, rx_elem_arg([7]), compute_context=context, wait=False)
        assert job.result(timeout=30) == [7]
    finally:
        RELEASE.set()
        slow.result(timeout=30)
        sys.stdout = original
    assert job.output() == "[task 0] out 7\n[task 0] err 7\n"
    assert slow.output() == "[task 0] slow done\n"
    assert replacement.getvalue() == ""  # task output never leaks into the process's streams
    assert sys.stdout is original


RACE = """
import sys, threading
from rxspark.worker.capture import Capture
stop = threading.Event()
def churn():  # a job thread: every chunk installs and removes the stand-ins
    while not stop.is_set():
        with Capture():
            pass
thread = threading.Thread(target=churn)
thread.start()
try:
    for _ in range(20000):
        print("main thread prints while jobs run")
finally:
    stop.set()
    thread.join()
"""


def test_printing_while_a_job_thread_swaps_the_streams_never_crashes():
    """print() holds sys.stdout by a borrowed reference (CPython < 3.13): before the
    stand-ins were kept alive, swapping one out in a job thread freed it under the
    main thread's print (AttributeError on 'original', then a segfault, in 0.3 s)."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("main thread prints while jobs run") == 20000
