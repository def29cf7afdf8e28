"""The ``rxspark`` command: inspect and manage jobs, and check the installation.

::

    rxspark jobs [--share-dir DIR] [--state STATE]
    rxspark job status|output|results|cancel|cleanup JOB_ID [--share-dir DIR] [--force]
    rxspark shares [--share-dir DIR] [--delete PATH ...]
    rxspark doctor [--no-spark]
    rxspark pack [--output PATH] [--python-prefix DIR] [--prefix VENV]

``rxspark job cancel`` on a job of another process records a cancel request;
that process cancels the job within about a second (its job monitor polls
for requests), and the command waits up to ``--timeout`` seconds (default 5)
to report it. A job whose process is gone is reported "undetermined" and
can only be cleaned up.

A job's record goes once its outcome was handed out, when its
``auto_cleanup`` is on (the default): a blocking job's when its call ends
(Ctrl-C included), a non-waiting job's when its results are collected
(``rxspark job results`` included, after printing them in full; ``--keep``
keeps it). From then on its id reads ``missing``.

Exit codes: 0 success, 1 failure (missing job, failed check ...), 2 bad usage,
141 when the reader of the output went away (``rxspark job results ID | head``),
as for Unix tools stopped by SIGPIPE.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import pprint
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._java import MIN_JAVA
from ._java import probe as probe_java
from .errors import RxError, RxJobCanceledError

# ---------------------------------------------------------------- jobs


def _share_dir(args: argparse.Namespace) -> str:
    if args.share_dir:
        return os.path.expanduser(args.share_dir)
    from .options import get_option

    return os.path.expanduser(get_option("share_dir"))


def _when(stamp: Any) -> str:
    if not isinstance(stamp, (int, float)):
        return "-"
    return _dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from .jobs import StoredJob, rx_get_jobs

    states = [s.strip() for value in args.state or [] for s in value.split(",") if s.strip()] or None
    share_dir = _share_dir(args)
    jobs = rx_get_jobs(states=states, share_dir=share_dir)
    if not jobs:
        print(f"no jobs in {share_dir}" + (f" with state {', '.join(states)}" if states else ""))
        return 0
    rows = [["JOB ID", "STATUS", "TASKS", "CHUNKS SAVED", "FUNCTION", "CONTEXT", "SUBMITTED", "OWNER"]]
    resumable = []
    for job in jobs.values():
        status = job.status()
        done, total = job.progress()
        saved = "-"
        if isinstance(job, StoredJob):
            record = job.record
            context, who = record.context_name, f"{record.owner_pid}@{record.owner_host}"
            chunks = job.chunks_saved()
            if chunks is not None:
                saved = f"{chunks[0]}/{chunks[1]}"
                if status == "undetermined":
                    resumable.append(job.resume_command())
        else:
            context, who = type(job.context).__name__, f"{os.getpid()}"
        rows.append([job.job_id, status, f"{done}/{total}", saved, job.function_name, context, _when(job.submitted_at), who])
    print(_table(rows))
    for command in resumable:
        print(f"resume with: {command}")
    return 0


def _missing_note(job_id: str, share_dir: str) -> str:
    return (
        f"rxspark: no record of job {job_id} in {share_dir}: it never ran with this job store, or its record was "
        "removed once its outcome was handed out (auto_cleanup) or by `rxspark job cleanup`"
    )


def _hand_out(args: argparse.Namespace, value: Any) -> None:
    """Print a job's results, or write them to ``--save FILE`` (cloudpickle)."""
    if args.save:
        import cloudpickle

        with open(args.save, "wb") as f:
            cloudpickle.dump(value, f)
        print(f"results of {args.job_id} saved to {args.save}")
    else:
        pprint.pprint(value)


