"""The joblib backend "rxspark" (rxspark/joblib.py): registration, parameters, seeds, failures, nesting, scikit-learn.

joblib's own backend suite runs in tests/test_joblib_suite.py; these are the
checks of what API.md section 9 adds: seeds by call index whatever joblib's
batching, the same scikit-learn scores on every context, the user's exception
type, and nested calls. The checks that hold on every context take ``cc``
(contexts.py), on every context but the two-executor cluster: the backend sees
only the compute context's interface, which local[2] and Connect already
exercise on Spark, so the cluster would add run time but no case.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import warnings

import cloudpickle
import joblib
import numpy as np
import pytest
from contexts import on, shared
from joblib import Parallel, delayed, parallel_config

import rxspark
import rxspark.joblib
from rxspark import RxArgumentError, RxArgumentTypeError, rx_exec

# A local classic session lets its workers import what the driver can; a Connect server's workers
# cannot see the tests' sys.path: ship this module's functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEED = 20240601
each_context = on(cluster=False)


def draws(_i: int) -> tuple[float, float, float]:
    """What a call draws from the three sources a stream seeds."""
    return random.random(), float(np.random.rand()), float(rxspark.rng().random())


# ---------------------------------------------------------------- registration


def test_import_rxspark_alone_does_not_import_joblib():
    code = "import sys, rxspark; assert 'joblib' not in sys.modules, 'joblib imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_importing_the_module_registers_the_backend_and_register_is_idempotent():
    assert joblib.parallel.BACKENDS["rxspark"] is rxspark.joblib.RxSparkBackend
    del joblib.parallel.BACKENDS["rxspark"]
    try:
        with pytest.raises(ValueError, match="Invalid backend"):
            Parallel(n_jobs=2, backend="rxspark")
    finally:
        rxspark.joblib.register()
        rxspark.joblib.register()
    assert joblib.parallel.BACKENDS["rxspark"] is rxspark.joblib.RxSparkBackend
    with parallel_config(backend="rxspark", n_jobs=2, compute_context=rxspark.RxLocalSeq()) as config:
        assert isinstance(config["backend"], rxspark.joblib.RxSparkBackend)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "params, error, names",
    [
        (dict(rng_seed=-1), RxArgumentError, "rng_seed"),
        (dict(rng_seed=1.5), RxArgumentTypeError, "rng_seed"),
        (dict(rng_kind="Mersenne"), RxArgumentError, "rng_kind"),
        (dict(compute_context=3), RxArgumentTypeError, "compute_context"),
        (dict(compute_context="no-such-context"), RxArgumentError, "compute_context"),
        (dict(rng_sed=7), RxArgumentTypeError, "rng_sed"),
    ],
)
def test_bad_parameters_fail_at_parallel_config_naming_the_argument(params, error, names):
    ran = []
    with pytest.raises(error, match=names):
        with parallel_config(backend="rxspark", n_jobs=2, **params):
            Parallel()(delayed(ran.append)(i) for i in range(3))
    assert ran == []


def test_auto_seed_is_drawn_once_and_recorded():
    backend = rxspark.joblib.RxSparkBackend(rng_seed="auto")
    assert isinstance(backend.rng_seed, int)
    assert rxspark.joblib.RxSparkBackend().rng_seed is None
    assert rxspark.joblib.RxSparkBackend(rng_seed=5).rng_seed == 5


def test_n_jobs_minus_one_is_the_contexts_parallelism():
    cc = shared("localpar")
    backend = rxspark.joblib.RxSparkBackend(compute_context=cc)
    assert backend.effective_n_jobs(-1) == cc.parallelism() == 2
    assert backend.effective_n_jobs(-2) == 1
    assert backend.effective_n_jobs(5) == 5
    with pytest.raises(ValueError, match="n_jobs == 0"):
        backend.effective_n_jobs(0)


# ---------------------------------------------------------------- seeds


@each_context
def test_call_k_draws_from_stream_k_whatever_the_batching(cc):
    n = 24
    # rx_exec's task streams are the reference: task k draws from stream (seed, k).
    expected = rx_exec(draws, rxspark.rx_elem_arg(range(n)), rng_seed=SEED, rng_scope="task", compute_context="local")
    for batch_size in (1, 5, "auto"):
        with parallel_config(backend="rxspark", compute_context=cc, rng_seed=SEED):
            got = Parallel(n_jobs=2, batch_size=batch_size)(delayed(draws)(i) for i in range(n))
        assert got == expected, batch_size
    for n_jobs in (1, -1):  # n_jobs=1 too: joblib would run it in the caller, unseeded
        with parallel_config(backend="rxspark", compute_context=cc, rng_seed=SEED):
            assert Parallel(n_jobs=n_jobs)(delayed(draws)(i) for i in range(n)) == expected, n_jobs
    with parallel_config(backend="rxspark", compute_context=cc, rng_seed=SEED + 1):
        other = Parallel(n_jobs=2)(delayed(draws)(i) for i in range(n))
    assert other != expected
    assert len({d[0] for d in expected}) == n  # every call its own stream


def test_the_drivers_global_random_states_are_left_alone():
    random.seed(1)
    np.random.seed(1)
    before = random.random(), float(np.random.rand())
    random.seed(1)
    np.random.seed(1)
    with parallel_config(backend="rxspark", compute_context=shared("seq"), rng_seed=SEED):
        Parallel(n_jobs=2)(delayed(draws)(i) for i in range(6))
    assert (random.random(), float(np.random.rand())) == before


# ---------------------------------------------------------------- scikit-learn


def _data():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=240, n_features=12, n_informative=6, random_state=0)


def grid_search_scores(cc, seed: int) -> list[float]:
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import GridSearchCV

    x, y = _data()
    grid = {"alpha": [1e-4, 1e-3, 1e-2], "penalty": ["l2", "l1"]}
    search = GridSearchCV(SGDClassifier(max_iter=5, tol=None, random_state=None), grid, cv=3)
    with parallel_config(backend="rxspark", n_jobs=2, compute_context=cc, rng_seed=seed):
        search.fit(x, y)
    return [float(s) for s in search.cv_results_["split0_test_score"]] + [
        float(s) for s in search.cv_results_["mean_test_score"]
    ]


def forest_scores(cc, seed: int) -> list[float]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    x, y = _data()
    forest = RandomForestClassifier(n_estimators=15, max_features=3, n_jobs=2, random_state=None)
    with parallel_config(backend="rxspark", n_jobs=2, compute_context=cc, rng_seed=seed):
        return [float(s) for s in cross_val_score(forest, x, y, cv=4)]


@pytest.fixture(scope="session")  # the tests taking it are grouped with other modules' by context
def reference():
    seq = shared("seq")
    return {"grid": grid_search_scores(seq, SEED), "forest": forest_scores(seq, SEED)}


@each_context
def test_seeded_grid_search_gives_the_same_scores_on_every_context_and_run(cc, reference):
    assert grid_search_scores(cc, SEED) == reference["grid"]


@each_context
def test_seeded_forest_in_cross_validation_gives_the_same_scores_on_every_context(cc, reference):
    assert forest_scores(cc, SEED) == reference["forest"]


def test_the_seed_decides_the_scores(reference):
    seq = shared("seq")
    assert grid_search_scores(seq, SEED + 1) != reference["grid"]
    assert forest_scores(seq, SEED + 1) != reference["forest"]


# ---------------------------------------------------------------- failures


class GameOver(Exception):
    """A user exception class (rxspark must hand back this type)."""


def fail_at(i: int, marks: str) -> int:
    with open(os.path.join(marks, f"{i}"), "w"):
        pass
    if i == 3:
        raise GameOver(f"call {i} lost")
    time.sleep(0.05)
    return i


@each_context
def test_a_failing_call_raises_the_users_exception_and_cancels_the_rest(cc, tmp_path):
    n = 200
    with parallel_config(backend="rxspark", compute_context=cc):
        with pytest.raises(GameOver, match="call 3 lost") as info:
            Parallel(n_jobs=2, batch_size=1)(delayed(fail_at)(i, str(tmp_path)) for i in range(n))
    assert type(info.value) is GameOver
    assert "fail_at" in str(info.value.__cause__)  # the remote traceback
    time.sleep(0.5)  # let anything not canceled show itself
    assert len(os.listdir(tmp_path)) < n // 2


# ---------------------------------------------------------------- nesting


def nested_rxspark(i: int) -> tuple[list[int], list[int], int, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with parallel_config(backend="rxspark"):  # nested in a task: found on the worker, runs sequentially
            inner = Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(3))
        values = Parallel(n_jobs=2, backend="rxspark")(delayed(abs)(-j) for j in range(i))
    return inner, values, os.getpid(), [str(w.message) for w in caught]


def nested_default(i: int) -> tuple[list[int], int]:
    return Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(3)), os.getpid()


@each_context
def test_nested_parallel_inside_a_task_runs_sequentially_on_the_worker(cc):
    with parallel_config(backend="rxspark", compute_context=cc):
        got = Parallel(n_jobs=2)(delayed(nested_rxspark)(i) for i in range(4))
    for i, (inner, values, pid, messages) in enumerate(got):
        assert values == list(range(i))
        assert set(inner) == {pid}
        assert any("cannot be nested inside an rxspark task" in m for m in messages), messages


@each_context
def test_nested_default_parallel_inside_a_task_uses_threads_in_the_task_process(cc):
    with parallel_config(backend="rxspark", compute_context=cc):
        got = Parallel(n_jobs=2)(delayed(nested_default)(i) for i in range(4))
    for pids, pid in got:
        assert set(pids) == {pid}
