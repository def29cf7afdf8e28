"""Reproducible parallel random numbers: same seed, same numbers, on every context."""

from __future__ import annotations

import importlib.util
import itertools
import random

import numpy as np
import pytest
import tasks

import rxspark
from rxspark import RxArgumentError, rx_exec
from rxspark.rng import NUMPY_KINDS, VSL_KINDS

HAVE_MKL = importlib.util.find_spec("mkl_random") is not None
KINDS = list(NUMPY_KINDS) + [
    pytest.param(k, marks=pytest.mark.skipif(not HAVE_MKL, reason="mkl-random (extra 'mkl') is not installed"))
    for k in VSL_KINDS
]
N = 23


def draw_on(context, function=tasks.draw_both, **kwargs):
    return rx_exec(function, times_to_run=N, compute_context=context, **kwargs)


@pytest.fixture(scope="module")
def local_contexts(registry):
    from conftest import LOCAL_CONTEXTS

    return [registry.get(name) for name in LOCAL_CONTEXTS]


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_numbers_on_every_context_chunk_scope(local_contexts, kind):
    results = [draw_on(cc, rng_seed=777, rng_kind=kind, task_chunk_size=5) for cc in local_contexts]
    assert all(r == results[0] for r in results[1:])
    assert len({tuple(v) for v in results[0]}) == N  # tasks of a chunk advance the stream


@pytest.mark.parametrize("kind", KINDS)
def test_task_scope_does_not_depend_on_chunk_size(local_contexts, kind):
    results = [
        draw_on(cc, rng_seed=5, rng_kind=kind, rng_scope="task", task_chunk_size=c)
        for cc in local_contexts
        for c in (1, 7, N)
    ]
    assert all(r == results[0] for r in results[1:])


@pytest.mark.parametrize("kind", KINDS)
def test_different_seeds_differ(kind):
    a = draw_on("local", rng_seed=1, rng_kind=kind, task_chunk_size=5)
    b = draw_on("local", rng_seed=2, rng_kind=kind, task_chunk_size=5)
    assert a != b


def test_global_state_code_is_reproducible(local_contexts):
    results = [draw_on(cc, tasks.draw_globals, rng_seed=42, task_chunk_size=4) for cc in local_contexts]
    assert all(r == results[0] for r in results[1:])
    results = [draw_on(cc, tasks.draw_globals, rng_seed=42, rng_scope="task", task_chunk_size=c) for cc in local_contexts for c in (1, 7)]
    assert all(r == results[0] for r in results[1:])


def test_global_states_are_not_the_generator_stream():
    (out,) = rx_exec(tasks.draw_both, size=4, times_to_run=1, rng_seed=9)
    gen, stdlib, legacy = out[:4], out[4:8], out[8:]
    assert len({*gen, *stdlib, *legacy}) == 12


def test_seeded_run_restores_the_callers_global_states():
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    rx_exec(tasks.draw_globals, times_to_run=3, rng_seed=1)
    assert (random.random(), np.random.rand()) == expected


def test_chunk_scope_with_chunk_size_one_equals_task_scope():
    a = draw_on("local", rng_seed=8, task_chunk_size=1)
    b = draw_on("local", rng_seed=8, rng_scope="task", task_chunk_size=N)
    assert a == b


def test_auto_seed_is_recorded_and_replays():
    job = rx_exec(tasks.draw, times_to_run=4, rng_seed="auto", wait=False)
    first = job.result()
    assert isinstance(job.rng_seed, int) and job.rng_seed >= 0
    assert rx_exec(tasks.draw, times_to_run=4, rng_seed=job.rng_seed) == first
    other = rx_exec(tasks.draw, times_to_run=4, rng_seed="auto", wait=False)
    assert other.result() != first and other.rng_seed != job.rng_seed


def test_kind_without_seed_draws_a_fresh_seed():
    job = rx_exec(tasks.draw, times_to_run=2, rng_kind="auto", wait=False)
    job.result()
    assert job.rng_seed is not None and job.plan.rng.kind == "PCG64"


def test_unseeded_tasks_still_get_a_generator():
    out = rx_exec(tasks.draw, times_to_run=3)
    assert len({tuple(v) for v in out}) == 3


def test_rng_outside_a_task_raises():
    with pytest.raises(RuntimeError, match="inside a task"):
        rxspark.rng()


@pytest.mark.skipif(not HAVE_MKL, reason="mkl-random (extra 'mkl') is not installed")
def test_mt2203_substream_limit():
    with pytest.raises(RxArgumentError, match="6024"):
        rx_exec(tasks.constant, times_to_run=6025, rng_seed=1, rng_kind="MT2203", rng_scope="task")
    # 6024 streams are fine: one per chunk.
    assert len(rx_exec(tasks.constant, times_to_run=6025, task_chunk_size=2, rng_seed=1, rng_kind="MT2203")) == 6025


@pytest.mark.parametrize("kind", KINDS)
def test_streams_are_independent(kind):
    """The guide's check: 5 streams x 500 uniforms, |correlation| < 0.3, for 20 seeds."""
    for seed in range(20):
        draws = rx_exec(tasks.uniforms, 500, times_to_run=5, rng_seed=seed, rng_kind=kind, rng_scope="task")
        corr = np.corrcoef(np.vstack(draws))
        np.fill_diagonal(corr, 0)
        assert np.abs(corr).max() < 0.3, (kind, seed)


@pytest.mark.parametrize("kind", KINDS)
def test_many_streams_of_one_job_look_independent(kind):
    """40 groups of 5 streams x 500 uniforms: |r| > 0.1 in about 20% of groups for independent streams."""
    draws = rx_exec(tasks.uniforms, 500, times_to_run=200, rng_seed=2024, rng_kind=kind, rng_scope="task")
    largest = []
    for g in range(40):
        corr = np.corrcoef(np.vstack(draws[5 * g : 5 * g + 5]))
        np.fill_diagonal(corr, 0)
        largest.append(np.abs(corr).max())
    assert max(largest) < 0.3
    assert sum(v > 0.1 for v in largest) < 20


def test_streams_of_one_job_do_not_repeat():
    draws = rx_exec(tasks.uniforms, 100, times_to_run=50, rng_seed=3, rng_scope="task")
    firsts = [tuple(np.round(d[:4], 12)) for d in draws]
    assert len(set(firsts)) == 50
    for a, b in itertools.combinations(range(10), 2):
        assert not np.array_equal(draws[a], draws[b])


def test_seed_global_rngs_off_keeps_rng_reproducible_and_leaves_globals_alone():
    before = rxspark.rx_options()["seed_global_rngs"]
    try:
        rxspark.rx_options(seed_global_rngs=False)
        a = rx_exec(tasks.draw, times_to_run=6, rng_seed=3, rng_scope="task", task_chunk_size=4)
        b = rx_exec(tasks.draw, times_to_run=6, rng_seed=3, rng_scope="task", task_chunk_size=1)
        random.seed(5)
        expected = [random.random() for _ in range(3)]
        random.seed(5)
        drawn = rx_exec(tasks.draw_globals, size=1, times_to_run=3, rng_seed=3)
        assert [d[0] for d in drawn] == expected  # the caller's random state was used, not reseeded
    finally:
        rxspark.rx_options(seed_global_rngs=before)
    assert a == b == rx_exec(tasks.draw, times_to_run=6, rng_seed=3, rng_scope="task")
    with pytest.raises(rxspark.RxArgumentTypeError, match="seed_global_rngs"):
        rxspark.rx_options(seed_global_rngs="no")
