"""Bad input: a clear error before anything runs, naming the argument."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import tasks

import rxspark
from rxspark import RxArgumentError, RxArgumentTypeError, RxError, RxForeachDoPar, RxLocalParallel, rx_elem_arg, rx_exec

LOCK = threading.Lock()


def marker_function(log_path):
    """A task whose every call leaves a trace in a file."""

    def task(*args, **kwargs):
        with open(log_path, "a") as f:
            f.write("ran\n")
        return args

    return task


def two_args(a, b):
    return a + b


# (id, kwargs for rx_exec besides the function, expected type, message fragment)
# "F" in args stands for the marker function; "X" for the marker file path.
CASES = [
    ("not-callable", dict(function=42), RxArgumentTypeError, "function must be callable"),
    ("signature-missing", dict(function=two_args, args_=(1,)), RxArgumentTypeError, "two_args"),
    ("signature-extra-kw", dict(function=two_args, args_=(1, 2), kw=dict(c=3)), RxArgumentTypeError, "unexpected keyword"),
    ("elem-arg-generator", dict(make_args=lambda: (rx_elem_arg(x for x in range(3)),)), RxArgumentTypeError, "rx_elem_arg"),
    ("elem-arg-string", dict(make_args=lambda: (rx_elem_arg("abc"),)), RxArgumentTypeError, "rx_elem_arg"),
    ("elem-arg-lengths", dict(args_=(rx_elem_arg([1, 2]),), kw=dict(y=rx_elem_arg([1, 2, 3]))), RxArgumentError, "different lengths"),
    ("times-zero", dict(times_to_run=0), RxArgumentError, "times_to_run"),
    ("times-negative", dict(times_to_run=-2), RxArgumentError, "times_to_run"),
    ("times-float", dict(times_to_run=2.5), RxArgumentError, "times_to_run"),
    ("times-bool", dict(times_to_run=True), RxArgumentError, "times_to_run"),
    ("times-mismatch", dict(args_=(rx_elem_arg([1, 2, 3]),), times_to_run=4), RxArgumentError, "times_to_run=4"),
    ("chunk-zero", dict(task_chunk_size=0), RxArgumentError, "task_chunk_size"),
    ("chunk-string", dict(task_chunk_size="10"), RxArgumentError, "task_chunk_size"),
    ("chunk-float", dict(task_chunk_size=1.5), RxArgumentError, "task_chunk_size"),
    ("elem-type", dict(elem_type="gpus"), RxArgumentError, "elem_type"),
    ("once-per-elem-cores", dict(once_per_elem=True, elem_type="cores"), RxArgumentError, "once_per_elem"),
    ("once-per-elem-type", dict(once_per_elem="yes"), RxArgumentTypeError, "once_per_elem"),
    ("once-per-elem-times", dict(once_per_elem=True, times_to_run=5), RxArgumentError, "once_per_elem"),
    ("seed-negative", dict(rng_seed=-1), RxArgumentError, "rng_seed"),
    ("seed-float", dict(rng_seed=1.5), RxArgumentTypeError, "rng_seed"),
    ("seed-string", dict(rng_seed="seven"), RxArgumentTypeError, "rng_seed"),
    ("seed-bool", dict(rng_seed=True), RxArgumentTypeError, "rng_seed"),
    ("kind-unknown", dict(rng_seed=1, rng_kind="Mersenne"), RxArgumentError, "PCG64, PCG64DXSM"),
    ("kind-type", dict(rng_seed=1, rng_kind=7), RxArgumentTypeError, "rng_kind"),
    ("scope", dict(rng_scope="job"), RxArgumentError, "rng_scope"),
    ("exec-objects-missing", dict(exec_objects=["no_such_name_here"]), RxArgumentError, "no_such_name_here"),
    ("exec-objects-type", dict(exec_objects=3), RxArgumentTypeError, "exec_objects"),
    ("exec-objects-string", dict(exec_objects="SCALE"), RxArgumentTypeError, "exec_objects"),
    ("exec-objects-bad-name", dict(exec_objects={"not a name": 1}), RxArgumentError, "exec_objects"),
    ("exec-objects-unpicklable", dict(exec_objects={"lock": LOCK}), RxArgumentError, "exec_objects['lock']"),
    ("arg-unpicklable", dict(args_=(LOCK,)), RxArgumentError, "positional argument 0"),
    ("kwarg-unpicklable", dict(kw=dict(lock=LOCK)), RxArgumentError, "keyword argument 'lock'"),
    ("per-call-unpicklable", dict(args_=(rx_elem_arg([1, LOCK]),)), RxArgumentError, "per-call argument"),
    ("function-unpicklable", dict(function="closure-over-lock"), RxArgumentError, "cannot be serialized"),
    ("packages-type", dict(packages_to_load=5), RxArgumentTypeError, "packages_to_load"),
    ("packages-bad-name", dict(packages_to_load=["not a module"]), RxArgumentError, "packages_to_load"),
    ("elem-args-type", dict(elem_args=5), RxArgumentTypeError, "elem_args"),
    ("elem-args-string", dict(elem_args="abc"), RxArgumentTypeError, "elem_args"),
    ("elem-args-dict-keys", dict(elem_args={1: 2}), RxArgumentTypeError, "elem_args"),
    ("elem-args-entry-kw-clash", dict(elem_args=[{"y": 1}, {"y": 2}], kw=dict(y=3)), RxArgumentError, "elem_args entry"),
    ("args-type", dict(rx_args=5), RxArgumentTypeError, "args must be"),
    ("args-list-entry", dict(rx_args=[{"a": 1}, 2]), RxArgumentTypeError, "args[1]"),
    ("args-and-elem-args", dict(rx_args=[{"a": 1}], elem_args=[1]), RxArgumentError, "not both"),
    ("args-kwargs-clash", dict(rx_args={"y": 1}, kw=dict(y=2)), RxArgumentError, "args and keyword"),
    ("local-state-type", dict(local_state=[1]), RxArgumentTypeError, "local_state"),
    ("local-state-clash", dict(local_state={"a": 1}, exec_objects={"a": 2}), RxArgumentError, "local_state"),
    ("console-output", dict(console_output="yes"), RxArgumentTypeError, "console_output"),
    ("auto-cleanup", dict(auto_cleanup=1), RxArgumentTypeError, "auto_cleanup"),
    ("continue-on-failure", dict(continue_on_failure=None), RxArgumentTypeError, "continue_on_failure"),
    ("wait", dict(wait="no"), RxArgumentTypeError, "wait"),
    ("callback", dict(callback=5), RxArgumentTypeError, "callback"),
    ("context-name", dict(compute_context="hadoop"), RxArgumentError, "compute context name"),
    ("context-type", dict(compute_context=3.0), RxArgumentTypeError, "compute_context"),
    ("context-dopar-name", dict(compute_context="dopar"), RxArgumentError, "executor"),
    ("exec-objects-on-builtin", dict(function=len, args_=([1],), exec_objects={"a": 1}), RxArgumentError, "wrap it in a def"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_before_anything_runs(case, tmp_path):
    _, spec, error_type, fragment = case
    log = tmp_path / "ran.log"
    spec = dict(spec)
    function = spec.pop("function", marker_function(str(log)))
    if function == "closure-over-lock":
        marker = marker_function(str(log))

        def function(*a, _lock=LOCK, **k):
            return marker(*a, **k)

    make_args = spec.pop("make_args", None)
    args = spec.pop("args_", ())
    kw = spec.pop("kw", {})
    if "rx_args" in spec:
        spec["args"] = spec.pop("rx_args")
    with pytest.raises(error_type) as info:
        rx_exec(function, *(make_args() if make_args else args), **spec, **kw)
    assert isinstance(info.value, RxError)
    assert fragment in str(info.value)
    assert not log.exists(), "the function ran although the call was invalid"


def test_there_are_at_least_30_distinct_cases():
    assert len({c[0] for c in CASES}) >= 30


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: RxLocalParallel(num_workers=0), "num_workers"),
        (lambda: RxLocalParallel(wait="yes"), "wait"),
        (lambda: RxForeachDoPar(object()), "Executor"),
        (lambda: rxspark.rx_options(num_cores_to_use=0), "num_cores_to_use"),
        (lambda: rxspark.rx_options(no_such_option=1), "unknown option"),
    ],
)
def test_bad_context_and_option_arguments(make, fragment):
    with pytest.raises(RxError, match=fragment):
        make()


def test_rx_options_round_trip():
    before = rxspark.rx_options()
    try:
        assert rxspark.rx_options(num_cores_to_use=3)["num_cores_to_use"] == 3
        assert RxLocalParallel().parallelism() == 3
    finally:
        rxspark.rx_options(num_cores_to_use=before["num_cores_to_use"])


def test_numpy_integers_are_accepted():
    assert rx_exec(tasks.constant, times_to_run=np.int64(2), task_chunk_size=np.int32(1), rng_seed=np.uint32(4)) == [42, 42]


def test_import_does_not_import_pyspark():
    code = "import sys, rxspark; assert 'pyspark' not in sys.modules, 'pyspark imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_large_exec_objects_and_arguments_warn_recommending_rx_share():
    before = rxspark.rx_options()["exec_objects_warn_bytes"]
    rxspark.rx_options(exec_objects_warn_bytes=10_000)
    try:
        with pytest.warns(rxspark.RxLargeObjectWarning, match="rx_share") as seen:
            rx_exec(tasks.uses_global, 2, exec_objects={"SCALE": np.ones(5000)}, times_to_run=1)
        assert "'SCALE'" in str(seen[0].message) and seen[0].filename == __file__
        with pytest.warns(rxspark.RxLargeObjectWarning, match="positional argument 0"):
            rx_exec(tasks.identity, np.ones(5000), times_to_run=1)
    finally:
        rxspark.rx_options(exec_objects_warn_bytes=before)


def _raise_value_error(x):
    raise ValueError(f"bad {x}")


def test_errors_raised_by_rx_exec_have_a_traceback_that_starts_at_the_users_call():
    import traceback

    from rxspark.compat import revoscalepy

    with pytest.raises(RxArgumentError) as info:
        rx_exec(two_args, 1, 2, task_chunk_size=0)
    assert [f.name for f in traceback.extract_tb(info.value.__traceback__)] == [
        "test_errors_raised_by_rx_exec_have_a_traceback_that_starts_at_the_users_call"
    ]
    with pytest.raises(rxspark.RxTaskError) as info:
        rx_exec(_raise_value_error, rx_elem_arg([1]), continue_on_failure=False)
    assert len(traceback.extract_tb(info.value.__traceback__)) == 1
    assert isinstance(info.value.__cause__, ValueError)  # the user's exception is kept
    assert "_raise_value_error" in info.value.remote_traceback
    with pytest.raises(RxError) as info:
        revoscalepy.rx_exec(len, times_to_run=-1)
    assert len(traceback.extract_tb(info.value.__traceback__)) == 1


def test_rx_get_jobs_is_a_dict_with_an_html_table(tmp_path):
    cc = rxspark.RxLocalSeq(share_dir=str(tmp_path), wait=False, auto_cleanup=False)
    job = rx_exec(two_args, 1, 2, compute_context=cc)
    job.result()
    jobs = rxspark.rx_get_jobs(cc)
    assert isinstance(jobs, dict) and list(jobs) == [job.job_id]
    assert job.job_id in jobs._repr_html_()
