"""The conformance suite: the same rx_exec assertions on every compute context (API.md sections 1-4).

An importable suite, as CPython's ``create_executor_tests`` and Fugue's
``execution_suite``: the tests are methods of ``ConformanceSuite`` and take
the compute context from a ``cc`` fixture. test_conformance.py collects them
on every context of the table in contexts.py, so a context of this repository
joins by its one entry there. A context from elsewhere joins by supplying the
factory as a ``cc`` fixture of a subclass::

    from conformance import ConformanceSuite

    class TestMyContext(ConformanceSuite):
        @pytest.fixture
        def cc(self):
            cc = MyContext()
            yield cc
            cc.close()

Task functions come from tests/tasks.py (importable by worker processes,
pickled by value for Spark's workers: conftest.py).
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import socket
import warnings

import numpy as np
import pandas as pd
import pytest
import tasks

import rxspark
from rxspark import RxJob, RxTaskError, RxTaskFailureWarning, rx_elem_arg, rx_exec
from rxspark.compat import revoscalepy
from rxspark.rng import NUMPY_KINDS, VSL_KINDS

needs_mkl = pytest.mark.skipif(
    importlib.util.find_spec("mkl_random") is None, reason="mkl-random (extra 'mkl') is not installed"
)

SCALE = 7  # looked up by name through exec_objects=["SCALE"]


def run(cc, *args, **kwargs):
    return rx_exec(*args, compute_context=cc, **kwargs)


class ConformanceSuite:
    """The assertions every compute context must pass; collected through a subclass named ``Test...``."""

    # ------------------------------------------------------------------ arguments


    def test_shared_positional_and_keyword_arguments(self, cc):
        assert run(cc, tasks.add, 1, 2, z=3, times_to_run=3) == [6, 6, 6]


    def test_rx_elem_arg_positional_and_keyword(self, cc):
        out = run(cc, tasks.add, rx_elem_arg([1, 2, 3]), y=rx_elem_arg((10, 20, 30)), z=100)
        assert out == [111, 122, 133]


    @pytest.mark.parametrize(
        "values",
        [range(5), np.arange(5), (0, 1, 2, 3, 4), pd.Series([0, 1, 2, 3, 4], index=[9, 8, 7, 6, 5])],
        ids=["range", "numpy", "tuple", "series-positional"],
    )
    def test_rx_elem_arg_sequence_kinds(self, cc, values):
        out = run(cc, tasks.identity, rx_elem_arg(values), task_chunk_size=2)
        assert [int(v) for v in out] == [0, 1, 2, 3, 4]


    def test_length_one_per_call_argument_is_recycled(self, cc):
        out = run(cc, tasks.add, rx_elem_arg([1, 2, 3]), y=rx_elem_arg([100]))
        assert out == [101, 102, 103]
        assert run(cc, tasks.add, rx_elem_arg([5]), times_to_run=3) == [5, 5, 5]


    def test_elem_args_entry_forms(self, cc):
        out = run(cc, tasks.echo, "shared", elem_args=[{"k": 1}, (1, 2), 3, [4]], flag=True)
        assert out == [
            (("shared",), {"flag": True, "k": 1}),
            ((1, 2, "shared"), {"flag": True}),
            ((3, "shared"), {"flag": True}),
            (([4], "shared"), {"flag": True}),
        ]


    def test_named_elem_args_give_a_dict_in_order(self, cc):
        out = run(cc, tasks.add, elem_args={"b": 1, "a": (2, 3), "c": {"x": 4, "z": 1}})
        assert list(out) == ["b", "a", "c"]
        assert out == {"b": 1, "a": 5, "c": 5}


    def test_revoscalepy_args_and_local_state(self, cc):
        assert run(cc, tasks.add, args={"x": 1, "y": 2}, times_to_run=2) == [3, 3]
        assert run(cc, tasks.add, args=[{"x": 1}, {"x": 2, "y": 5}]) == [1, 7]
        assert run(cc, tasks.uses_global, rx_elem_arg([1, 2]), local_state={"SCALE": 3}) == [3, 6]


    def test_times_to_run_replicates_a_call(self, cc):
        assert run(cc, tasks.constant, times_to_run=5, task_chunk_size=2) == [42] * 5


    def test_default_task_count_is_one_per_element(self, cc):
        assert len(run(cc, tasks.constant)) == len(cc.nodes())
        assert len(run(cc, tasks.constant, elem_type="cores")) == cc.parallelism()


    def test_zero_tasks(self, cc):
        assert run(cc, tasks.identity, rx_elem_arg([])) == []


    def test_results_keep_task_order_with_uneven_durations(self, cc):
        durations = [0.2, 0.0, 0.1, 0.0, 0.15, 0.0]
        out = run(cc, tasks.sleepy, rx_elem_arg(durations), value=rx_elem_arg(list(range(6))), task_chunk_size=1)
        assert out == list(range(6))


    # ------------------------------------------------------------------ chunks


    @pytest.mark.parametrize("n,c", [(10, 3), (7, 7), (5, 1), (12, 5)])
    def test_chunk_layout_is_exact(self, cc, n, c):
        """Chunk k holds tasks [k*c, min((k+1)*c, n)), run in order on one stream."""
        out = run(cc, tasks.draw, size=1, times_to_run=n, task_chunk_size=c, rng_seed=11)
        expected = []
        for k in range((n + c - 1) // c):
            g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(11, spawn_key=(k,))))
            expected += [[x] for x in g.random(min((k + 1) * c, n) - k * c).tolist()]
        assert out == expected


    def test_default_chunk_size_spreads_over_parallelism(self, cc):
        job = run(cc, tasks.identity, rx_elem_arg(range(10)), wait=False)
        job.result()
        p = cc.parallelism()
        assert job.plan.chunk_size == -(-10 // p)


    # ------------------------------------------------------------------ exec objects and packages


    def test_exec_objects_dict_and_names(self, cc):
        assert run(cc, tasks.uses_global, rx_elem_arg([1, 2]), exec_objects={"SCALE": 10}) == [10, 20]
        # Names are looked up in the caller's frame: its locals first, then its globals.
        assert rx_exec(tasks.uses_global, rx_elem_arg([1, 2]), exec_objects=["SCALE"], compute_context=cc) == [7, 14]

        def local_helper(v):
            return v * 100

        helper = local_helper  # noqa: F841 - looked up in this frame by name
        out = rx_exec(tasks.uses_helper, rx_elem_arg([1, 2]), exec_objects=["helper"], compute_context=cc)
        assert out == [101, 201]


    def test_exec_objects_do_not_leak_into_the_callers_module(self, cc):
        run(cc, tasks.uses_global, 1, exec_objects={"SCALE": 5})
        assert not hasattr(tasks, "SCALE")


    def test_packages_to_load_are_bound_as_globals(self, cc):
        assert run(cc, tasks.uses_package, rx_elem_arg([1]), packages_to_load=["json"]) == [json.dumps({"x": 1})]


    def test_missing_package_is_a_task_error_naming_it(self, cc):
        with pytest.warns(RxTaskFailureWarning):
            out = run(cc, tasks.identity, rx_elem_arg([1, 2]), packages_to_load=["no_such_module_xyz"])
        assert all(isinstance(e, RxTaskError) for e in out)
        assert "no_such_module_xyz" in out[0].message and out[0].node


    # ------------------------------------------------------------------ failures


    def test_continue_on_failure_keeps_going(self, cc):
        with pytest.warns(RxTaskFailureWarning, match="1 of 5 tasks"):
            out = run(cc, tasks.fail_on, rx_elem_arg(range(5)), task_chunk_size=2)
        assert out[:2] == [0, 1] and out[3:] == [3, 4]
        err = out[2]
        assert isinstance(err, RxTaskError)
        assert (err.task_index, err.chunk_index, err.exc_type) == (2, 1, "ValueError")
        assert err.message == "bad value 2"
        assert "the failing line" in err.remote_traceback
        assert err.node


    def test_stop_on_first_failure_raises_the_task_error(self, cc):
        with pytest.raises(RxTaskError) as info:
            run(cc, tasks.fail_on, rx_elem_arg(range(5)), continue_on_failure=False, task_chunk_size=5)
        assert info.value.task_index == 2
        assert isinstance(info.value.__cause__, ValueError)
        assert "bad value 2" in str(info.value)


    def test_one_warning_per_job(self, cc):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            run(cc, tasks.fail_on, rx_elem_arg(range(6)), bad=(1, 4), task_chunk_size=2)
        assert len([w for w in seen if issubclass(w.category, RxTaskFailureWarning)]) == 1


    def test_system_exit_in_a_task_is_a_task_error(self, cc):
        with pytest.warns(RxTaskFailureWarning):
            out = run(cc, tasks.exit_process, rx_elem_arg([0, 1, 2]))
        assert out[0] == 0 and out[2] == 2
        assert out[1].exc_type == "SystemExit"


    # ------------------------------------------------------------------ output, callback, jobs


    def test_console_output(self, cc, capsys):
        run(cc, tasks.printer, rx_elem_arg([1, 2]), console_output=True, task_chunk_size=1)
        captured = capsys.readouterr().out
        assert "[task 0] out 1" in captured and "[task 1] err 2" in captured
        job = run(cc, tasks.printer, rx_elem_arg([5]), wait=False)
        assert job.result() == [5]
        assert capsys.readouterr().out == ""
        assert job.output() == "[task 0] out 5\n[task 0] err 5\n"


    def test_callback_sees_every_result(self, cc):
        seen = []
        out = run(cc, tasks.identity, rx_elem_arg(range(7)), task_chunk_size=3, callback=seen.append)
        assert out == list(range(7)) and sorted(seen) == list(range(7))


    def test_wait_false_returns_a_future(self, cc):
        job = run(cc, tasks.add, rx_elem_arg(range(4)), y=1, wait=False, rng_seed=3)
        assert isinstance(job, RxJob) and isinstance(job, concurrent.futures.Future)
        assert list(concurrent.futures.as_completed([job], timeout=60)) == [job]
        assert job.result(timeout=60) == [1, 2, 3, 4]
        assert job.status() == "finished" and job.progress() == (4, 4) and job.rng_seed == 3


    def test_once_per_elem_returns_a_dict_keyed_by_node(self, cc):
        out = run(cc, tasks.where, once_per_elem=True)
        assert list(out) == cc.nodes()
        if cc.name != "RxSpark":
            assert out == {socket.gethostname(): socket.gethostname()}


    # ------------------------------------------------------------------ context selection and compat


    def test_compute_context_by_object_and_name(self, cc):
        previous = rxspark.rx_set_compute_context(cc)
        try:
            assert rxspark.rx_get_compute_context() is cc
            assert rx_exec(tasks.add, 1, 1, times_to_run=2) == [2, 2]
        finally:
            assert rxspark.rx_set_compute_context(previous) is cc
        assert rx_exec(tasks.add, 1, 2, times_to_run=1, compute_context="local") == [3]


    def test_revoscalepy_broadcasting(self, cc):
        assert revoscalepy.rx_exec(tasks.add, x=[1, 2, 3], y=10, compute_context=cc) == [11, 12, 13]
        assert revoscalepy.rx_exec(tasks.echo, the_list=[[0, 1, 2]], times_to_run=2, compute_context=cc) == [
            ((), {"the_list": [0, 1, 2]})
        ] * 2
        assert revoscalepy.rx_exec(tasks.add, args={"x": [1, 2], "y": 1}, compute_context=cc) == [2, 3]


    # ------------------------------------------------------------------ reproducibility across contexts


    @pytest.mark.parametrize("kind", list(NUMPY_KINDS) + [pytest.param(k, marks=needs_mkl) for k in VSL_KINDS])
    @pytest.mark.parametrize("scope, chunk", [("chunk", 4), ("task", 3)])
    def test_seeded_results_equal_the_sequential_reference(self, cc, kind, scope, chunk):
        """Same seed, kind, scope and chunk size: bit-identical to RxLocalSeq on every context."""
        kwargs = dict(times_to_run=11, rng_seed=2024, rng_kind=kind, rng_scope=scope, task_chunk_size=chunk)
        assert run(cc, tasks.draw_both, **kwargs) == rx_exec(tasks.draw_both, compute_context="local", **kwargs)
