"""Progress bars, reprs and cancels as an interactive user meets them (issue 17); the notebook itself is test_notebook.py.

A job's bar is made where the job is submitted and keeps its final line; every
context takes the same ``progress`` option; a Spark job group is canceled
once; ``RxSpark`` says where it runs; ``rx_exec(..., wait=False)`` on a fresh
``RxSpark`` returns before Spark has started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest
import tasks

import rxspark
from rxspark import RxForeachDoPar, RxLocalParallel, RxLocalSeq, RxSpark, rx_elem_arg, rx_exec
from rxspark.jobs.base import JobTable

pytest.importorskip("tqdm")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_for(event_path: str, x: int) -> int:
    while not os.path.exists(event_path):
        time.sleep(0.01)
    return x


def final_line(err: str) -> str:
    return err.replace("\r", "\n").strip().splitlines()[-1]


@pytest.mark.parametrize(
    "make",
    [
        lambda: RxLocalSeq(progress=True),
        lambda: RxLocalParallel(2, progress=True),
        lambda: RxForeachDoPar(ThreadPoolExecutor(2), progress=True),
    ],
    ids=["seq", "localpar", "dopar"],
)
def test_local_contexts_show_a_bar_that_keeps_its_final_line(make, capsys):
    with make() as cc:
        assert rx_exec(tasks.identity, rx_elem_arg(range(6)), task_chunk_size=2, compute_context=cc) == list(range(6))
    last = final_line(capsys.readouterr().err)
    assert last.startswith("rxspark identity: 100%") and "6/6 [" in last, last
    assert "task/s" in last or "s/task" in last, last


def test_the_default_context_and_progress_false_show_no_bar(capsys):
    rx_exec(tasks.identity, rx_elem_arg(range(4)), compute_context=RxLocalSeq())
    with RxLocalParallel(2, progress=False) as cc:
        rx_exec(tasks.identity, rx_elem_arg(range(4)), compute_context=cc)
    assert "rxspark identity" not in capsys.readouterr().err


def test_progress_option_is_checked():
    with pytest.raises(rxspark.RxArgumentTypeError, match="progress"):
        RxLocalParallel(2, progress="yes")


def test_a_background_job_s_bar_is_made_by_the_submitting_call(tmp_path, capsys):
    go = str(tmp_path / "go")
    with RxForeachDoPar(ThreadPoolExecutor(2), progress=True) as cc:
        job = rx_exec(wait_for, go, rx_elem_arg(range(4)), task_chunk_size=1, compute_context=cc, wait=False)
        # Before any task can finish, the bar is already there: made in this thread, not the job's.
        assert "rxspark wait_for:   0%" in capsys.readouterr().err
        assert job.status() in ("queued", "running")
        open(go, "w").close()
        assert job.result() == [0, 1, 2, 3]
    assert "4/4 [" in final_line(capsys.readouterr().err)


def test_a_canceled_job_s_bar_says_so(tmp_path, capsys):
    with RxForeachDoPar(ThreadPoolExecutor(2), progress=True) as cc:
        job = rx_exec(wait_for, str(tmp_path / "never"), rx_elem_arg(range(4)), compute_context=cc, wait=False)
        job.cancel()
        open(tmp_path / "never", "w").close()  # let the worker threads go
    assert "rxspark wait_for (canceled)" in capsys.readouterr().err


def test_executor_batches_get_no_bar_of_their_own(capsys):
    with rxspark.RxExecutor(compute_context=RxLocalSeq(progress=True)) as ex:
        assert list(ex.map(tasks.identity, range(5))) == list(range(5))
    assert "rxspark" not in capsys.readouterr().err


def test_a_job_failing_in_the_context_raises_without_rxspark_s_inner_frames():
    broken = ThreadPoolExecutor(1)
    broken.shutdown()
    with pytest.raises(rxspark.RxJobError) as info:
        rx_exec(tasks.identity, rx_elem_arg(range(2)), compute_context=RxForeachDoPar(broken))
    files = [frame.filename for frame in traceback.extract_tb(info.value.__traceback__)]
    assert not any(os.sep + "contexts" + os.sep in f or f.endswith("job.py") for f in files), files


def test_job_table_is_a_dict_with_an_html_table():
    job = rx_exec(tasks.identity, rx_elem_arg(range(3)), wait=False)
    job.result()
    table = JobTable({job.job_id: job})
    assert table == {job.job_id: job} and isinstance(table, dict)
    html = table._repr_html_()
    assert job.job_id in html and "identity" in html and "3/3" in html and "finished" in html
    assert "RxLocalSeq" in RxLocalSeq()._repr_html_()


# ---------------------------------------------------------------- Spark


@pytest.mark.spark
def test_spark_repr_html_and_console_progress(spark_local):
    cc = RxSpark(spark=spark_local.session, progress=False)
    master = spark_local.session.sparkContext.master
    assert repr(cc) == f"RxSpark(master={master!r}, attached, wait=True)"
    assert master.startswith("local[2")
    html = cc._repr_html_()
    assert "Spark UI" in html and spark_local.session.sparkContext.uiWebUrl in html
    # A session rxspark started has Spark's own console bar off: rxspark's bar is the only one.
    assert spark_local.session.sparkContext._jsc.sc().progressBar().isDefined() is False


@pytest.mark.spark
@pytest.mark.slow
def test_wait_false_on_a_fresh_rxspark_returns_before_spark_starts_and_a_cancel_is_sent_once(tmp_path):
    code = textwrap.dedent(
        """
        import sys, time, rxspark
        from rxspark import rx_exec, rx_elem_arg
        rxspark.rx_options(share_dir=sys.argv[1])
        star = rxspark.RxSpark(progress=False).parallelism()  # local[*], told before any JVM runs
        cc = rxspark.RxSpark(master="local[2]", progress=False)
        t = time.monotonic()
        job = rx_exec(abs, rx_elem_arg([-1, -2, -3]), compute_context=cc, wait=False)
        print("RETURNED", round(time.monotonic() - t, 2), job.status(), cc.parallelism())
        print("RESULT", job.result(), cc._engine.parallelism())
        # A canceled job's group is canceled once: a second cancel logs Spark's "Failed to cancel job group".
        sc = cc.session.sparkContext
        sc.setLogLevel("WARN")
        job = rx_exec(time.sleep, rx_elem_arg([60, 60]), compute_context=cc, wait=False)
        while not sc.statusTracker().getActiveJobsIds():
            time.sleep(0.05)
        job.cancel()
        t = time.monotonic()
        while sc.statusTracker().getActiveJobsIds():
            time.sleep(0.05)
        job._thread.join(10)
        print("CANCELED", job.status(), round(time.monotonic() - t, 1), job._thread.is_alive())
        time.sleep(1)  # Spark's log line, if any, is written by its event loop
        sc.setLogLevel("ERROR")
        cc.close()
        cc = rxspark.RxSpark(master="local[*]", progress=False).connect()
        print("STAR", star, cc.parallelism())
        cc.close()
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "jobs")], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.strip()}
    seconds, status, predicted = lines["RETURNED"]
    assert float(seconds) < 3 and status == "queued", out.stdout
    assert lines["RESULT"] == ["[1,", "2,", "3]", predicted] and predicted == "2", out.stdout
    assert lines["CANCELED"][0] == "canceled" and float(lines["CANCELED"][1]) < 10, out.stdout
    assert lines["CANCELED"][2] == "False", out.stdout
    assert "Failed to cancel job group" not in out.stderr, out.stderr[-3000:]
    star, actual = lines["STAR"]
    assert star == actual, out.stdout  # the parallelism told before the start is Spark's own


