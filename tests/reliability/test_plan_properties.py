"""Property-based tests of the task and chunk layout (hypothesis).

For random valid argument combinations (number of tasks, chunk size, every
form of per-call arguments, times_to_run) the layout invariants hold: the
chunks partition range(n) exactly, chunk k is [k*c, min((k+1)*c, n)), each
chunk carries exactly its tasks' per-call values, and results come back in
task order. For random invalid combinations an RxError (also a ValueError or
TypeError) is raised before anything runs, never another exception.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxspark import RxError, RxLocalSeq, rx_elem_arg, rx_exec
from rxspark.plan import lay_out
from rxspark.rng import ALL_KINDS, SCOPES
from rxspark.spec import JobSpec

from . import faults

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMS = ["times", "positional", "keyword", "numpy", "range", "scalars", "tuples", "dicts", "named", "args-list", "mixed"]


def call_args(form: str, n: int, values: list[int]) -> tuple[tuple, dict, list]:
    """(args, kwargs for rx_exec, expected echo of each call) for one per-call form."""
    if form == "times":
        return (7,), {"times_to_run": n}, [((7,), {})] * n
    if form == "positional":
        return (rx_elem_arg(values), "shared"), {}, [((v, "shared"), {}) for v in values]
    if form == "keyword":
        return (), {"k": rx_elem_arg(values), "s": 1}, [((), {"k": v, "s": 1}) for v in values]
    if form == "numpy":
        return (rx_elem_arg(np.asarray(values, dtype=np.int64)),), {}, [((v,), {}) for v in values]
    if form == "range":
        return (rx_elem_arg(range(n)),), {}, [((i,), {}) for i in range(n)]
    if form == "scalars":
        return (), {"elem_args": list(values)}, [((v,), {}) for v in values]
    if form == "tuples":
        return (), {"elem_args": [(v, -v) for v in values]}, [((v, -v), {}) for v in values]
    if form == "dicts":
        return (), {"elem_args": [{"a": v} for v in values]}, [((), {"a": v}) for v in values]
    if form == "named":
        names = [f"call{i}" for i in range(n)]
        return (), {"elem_args": dict(zip(names, values))}, [((v,), {}) for v in values]
    if form == "args-list":
        return (), {"args": [{"a": v} for v in values]}, [((), {"a": v}) for v in values]
    # mixed: a per-call positional, a recycled length-1 one, a per-call keyword and a shared keyword
    return (
        (rx_elem_arg(values), rx_elem_arg(["one"])),
        {"k": rx_elem_arg([-v for v in values]), "s": 0},
        [((v, "one"), {"k": -v, "s": 0}) for v in values],
    )


@st.composite
def valid_calls(draw):
    form = draw(st.sampled_from(FORMS))
    n = draw(st.integers(1, 60))
    values = draw(st.lists(st.integers(-(10**6), 10**6), min_size=n, max_size=n))
    chunk = draw(st.one_of(st.none(), st.integers(1, 70), st.sampled_from([np.int64(3), np.int32(1)])))
    parallelism = draw(st.integers(1, 8))
    args, kwargs, expected = call_args(form, n, values)
    if form != "times" and draw(st.booleans()):
        kwargs["times_to_run"] = n  # explicit, agreeing with the per-call length
    return form, n, chunk, parallelism, args, kwargs, expected


def plan_for(args, kwargs, chunk, parallelism):
    kwargs = dict(kwargs)
    options = {k: kwargs[k] for k in ("elem_args", "args", "times_to_run") if k in kwargs}
    spec = JobSpec.create(
        faults.echo, args, {k: v for k, v in kwargs.items() if k not in options}, task_chunk_size=chunk, **options
    )
    return lay_out(spec, lambda: parallelism, lambda: ["node0"])


@SETTINGS
@given(valid_calls())
def test_chunks_partition_the_tasks_exactly(call):
    form, n, chunk, parallelism, args, kwargs, _ = call
    plan = plan_for(args, kwargs, chunk, parallelism)
    c = int(chunk) if chunk is not None else math.ceil(n / parallelism)
    assert plan.n_tasks == n and plan.chunk_size == c
    assert len(plan.chunks) == math.ceil(n / c)
    covered = []
    for k, ch in enumerate(plan.chunks):
        assert (ch.index, ch.start, ch.stop) == (k, k * c, min((k + 1) * c, n))
        assert len(ch) >= 1
        covered.extend(range(ch.start, ch.stop))
        calls = ch.get_calls()
        if calls is None:  # only (index, start, stop) travel: no per-call values, or one recycled to every call
            assert (form == "times" or n == 1) and ch.calls_blob is None
        else:
            assert form != "times"
            assert all(len(column) == len(ch) for column in calls.columns)
            assert calls.entries is None or len(calls.entries) == len(ch)
    assert covered == list(range(n))


@SETTINGS
@given(valid_calls())
def test_results_come_back_in_task_order(call):
    form, n, chunk, _, args, kwargs, expected = call
    out = rx_exec(faults.echo, *args, task_chunk_size=chunk, compute_context=RxLocalSeq(), **kwargs)
    if form == "named":
        assert list(out) == [f"call{i}" for i in range(n)]
        out = list(out.values())
    assert [(tuple(a), k) for a, k in out] == expected


# ------------------------------------------------------------------ invalid input

NOT_BOOL = st.one_of(st.integers(), st.text(max_size=3), st.just([True]), st.floats(allow_nan=False))
JUNK = st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=3), st.just(object()), st.tuples(st.integers()))

# Each argument with values that are invalid on their own (everything else valid).
INVALID = {
    "times_to_run": st.one_of(
        st.integers(max_value=-2), st.just(0), st.floats(), st.text(max_size=3), st.booleans(), st.just([3]), st.none()
    ),
    "task_chunk_size": st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3), st.booleans(), st.just([2])),
    "elem_type": st.one_of(st.text(max_size=6).filter(lambda s: s not in ("nodes", "cores")), st.integers(), st.none()),
    "once_per_elem": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "rng_seed": st.one_of(
        st.integers(max_value=-1), st.floats(), st.text(max_size=5).filter(lambda s: s != "auto"), st.booleans(), st.just([1])
    ),
    "rng_kind": st.one_of(st.text(max_size=8).filter(lambda s: s not in ALL_KINDS and s != "auto"), st.integers(), st.just(["PCG64"])),
    "rng_scope": st.one_of(st.text(max_size=6).filter(lambda s: s not in SCOPES), st.integers(), st.none()),
    "elem_args": st.one_of(
        st.integers(), st.text(min_size=1, max_size=4), st.binary(min_size=1, max_size=3), st.frozensets(st.integers(), min_size=1),
        st.dictionaries(st.integers(), st.integers(), min_size=1), st.lists(st.dictionaries(st.integers(), st.integers(), min_size=1), min_size=1),
    ),
    "args": st.one_of(st.integers(), st.text(min_size=1, max_size=4), st.lists(JUNK, min_size=1), st.dictionaries(st.integers(), st.integers(), min_size=1)),
    "exec_objects": st.one_of(
        st.integers(), st.text(min_size=1, max_size=4), st.lists(st.integers(), min_size=1),
        st.lists(st.sampled_from(["no_such_name_a", "no_such_name_b"]), min_size=1),
        st.dictionaries(st.sampled_from(["not a name", "1x", "class", ""]), st.integers(), min_size=1),
    ),
    "packages_to_load": st.one_of(st.integers(), st.lists(st.sampled_from(["not a module", "a..b", "", "1abc"]), min_size=1), st.dictionaries(st.text(), st.integers())),
    "local_state": st.one_of(st.integers(), st.lists(st.integers(), min_size=1), st.text(min_size=1, max_size=3)),
    "callback": st.one_of(st.integers(), st.text(max_size=3)),
    "continue_on_failure": st.one_of(NOT_BOOL, st.none()),
    "wait": NOT_BOOL,
    "console_output": NOT_BOOL,
    "auto_cleanup": NOT_BOOL,
}


@st.composite
def invalid_calls(draw):
    """One to three invalid arguments, or per-call arguments that disagree with each other or with the function."""
    kind = draw(st.sampled_from(["arguments", "lengths", "times-mismatch", "signature"]))
    n = draw(st.integers(2, 20))
    args, kwargs = (rx_elem_arg(range(n)),), {}
    if kind == "arguments":
        for name in draw(st.lists(st.sampled_from(sorted(INVALID)), min_size=1, max_size=3, unique=True)):
            kwargs[name] = draw(INVALID[name])
        kind = ", ".join(kwargs)
    elif kind == "lengths":
        other = draw(st.integers(2, 20).filter(lambda m: m != n))
        kwargs["k"] = rx_elem_arg(list(range(other)))
    elif kind == "times-mismatch":
        kwargs["times_to_run"] = draw(st.integers(1, 40).filter(lambda t: t != n))
    else:  # echo1 takes exactly one argument
        args = (rx_elem_arg(range(n)), draw(JUNK))
    return kind, args, kwargs


def echo1(x):
    CALLS.append(x)
    return x


CALLS: list = []


@SETTINGS
@given(invalid_calls())
def test_invalid_arguments_raise_an_rx_error_before_anything_runs(call):
    kind, args, kwargs = call
    CALLS.clear()
    with pytest.raises(RxError) as info:
        rx_exec(echo1, *args, compute_context=RxLocalSeq(), **kwargs)
    assert isinstance(info.value, (ValueError, TypeError)), (kind, type(info.value))
    assert CALLS == [], f"{kind}: the function ran"


# Two inputs the properties above found slipping past validation (fixed in plan.py since).


def test_rx_elem_arg_of_a_dict_is_an_rx_error():
    with pytest.raises(RxError):
        rx_exec(echo1, rx_elem_arg({"a": 1, "b": 2}), compute_context=RxLocalSeq())


def test_elem_args_of_a_0d_array_is_an_rx_error():
    with pytest.raises(RxError):
        rx_exec(echo1, elem_args=np.array(5), compute_context=RxLocalSeq())