def _results(args: argparse.Namespace, share_dir: str) -> int:
    """Print (or save) a job's outcome; only then, if the job's auto_cleanup says so (and not --keep), remove its record."""
    from .jobs.functions import _require

    job = _require(args.job_id, None, share_dir)
    timeout = None if args.wait else (args.timeout if args.timeout is not None else 0.0)
    failed: BaseException | None = None
    try:
        value = job.collect(timeout=timeout, auto_cleanup=False)
    except TimeoutError:
        print(f"job {args.job_id} is still {job.status()}; try again later, or pass --wait / --timeout SECONDS", file=sys.stderr)
        return 1
    except RxJobCanceledError as exc:
        failed = exc
        print(f"rxspark: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the job's own failure is its outcome: reported, not a crash
        failed = exc
        print(f"rxspark: job {args.job_id} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    if failed is None:
        _hand_out(args, value)
        sys.stdout.flush()  # a reader that went away (| head) stops us here, before the record goes
    if job.auto_cleanup and not args.keep:
        job.cleanup()
        print(f"rxspark: job {args.job_id} collected; its record was removed (auto_cleanup; --keep keeps it)", file=sys.stderr)
    return 0 if failed is None else 1


def _cancel(args: argparse.Namespace, share_dir: str) -> int:
    """Cancel a job; for a job of another process, wait up to --timeout seconds for its process to act."""
    from .jobs import rx_cancel_job, rx_get_job_status

    job_id = args.job_id
    if not rx_cancel_job(job_id, share_dir=share_dir):
        print(f"job {job_id} already ended ({rx_get_job_status(job_id, share_dir=share_dir)}); nothing to cancel")
        return 1
    deadline = time.monotonic() + (args.timeout if args.timeout is not None else 5.0)
    while True:
        status = rx_get_job_status(job_id, share_dir=share_dir)
        if status == "canceled":
            print(f"job {job_id} canceled")
            return 0
        if status == "missing":
            # Its process acted and removed the record: a blocking job's goes when its call ends.
            print(f"job {job_id} canceled; its process removed its record as the call that ran it ended (auto_cleanup)")
            return 0
        if status in ("finished", "failed"):
            print(f"job {job_id} {status} before the cancel request was acted on")
            return 1
        if time.monotonic() >= deadline:
            print(f"cancel requested for job {job_id} (still {status}): the process running it stops it within about a second")
            return 0
        time.sleep(0.1)


def _resume(args: argparse.Namespace, share_dir: str) -> int:
    """``rxspark job resume JOB_ID [--context NAME] [--master M] [--no-wait]``."""
    from .jobs.resume import rx_resume_job

    name = args.context or ("spark" if args.master else "local")
    options: dict[str, Any] = {"share_dir": share_dir}
    if args.master:
        if name not in ("spark", "RxSpark"):
            print("--master needs --context spark", file=sys.stderr)
            return 2
        options["master"] = args.master
    from .contexts import registry

    context = type(registry.resolve(name, "--context"))(**options)  # its own, on this store
    try:
        if args.no_wait:
            job = rx_resume_job(args.job_id, compute_context=context, wait=False, share_dir=share_dir)
            print(f"job {args.job_id} resumed in process {os.getpid()}; waiting for it (--no-wait returns when this command is stopped)")
            job.wait_done()
            print(job.status())
            return 0
        results = rx_resume_job(args.job_id, compute_context=context, wait=True, share_dir=share_dir)
    finally:
        context.close()
    _hand_out(args, results)
    return 0


def _cmd_job(args: argparse.Namespace) -> int:
    from .jobs import rx_cleanup_jobs, rx_get_job_output, rx_get_job_status

    share_dir = _share_dir(args)
    where = {"share_dir": share_dir}
    job_id = args.job_id
    if args.action == "status":
        status = rx_get_job_status(job_id, **where)
        print(status)
        if status == "missing":
            sys.stdout.flush()
            print(_missing_note(job_id, share_dir), file=sys.stderr)
            return 1
        return 0
    if args.action == "output":
        sys.stdout.write(rx_get_job_output(job_id, **where))
        return 0
    if args.action == "results":
        return _results(args, share_dir)
    if args.action == "cancel":
        return _cancel(args, share_dir)
    if args.action == "resume":
        return _resume(args, share_dir)
    # cleanup
    removed = rx_cleanup_jobs(job_id, force=args.force, **where)
    if removed:
        print(f"job {job_id} cleaned up")
        return 0
    if rx_get_job_status(job_id, **where) == "missing":
        print(f"no job {job_id} in {where['share_dir']}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------- doctor


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


_SPARK_PROBE = """
import sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("rxspark-doctor")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.pyspark.python", sys.executable).config("spark.ui.enabled", "false")
         .getOrCreate())
try:
    out = spark.sparkContext.parallelize([20], 1).map(lambda x: x + 1).collect()
    assert out == [21], out
    print("SPARK-OK", spark.version)
finally:
    spark.stop()
"""


MIN_PYTHON = (3, 10)


def _check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:  # the check still runs where pip's requires-python was bypassed
        return Check("Python", False, f"{version} is too old ({sys.executable})", "use Python 3.10 or newer")
    return Check("Python", True, f"{version} ({sys.executable})")


def _check_java() -> Check:
    fix = "install a JDK 17 or 21 (e.g. `apt install openjdk-17-jre-headless`) and set JAVA_HOME to it"
    found = probe_java(timeout=60)
    if found.major is None:
        if found.java is None and found.from_java_home:
            return Check("Java", False, found.problem, f"point JAVA_HOME at a JDK 17+, or unset it; {fix}")
        return Check("Java", False, found.problem, fix)
    if found.major < MIN_JAVA:
        return Check("Java", False, f"Java {found.major} ({found.where}); Spark 4 needs Java 17 or newer", fix)
    return Check("Java", True, f"Java {found.major} ({found.where})")


def _check_pyspark() -> Check:
    fix = "pip install 'pyspark>=3.5,<5' (on a cluster: its own PySpark)"
    try:
        import pyspark
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return Check("PySpark", False, f"cannot import pyspark: {type(exc).__name__}: {exc}", fix)
    version = getattr(pyspark, "__version__", "?")
    if not version.startswith(("3.5.", "4.")):
        return Check("PySpark", False, f"pyspark {version}; rxspark needs 3.5.x or 4.x", fix)
    if version.startswith("3.5."):
        return Check("PySpark", True, f"pyspark {version} (classic sessions; Spark Connect needs 4.x)")
    return Check("PySpark", True, f"pyspark {version}")


_EXTRAS = [
    ("mkl_random", "Intel VSL generators (rng_kind='MT2203' ...)", "pip install -e '.[mkl]' (from the rxspark clone)"),
    ("tqdm", "progress bars", "pip install -e '.[progress]' (from the rxspark clone)"),
    ("pandas", "pandas arguments and rx_share of DataFrames", "pip install -e '.[pandas]' (from the rxspark clone)"),
    ("matplotlib", "the examples' plots", "pip install -e '.[examples]' (from the rxspark clone)"),
    ("scipy", "the quasi-random rng kinds SOBOL and NIEDERR, and the examples", "pip install -e '.[qmc]' (from the rxspark clone)"),
]


def _check_extras() -> list[Check]:
    import importlib

    checks = []
    for module, purpose, fix in _EXTRAS:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            checks.append(Check(module, False, f"not available ({type(exc).__name__}); optional, for {purpose}", fix, required=False))
        else:
            checks.append(Check(module, True, f"{getattr(mod, '__version__', '?')} (optional, for {purpose})", required=False))
    return checks


def _check_share_dir() -> Check:
    from .errors import RxJobError
    from .jobs.store import store_for
    from .options import get_option

    root = os.path.expanduser(get_option("share_dir"))
    try:
        exists = store_for(root).check()
    except RxJobError as exc:
        return Check("Job store", False, str(exc), f"use a private directory: chmod 700 {root}, or rx_options(share_dir=...)")
    return Check("Job store", True, f"{root}" + ("" if exists else " (created on first use)"))


def _check_spark(timeout: float) -> Check:
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _SPARK_PROBE], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return Check(
            "Spark local session",
            False,
            f"a local[1] session did not start and run a job within {timeout:.0f} s",
            "check that the host name resolves (or set SPARK_LOCAL_IP=127.0.0.1) and that no firewall blocks loopback",
        )
    match = re.search(r"SPARK-OK (\S+)", proc.stdout)
    if proc.returncode == 0 and match:
        return Check("Spark local session", True, f"Spark {match.group(1)} started on local[1], ran a task, stopped")
    log = (proc.stderr or proc.stdout).strip().splitlines()
    tail = "\n        ".join(log[-12:]) or f"exit code {proc.returncode}"
    text = proc.stderr or ""
    if "JAVA_GATEWAY_EXITED" in text or "Java gateway process exited" in text:
        fix = "Spark's JVM did not start: check the Java line above and JAVA_HOME"
    elif "Python worker" in text or "PYTHON_VERSION_MISMATCH" in text:
        fix = f"the Python workers failed: make sure PYSPARK_PYTHON is unset or points at {sys.executable}"
    else:
        fix = "read the log above; SPARK_LOCAL_IP=127.0.0.1 helps on hosts whose name does not resolve"
    return Check("Spark local session", False, f"failed:\n        {tail}", fix)


def _cmd_doctor(args: argparse.Namespace) -> int:
    checks = [_check_python(), _check_java(), _check_pyspark(), _check_share_dir()]
    for check in checks:
        _print_check(check)
    extras = _check_extras()
    for check in extras:
        _print_check(check)
    if args.no_spark:
        print("SKIP  Spark local session (--no-spark)")
    elif checks[1].ok and checks[2].ok:
        print("....  starting a local Spark session (takes a few seconds)", flush=True)
        spark = _check_spark(args.timeout)
        _print_check(spark)
        checks.append(spark)
    else:
        print("SKIP  Spark local session: needs Java and PySpark (see above)")
    failed = [c.name for c in checks if c.required and not c.ok]
    print()
    print("all required checks passed" if not failed else f"{len(failed)} required check(s) failed: {', '.join(failed)}")
    return 1 if failed else 0


def _print_check(check: Check) -> None:
    label = "OK  " if check.ok else ("FAIL" if check.required else "--  ")
    print(f"{label}  {check.name}: {check.detail}")
    if not check.ok and check.fix:
        print(f"      fix: {check.fix}")
    sys.stdout.flush()


# ---------------------------------------------------------------- shares


def _cmd_shares(args: argparse.Namespace) -> int:
    from .share import list_shares, shares_dir

    directory = shares_dir(_share_dir(args))
    shares = list_shares(directory)
    if args.delete:
        wanted = set(args.delete)
        found = [info for info in shares if info.path in wanted]
        for info in found:
            info.delete()
            print(f"deleted {info.path}")
        missing = sorted(wanted - {info.path for info in found})
        for path in missing:
            print(f"rxspark: no share {path} in {directory}", file=sys.stderr)
        return 1 if missing else 0
    if not shares:
        print(f"no shares in {directory}")
        return 0
    rows = [["PATH", "KIND", "SIZE", "CREATED", "OWNER JOB", "COMPLETE"]]
    for info in shares:
        rows.append([info.path, info.kind, f"{info.size:,}", _when(info.created), info.owner_job or "-", "yes" if info.complete else "NO"])
    print(_table(rows))
    return 0


# ---------------------------------------------------------------- pack


def _cmd_pack(args: argparse.Namespace) -> int:
    from .pack import pack

    print(pack(args.output, prefix=args.prefix, python_prefix=args.python_prefix))
    return 0


# ---------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rxspark", description="rxspark jobs and installation checks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{jobs,job,shares,doctor,pack}")
    store_help = "job store to use (default: rx_options()['share_dir'], ~/.rxspark/jobs)"

    jobs = sub.add_parser("jobs", help="list the jobs in a job store")
    jobs.add_argument("--share-dir", metavar="DIR", help=store_help)
    jobs.add_argument("--state", action="append", metavar="STATE", help="only jobs in this state (repeat or comma-separate)")
    jobs.set_defaults(run=_cmd_jobs)

    job = sub.add_parser("job", help="one job: status, output, results, cancel, cleanup, resume")
    job.add_argument("action", choices=["status", "output", "results", "cancel", "cleanup", "resume"])
    job.add_argument("job_id", metavar="JOB_ID")
    job.add_argument("--share-dir", metavar="DIR", help=store_help)
    job.add_argument("--force", action="store_true", help="cleanup: also delete unretrieved results or a corrupted record")
    job.add_argument("--keep", action="store_true", help="results: keep the job's record (by default it goes once the results are printed, if the job has auto_cleanup)")
    job.add_argument("--wait", action="store_true", help="results: wait for the job to end")
    job.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="results: wait this long at most (default 0); cancel: wait this long for the job's process to act (default 5)")
    job.add_argument("--context", metavar="NAME", help="resume: where the missing chunks run (local, localpar, spark; default local, or spark with --master)")
    job.add_argument("--master", metavar="M", help="resume: a Spark master URL for the context (e.g. local[4], spark://host:7077, yarn)")
    job.add_argument("--no-wait", action="store_true", help="resume: keep the results in the store for `rxspark job results` instead of printing them")
    job.add_argument("--save", metavar="FILE", help="results, resume: write them to FILE (cloudpickle) instead of printing")
    job.set_defaults(run=_cmd_job)

    shares = sub.add_parser("shares", help="list the data stored with rx_share (to find stale shares)")
    shares.add_argument("--share-dir", metavar="DIR", help=store_help + "; shares are in its 'shared' folder")
    shares.add_argument("--delete", nargs="+", metavar="PATH", help="delete these shares (paths as listed)")
    shares.set_defaults(run=_cmd_shares)

    doctor = sub.add_parser("doctor", help="check Python, Java, PySpark, extras, and a local Spark session")
    doctor.add_argument("--no-spark", action="store_true", help="skip starting a local Spark session")
    doctor.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS", help="limit for the Spark check")
    doctor.set_defaults(run=_cmd_doctor)

    packer = sub.add_parser("pack", help="pack this Python environment for RxSpark(python_env=...) / spark-submit.sh --python-env")
    packer.add_argument("--output", metavar="PATH", help="the archive (.tar.gz); default: a cached archive per environment")
    packer.add_argument("--python-prefix", metavar="DIR",
                        help="prefix of the base CPython on the nodes (e.g. /usr); default: this venv's own base")
    packer.add_argument("--prefix", metavar="VENV", help="the virtual environment to pack (default: the current one)")
    packer.set_defaults(run=_cmd_pack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rxspark`` command; return its exit code."""
    args = _parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = args.run(args)
            sys.stdout.flush()
        except BrokenPipeError:
            return _reader_gone()
        except RxJobCanceledError as exc:
            print(f"rxspark: {exc}", file=sys.stderr)
            code = 1
        except RxError as exc:
            print(f"rxspark: error: {exc}", file=sys.stderr)
            code = 1
    for warning in caught:
        print(f"rxspark: warning: {warning.message}", file=sys.stderr)
    return code


def _reader_gone() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as Unix tools killed by SIGPIPE do.

    What is still buffered can never be written: point stdout at /dev/null so
    the interpreter's final flush does not print a BrokenPipeError either.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # 128 + SIGPIPE, what a shell reports for `yes | head`


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
