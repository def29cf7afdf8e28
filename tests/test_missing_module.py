"""A job whose function comes from a module the workers cannot import (issue 17, point 6).

The notebook case: the driver imports a module of its own from a directory
it put on ``sys.path`` after the workers started (``sys.path.insert(...)``,
``import birthday``). cloudpickle sends the module's functions by reference,
so no worker can load the job. The job must fail once, with an error that
names the module and the fix, instead of returning one ``RxTaskError`` per
task (which the caller's formatting then trips over).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
import warnings

import cloudpickle
import pytest

from rxspark import RxLocalParallel, rx_elem_arg, rx_exec
from rxspark.errors import RxJobError, RxPayloadError, RxTaskFailureWarning

TASKS = 30


@pytest.fixture
def own_module(tmp_path):
    """A module imported from a temporary sys.path entry, which the workers never see."""
    name = f"rxmissing_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def square_plus(x, extra=0):
                return x * x + extra
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
    finally:
        # Workers started from now on must not inherit the entry either (a Spark session started
        # later passes sys.path to its executors, spawned pool processes copy it).
        sys.path.remove(str(tmp_path))
    yield module
    sys.modules.pop(name, None)


@pytest.fixture
def localpar():
    context = RxLocalParallel(2)
    yield context
    context.close()


def check_fails_once_with_the_fix(module, context):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RxPayloadError) as info:
            rx_exec(module.square_plus, rx_elem_arg(range(TASKS)), extra=1, task_chunk_size=5, compute_context=context)
    error = info.value
    name = module.__name__
    text = str(error)
    assert isinstance(error, RxJobError) and error.module == name
    assert f"No module named '{name}'" in text
    assert f"cloudpickle.register_pickle_by_value({name})" in text and "install it on the workers" in text
    assert "No task ran" in text
    # One error for the job: no per-task failure warning, no list of 30 RxTaskErrors.
    assert not [w for w in caught if issubclass(w.category, RxTaskFailureWarning)]
    assert text.count("No module named") == 1


def check_the_suggested_fix_works(module, context):
    cloudpickle.register_pickle_by_value(module)
    try:
        out = rx_exec(module.square_plus, rx_elem_arg(range(TASKS)), extra=1, task_chunk_size=5, compute_context=context)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert out == [x * x + 1 for x in range(TASKS)]


def test_local_processes(own_module, localpar):
    check_fails_once_with_the_fix(own_module, localpar)
    check_the_suggested_fix_works(own_module, localpar)


def test_local_processes_non_waiting_job_fails_with_it(own_module, localpar, share_dir):
    job = rx_exec(own_module.square_plus, rx_elem_arg(range(TASKS)), task_chunk_size=5, compute_context=localpar,
                  wait=False, continue_on_failure=False, auto_cleanup=False)
    assert job.wait_done(60) == "failed"
    with pytest.raises(RxPayloadError, match="register_pickle_by_value"):
        job.result()


@pytest.mark.spark
def test_spark_local(own_module, spark_local):
    check_fails_once_with_the_fix(own_module, spark_local)
    check_the_suggested_fix_works(own_module, spark_local)
    assert rx_exec(pow, rx_elem_arg(range(4)), 2, compute_context=spark_local) == [0, 1, 4, 9]  # still usable
