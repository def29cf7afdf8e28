"""``rx_exec(..., wait=False)`` returns at once, also on a context whose engine has not started.

The job spec is validated in the caller's thread; everything that needs the
engine (the context's parallelism for the default chunk size, its nodes for
``once_per_elem`` or ``elem_type="nodes"``) is decided in the job's own
thread. Measured before: 7.6 s on a fresh ``RxSpark(master="local[2]")``
(the call started Spark and ran a barrier job first).

The calls run in a child interpreter, so that no Spark session of the test
session is there to attach to: the context is as fresh as a user's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.spark]

LIMIT = 0.5

# The argument combinations of the conformance suite, each as rx_exec's keyword arguments
# (``args`` are the positional ones). Each one is also run on RxLocalSeq, to compare results.
CHILD = textwrap.dedent(
    """
    import json, sys, time
    import rxspark as rx

    def add(x, y=0):
        return x + y

    def draw(i=0):
        return float(rx.rng().random())

    def uses_offset(x):
        return x + offset

    def uses_math(x):
        return math.floor(x * 10)

    def fails(x):
        if x == 2:
            raise ValueError("two")
        return x

    CASES = {
        "rx_elem_arg": dict(args=(rx.rx_elem_arg([1, 2, 3]),), y=1),
        "elem_args list": dict(elem_args=[1, 2, 3]),
        "elem_args dicts": dict(elem_args=[{"x": 1}, {"x": 2, "y": 5}]),
        "elem_args named": dict(elem_args={"a": (1,), "b": (2, 3)}),
        "revoscalepy args": dict(args_=[{"x": 1}, {"x": 4}]),
        "times_to_run": dict(args=(5,), times_to_run=3),
        "one per node": dict(args=(1,)),
        "one per core": dict(args=(1,), elem_type="cores"),
        "once_per_elem": dict(args=(7,), once_per_elem=True),
        "chunked": dict(args=(rx.rx_elem_arg(range(10)),), task_chunk_size=3),
        "chunk seeds": dict(function=draw, times_to_run=6, rng_seed=11, task_chunk_size=2),
        "task seeds": dict(function=draw, times_to_run=6, rng_seed=11, rng_scope="task", rng_kind="Philox"),
        "exec_objects": dict(function=uses_offset, args=(rx.rx_elem_arg([1, 2]),), exec_objects={"offset": 100}),
        "packages_to_load": dict(function=uses_math, args=(rx.rx_elem_arg([0.15, 0.25]),), packages_to_load=["math"]),
        "failures kept": dict(function=fails, args=(rx.rx_elem_arg([1, 2, 3]),)),
        "fail fast": dict(function=fails, args=(rx.rx_elem_arg([1, 2, 3]),), continue_on_failure=False),
        "console_output and callback": dict(args=(rx.rx_elem_arg([1, 2]),), console_output=False, callback=print),
    }

    def submit(cc, case):
        kwargs = dict(CASES[case])
        function = kwargs.pop("function", add)
        args = kwargs.pop("args", ())
        if "args_" in kwargs:
            kwargs["args"] = kwargs.pop("args_")
        return rx.rx_exec(function, *args, compute_context=cc, wait=False, **kwargs)

    def outcome(job):
        try:
            value = job.result()
        except rx.RxTaskError as exc:
            return ["raised", exc.task_index, exc.exc_type]
        if isinstance(value, dict):
            return {k: _plain(v) for k, v in value.items()}
        return [_plain(v) for v in value]

    def _plain(v):
        return ["error", v.task_index, v.exc_type] if isinstance(v, rx.RxTaskError) else v

    share = sys.argv[1]
    spark = rx.RxSpark(master="local[2]", share_dir=share, progress=False)
    seq = rx.RxLocalSeq(share_dir=share)
    report = {}
    jobs = {}
    import warnings
    warnings.simplefilter("ignore")  # the failure warnings of the failing cases
    for case in CASES:
        start = time.perf_counter()
        jobs[case] = submit(spark, case)
        report[case] = {"seconds": time.perf_counter() - start, "status": jobs[case].status()}
    for case, job in jobs.items():
        got = outcome(job)
        if CASES[case].get("once_per_elem"):
            got = sorted(got.values())  # node names differ between contexts
        expected = outcome(submit(seq, case))
        if CASES[case].get("once_per_elem"):
            expected = sorted(expected.values())
        elif case in ("one per node", "one per core"):
            got, expected = len(got), None  # counts depend on the context
        report[case]["same"] = expected is None or got == expected
        report[case]["got"] = repr(got)
    spark.close()
    print("REPORT " + json.dumps(report))
    """
)


def test_wait_false_returns_within_half_a_second_on_a_fresh_spark_context(tmp_path, share_dir):
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, str(script), share_dir],
        capture_output=True, text=True, timeout=240, env=env, start_new_session=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    slow = {case: round(r["seconds"], 3) for case, r in report.items() if r["seconds"] > LIMIT}
    assert not slow, f"rx_exec(wait=False) took longer than {LIMIT} s: {slow}"
    assert all(r["status"] in ("queued", "running") for r in report.values()), report
    differ = {case: r["got"] for case, r in report.items() if not r["same"]}
    assert not differ, f"results differ from RxLocalSeq: {differ}"