def test_wait_false_without_java_fails_through_the_job(tmp_path):
    code = textwrap.dedent(
        """
        import sys, time, rxspark
        from rxspark import rx_exec, rx_elem_arg
        rxspark.rx_options(share_dir=sys.argv[1])
        t = time.monotonic()
        job = rx_exec(abs, rx_elem_arg([-1, -2]), compute_context=rxspark.RxSpark(master="local[1]"), wait=False)
        print("RETURNED", round(time.monotonic() - t, 2))
        try:
            job.result()
        except rxspark.RxSparkUnavailableError as e:
            print("ERROR", job.status(), e)
        """
    )
    fake_home = tmp_path / "jdk"  # a Java too old for Spark 4, as in test_spark.py
    (fake_home / "bin").mkdir(parents=True)
    (fake_home / "bin" / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    (fake_home / "bin" / "java").chmod(0o755)
    env = dict(os.environ, JAVA_HOME=str(fake_home))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "jobs")], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert "RETURNED" in out.stdout and "ERROR failed" in out.stdout, (out.stdout, out.stderr[-2000:])
    assert "Java 17" in out.stdout


def test_parallelism_of_a_local_master_is_told_without_starting_spark():
    from rxspark.contexts.spark import session

    code = textwrap.dedent(
        """
        import sys, rxspark
        print(rxspark.RxSpark(master="local[3]").parallelism(),
              rxspark.RxSpark(master="local-cluster[2,2,1024]").parallelism(),
              rxspark.RxSpark(master="local[2]", extra_spark_config={"spark.default.parallelism": 7}).parallelism(),
              "pyspark" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.split() == ["3", "4", "7", "False"], (out.stdout, out.stderr[-2000:])
    assert session.java_cores() >= 1
