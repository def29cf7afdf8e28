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
