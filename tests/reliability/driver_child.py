"""A Spark driver process for the reliability tests: python driver_child.py SHARE_DIR LOG_DIR.

It runs one dedicated local[2] session with secret-looking settings and a
small ``spark.driver.maxResultSize``, and reports each phase on stdout as
``TAG {json}``:

1. RECORDED: a non-waiting job whose record is kept (for the redaction checks);
   RETRIED: a job whose Python workers crash once (retried on a local master too);
2. MAXRESULT: results larger than spark.driver.maxResultSize (the error);
3. READY: a blocking rx_exec of endless tasks runs (the parent now sends
   SIGINT); INTERRUPTED: what Spark's status tracker says once the
   KeyboardInterrupt arrived; NEXT: a job run afterwards. Then the
   KeyboardInterrupt is raised again, so the process ends with it.

The umask is 0 throughout: the job store must be private whatever the umask.
The parent may put a copy of rxspark under a path with spaces first on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

# The parent interrupts this process with SIGINT. A process started from a shell's background job
# (`cmd &` without job control, nohup) inherits SIGINT ignored, and Python then installs no
# KeyboardInterrupt handler: install it, so the test checks rxspark, not how the suite was started.
signal.signal(signal.SIGINT, signal.default_int_handler)

os.umask(0)

import cloudpickle  # noqa: E402

import rxspark  # noqa: E402
from reliability import faults  # noqa: E402
from rxspark import RxSpark, rx_elem_arg, rx_exec  # noqa: E402
from rxspark.jobs import job as rx_jobs  # noqa: E402

cloudpickle.register_pickle_by_value(faults)

SECRETS = {"spark.authenticate.secret": "hunter2", "spark.hadoop.fs.s3a.secret.key": "s3a-x-41f7"}
MAX_RESULT = "8m"


def say(tag: str, **info) -> None:
    print(tag, json.dumps(info), flush=True)


def main(share_dir: str, log_dir: str) -> None:
    cc = RxSpark(
        master="local[2]", progress=False, share_dir=share_dir,
        extra_spark_config={**SECRETS, "spark.driver.maxResultSize": MAX_RESULT},
    ).connect()
    sc = cc.spark_context

    job = rx_exec(faults.echo, rx_elem_arg(range(4)), compute_context=cc, wait=False, auto_cleanup=False)
    say("RECORDED", job_id=job.job_id, results=job.result(timeout=120), rxspark=rxspark.__file__)

    # Spark runs each task once on local[N] whatever spark.task.maxFailures says; rxspark asks for retries.
    crashes = os.path.join(log_dir, "crashes")
    os.mkdir(crashes)
    try:
        out = rx_exec(faults.crash_first_attempt, rx_elem_arg(range(4)), marker_dir=crashes, every=2, how="segv",
                      task_chunk_size=1, rng_seed=3, compute_context=cc)
        say("RETRIED", master=sc.master, results=out, crashed=sorted(os.listdir(crashes)))
    except rxspark.RxError as exc:
        say("RETRIED", master=sc.master, error=str(exc))

    try:
        rx_exec(faults.big_blob, rx_elem_arg(range(6)), nbytes=3_000_000, task_chunk_size=1, compute_context=cc)
        say("MAXRESULT", type=None)
    except rxspark.RxError as exc:
        say("MAXRESULT", type=type(exc).__name__, message=str(exc))

    def announce() -> None:
        """The main thread is blocked in rx_exec: say when both endless tasks run."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            starts = faults.events(log_dir, "start")
            running = [j for j in list(rx_jobs._live.values()) if j.function_name == "forever"]
            if len(starts) >= 2 and running:
                group = running[0].job_id
                say("READY", job_id=group, spark_jobs=list(sc.statusTracker().getJobIdsForGroup(group)),
                    pids=[e["pid"] for e in starts])
                return
            time.sleep(0.05)

    threading.Thread(target=announce, daemon=True).start()
    try:
        rx_exec(faults.forever, rx_elem_arg(range(6)), log_dir=log_dir, task_chunk_size=1, compute_context=cc)
        say("NOT-INTERRUPTED")
    except KeyboardInterrupt:
        began = time.monotonic()
        tracker = sc.statusTracker()
        while tracker.getActiveJobsIds() and time.monotonic() - began < 30:
            time.sleep(0.05)
        (job,) = [j for j in list(rx_jobs._live.values()) if j.function_name == "forever"]
        job_id = job.job_id
        group_jobs = list(tracker.getJobIdsForGroup(job_id))
        say(
            "INTERRUPTED",
            job_id=job_id,
            active=list(tracker.getActiveJobsIds()),
            group_jobs=group_jobs,
            group_status=[str(tracker.getJobInfo(j).status) for j in group_jobs],
            job_status=job.status(),  # the job object keeps its final state
            # its record went when the call ended (the outcome was handed out): the id reads missing
            record_status=rxspark.rx_get_job_status(job_id, share_dir=share_dir),
            seconds=round(time.monotonic() - began, 2),
        )
        say("NEXT", results=rx_exec(faults.echo, rx_elem_arg(range(2)), task_chunk_size=1, compute_context=cc))
        raise


if __name__ == "__main__":
    main(*sys.argv[1:])
