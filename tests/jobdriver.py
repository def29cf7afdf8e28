"""A driver process for the job tests: runs one job on RxLocalSeq and reports on stdout.

Usage: python jobdriver.py SHARE_DIR wait|nowait N_TASKS SECONDS LOG_PATH AUTO_CLEANUP(0|1)

``nowait`` prints the job id first; both print the results as JSON at the
end ("canceled" if the job was canceled).
"""

from __future__ import annotations

import json
import signal
import sys

import jobtasks

import rxspark
from rxspark import rx_elem_arg, rx_exec


def main(share_dir: str, mode: str, n: str, seconds: str, log_path: str, auto_cleanup: str) -> None:
    # The parent may interrupt this process with SIGINT. A process started from a shell's background
    # job (`cmd &` without job control, nohup) inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: install it, so the test checks rxspark, not how the suite was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    kwargs = dict(
        compute_context=rxspark.RxLocalSeq(share_dir=share_dir),
        task_chunk_size=1,
        auto_cleanup=auto_cleanup == "1",
        log_path=log_path,
        seconds=float(seconds),
    )
    try:
        if mode == "wait":
            results = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(int(n))), **kwargs)
        else:
            job = rx_exec(jobtasks.logged_sleep, rx_elem_arg(range(int(n))), wait=False, **kwargs)
            print(job.job_id, flush=True)
            results = job.result(timeout=300)
    except rxspark.RxJobCanceledError:
        print("canceled", flush=True)
        return
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
