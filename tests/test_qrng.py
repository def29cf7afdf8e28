"""Quasi-random rng kinds SOBOL and NIEDERR.

The sequences against independent references (SciPy's own Sobol' engine; GSL's
``gsl_qrng_niederreiter_2`` through ctypes, plus points GSL printed, hard-coded),
their net property, the streams on every compute context (stream ``i`` is the
sequence from ``i * qrng_stream_points``), and the errors for bad input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import itertools
import random
import sys
import time
import warnings

import cloudpickle
import numpy as np
import pytest

import rxspark
from rxspark import (
    RxArgumentError,
    RxArgumentTypeError,
    RxMissingExtraError,
    RxTaskError,
    RxTaskFailureWarning,
    qrng,
    rx_elem_arg,
    rx_exec,
    rx_options,
)
from rxspark.rng import QUASI_KINDS, QuasiStream

# Spark workers do not see the tests' sys.path: the task functions below travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

HAVE_SCIPY = importlib.util.find_spec("scipy") is not None
needs_scipy = pytest.mark.skipif(not HAVE_SCIPY, reason="SciPy (extra 'qmc') is not installed")
KINDS = [pytest.param(k, marks=needs_scipy) for k in QUASI_KINDS]


# ---------------------------------------------------------------- references


def _load_gsl():
    """GSL's quasi-random generators through ctypes (Debian: package libgsl27), or None."""
    for cblas in filter(None, [ctypes.util.find_library("gslcblas"), "libgslcblas.so.0"]):
        try:  # libgsl leaves its CBLAS symbols to whoever loaded first
            ctypes.CDLL(cblas, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError:
            pass
    for name in filter(None, [ctypes.util.find_library("gsl"), "libgsl.so.27"]):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.gsl_set_error_handler_off.restype = ctypes.c_void_p
        lib.gsl_set_error_handler_off()  # GSL's default handler aborts the process
        lib.gsl_qrng_alloc.restype = ctypes.c_void_p
        lib.gsl_qrng_alloc.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.gsl_qrng_get.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]
        lib.gsl_qrng_free.argtypes = [ctypes.c_void_p]
        return lib
    return None


GSL = _load_gsl()
needs_gsl = pytest.mark.skipif(
    GSL is None,
    reason="GSL (libgsl.so.27, Debian package libgsl27) is not installed: NIEDERR is checked against "
    "the hard-coded GSL points only",
)


def gsl_niederreiter(d: int, n: int) -> np.ndarray:
    """The first ``n`` points of GSL's ``gsl_qrng_niederreiter_2`` in ``d`` dimensions."""
    kind = ctypes.c_void_p.in_dll(GSL, "gsl_qrng_niederreiter_2").value
    q = GSL.gsl_qrng_alloc(kind, d)
    assert q, "gsl_qrng_alloc failed"
    try:
        out = np.empty((n, d))
        x = (ctypes.c_double * d)()
        for i in range(n):
            assert GSL.gsl_qrng_get(q, x) == 0
            out[i] = x[:]
    finally:
        GSL.gsl_qrng_free(q)
    return out


def scipy_sobol(d: int, start: int, n: int) -> np.ndarray:
    """``n`` points from ``start`` of SciPy's unscrambled Sobol' engine (default 30 bits), positioned by its own
    public, stepping ``fast_forward``."""
    from scipy.stats import qmc

    engine = qmc.Sobol(d, scramble=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "balance properties ... power of 2"
        if start:
            engine.fast_forward(start)
        return engine.random(n)


def reference(kind: str, d: int, start: int, n: int) -> np.ndarray:
    if kind == "SOBOL":
        return scipy_sobol(d, start, n)
    if GSL is not None and start + n <= 20000:
        return gsl_niederreiter(d, start + n)[start:]
    return qrng.Niederreiter2(d, start).draw(n)


# Points 1..5, 1000 and 1023 of gsl_qrng_niederreiter_2 in 12 dimensions, as printed by GSL 2.7.1
# (Debian libgsl27), times 2**31. Point 0 is the origin.
GSL_NIEDERREITER_12 = {
    1: [1073741824, 1073741824, 1610612736, 1879048192, 1879048192, 2013265920,
        2013265920, 2013265920, 2080374784, 2080374784, 2080374784, 2080374784],
    2: [1610612736, 536870912, 671088640, 301989888, 301989888, 142606336,
        142606336, 142606336, 69206016, 69206016, 69206016, 69206016],
    3: [536870912, 1610612736, 1207959552, 1644167168, 1644167168, 1887436800,
        1887436800, 1887436800, 2015363072, 2015363072, 2015363072, 2015363072],
    4: [805306368, 805306368, 1879048192, 603979776, 872415232, 285212672,
        419430400, 419430400, 138412032, 138412032, 138412032, 205520896],
    5: [1879048192, 1879048192, 268435456, 1409286144, 1140850688, 1761607680,
        1627389952, 1627389952, 1950351360, 1950351360, 1950351360, 1883242496],
    1000: [471859200, 207618048, 1657274368, 821559296, 1693974528, 519077888,
           49315840, 904953856, 193921024, 2123300864, 1850671104, 1785659392],
    1023: [2097152, 1616904192, 2127036416, 1152909312, 1387790336, 863010816,
           393248768, 946896896, 1592721408, 669974528, 858718208, 655294464],
}  # fmt: skip

# The polynomials of TOMS 738's base-2 tables (bit k = coefficient of x**k): the 12 of GSL's
# niederreiter-2.c (x, 1+x, 1+x+x^2, 1+x+x^3, 1+x^2+x^3, ...) and the 8 that Burkardt's port of
# TOMS 738 (niederreiter2, 20 dimensions, "the same order as gfplys.dat") adds.
TOMS738_POLYNOMIALS = (2, 3, 7, 11, 13, 19, 25, 31, 37, 41, 47, 55, 59, 61, 67, 73, 87, 91, 97, 103)


# ---------------------------------------------------------------- NIEDERR against GSL


def test_niederreiter_matches_the_hard_coded_gsl_points():
    x = qrng.Niederreiter2(12).integers(1024)
    assert not x[0].any()
    for k, point in GSL_NIEDERREITER_12.items():
        assert x[k].tolist() == point, k
    for d in range(1, 12):  # the first d coordinates do not depend on how many there are
        assert np.array_equal(qrng.Niederreiter2(d).integers(1024), x[:, :d])


@needs_gsl
@pytest.mark.parametrize("d", range(1, 13))
def test_niederreiter_matches_gsl_bit_for_bit(d):
    expected = gsl_niederreiter(d, 1500)
    assert np.array_equal(qrng.Niederreiter2(d).draw(1500), expected)
    for start in (1, 7, 512, 999):  # started there directly (Gray code), not by stepping
        assert np.array_equal(qrng.Niederreiter2(d, start).draw(1500 - start), expected[start:])


@needs_gsl
def test_niederreiter_matches_gsl_across_high_bits():
    expected = gsl_niederreiter(12, 2**17 + 3)
    for start in (2**16 - 1, 2**16, 2**17 - 2):
        assert np.array_equal(qrng.Niederreiter2(12, start).draw(2**17 + 3 - start), expected[start:])


def test_niederreiter_polynomials_are_toms738s():
    assert qrng.irreducible_polynomials(20) == TOMS738_POLYNOMIALS


def test_niederreiter_starts_anywhere_as_if_stepped_there():
    whole = qrng.Niederreiter2(5, 2**30 - 100).draw(300)
    seq = qrng.Niederreiter2(5, 2**30 - 100)
    parts = np.concatenate([seq.draw(1), seq.draw(0), seq.draw(150), seq.draw(149)])
    assert np.array_equal(whole, parts)
    assert np.array_equal(qrng.Niederreiter2(5, 2**30 + 50).draw(10), whole[150:160])
    last = qrng.Niederreiter2(3, 2**31 - 1).draw(1)
    assert ((last > 0) & (last < 1)).all()
    with pytest.raises(ValueError, match="2\\*\\*31 points"):
        qrng.Niederreiter2(3, 2**31 - 1).draw(2)


# ---------------------------------------------------------------- SOBOL against SciPy


@needs_scipy
@pytest.mark.parametrize("d", [1, 2, 5, 40])
def test_sobol_is_scipys_unscrambled_sequence_from_the_stream_offset(d):
    points = 2**20
    for index in (0, 1, 3):
        stream = QuasiStream("SOBOL", index, points)
        got = np.concatenate([stream.random(1, d).reshape(1, d), stream.random(999, d).reshape(999, d)])
        assert np.array_equal(got, scipy_sobol(d, index * points, 1000)), index


@needs_scipy
def test_sobol_seek_sets_scipys_state_directly():
    # The direct Gray-code state must equal the state SciPy's stepping fast_forward reaches.
    for start in (1, 2, 3, 1000, 2**24 + 7):
        seq = qrng.SobolSequence(6, start)
        assert seq.position == start
        assert np.array_equal(seq.draw(100), scipy_sobol(6, start, 100)), start
    t0 = time.perf_counter()
    far = qrng.SobolSequence(6, 2**52).draw(10)  # stepping there would take years
    assert time.perf_counter() - t0 < 1.0 and ((far >= 0) & (far < 1)).all()


# ---------------------------------------------------------------- the net property


def _cells(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Index of the elementary interval [i/2^a, (i+1)/2^a) x [j/2^b, (j+1)/2^b) of each 2-D point."""
    i = np.floor(x[:, 0] * 2**a).astype(np.int64)
    j = np.floor(x[:, 1] * 2**b).astype(np.int64)
    return (i << b) + j


def assert_net(x: np.ndarray, m: int, t: int = 0) -> None:
    """``x`` (2**m points, 2-D) has exactly 2**t points in each elementary interval of area 2**(t - m)."""
    assert len(x) == 2**m
    for a in range(m - t + 1):
        counts = np.bincount(_cells(x, a, m - t - a), minlength=2 ** (m - t))
        assert (counts == 2**t).all(), f"m={m}, shape 2^-{a} x 2^-{m - t - a}: counts {sorted(set(counts.tolist()))}"


@pytest.mark.parametrize("kind", [pytest.param("SOBOL", marks=needs_scipy), "NIEDERR"])
def test_every_aligned_block_of_2_to_the_m_points_is_a_0_m_2_net(kind):
    sequence = qrng.SEQUENCES[kind]
    head = sequence(2, 0).draw(2**12)
    for m in range(11):
        size = 2**m
        for block in range(2**12 // size):  # every aligned block of the first 4096 points
            assert_net(head[block * size : (block + 1) * size], m)
        for start in (5 * 2**20, 2**30 - size, 123457 * size):  # and blocks far out: stream 5, near 2**30 ...
            assert_net(sequence(2, start).draw(size), m)


def test_niederreiter_pairs_of_dimensions_up_to_20_are_nets_with_their_t():
    # Dimensions i and j are built on polynomials of degrees e_i and e_j: together a (t, 2)-sequence
    # with t = e_i + e_j - 2, so each aligned block of 2**m points has 2**t points in each elementary
    # interval of area 2**(t - m). This is what checks dimensions 13..20, where GSL stops.
    degrees = [p.bit_length() - 1 for p in qrng.irreducible_polynomials(qrng.NIEDERR_MAX_DIM)]
    x = qrng.Niederreiter2(qrng.NIEDERR_MAX_DIM).draw(2**12)
    far = qrng.Niederreiter2(qrng.NIEDERR_MAX_DIM, 3 * 2**20).draw(2**12)
    for i, j in itertools.combinations(range(qrng.NIEDERR_MAX_DIM), 2):
        t = degrees[i] + degrees[j] - 2
        for m in range(t, 13):
            for points in (x, far):
                assert_net(points[: 2**m, [i, j]], m, t)
                assert_net(points[-(2**m) :, [i, j]], m, t)


# ---------------------------------------------------------------- streams on every context


def draw_points(_: int, n: int, d: int) -> np.ndarray:
    return rxspark.rng().random(n, d)


def draw_mapped(_: int) -> tuple:
    g = rxspark.rng()
    return (
        g.random(3, 2),
        g.uniform(-1.0, 3.0, size=(4, 2)),
        g.normal(10.0, [1.0, 2.0], size=(5, 2)),
        g.uniform(0.5, size=(2, 2)),
    )


def draw_with_globals(_: int) -> tuple:
    return rxspark.rng().random(4), random.random(), float(np.random.random())


def draw_past_the_stream(n: int) -> int:
    g = rxspark.rng()
    g.random(n)
    return g.position - g.start


@pytest.fixture
def stream_points():
    """Set qrng_stream_points for one test (on the driver only: it travels with the job)."""
    before = rx_options()["qrng_stream_points"]
    yield lambda value: rx_options(qrng_stream_points=value)
    rx_options(qrng_stream_points=before)


@pytest.mark.parametrize("kind", KINDS)
def test_task_scope_stream_i_is_the_sequence_from_i_times_qrng_stream_points(cc, kind, stream_points):
    stream_points(2**12)
    out = rx_exec(draw_points, rx_elem_arg(range(5)), n=300, d=3, rng_seed=11, rng_kind=kind, rng_scope="task",
                  task_chunk_size=2, compute_context=cc)
    for i, points in enumerate(out):
        assert np.array_equal(points, reference(kind, 3, i * 2**12, 300)), i


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_scope_tasks_of_a_chunk_read_the_chunks_stream_in_order(cc, kind, stream_points):
    stream_points(2**11)
    out = rx_exec(draw_points, rx_elem_arg(range(6)), n=100, d=2, rng_seed=3, rng_kind=kind, task_chunk_size=2,
                  compute_context=cc)
    for task, points in enumerate(out):
        chunk, local = divmod(task, 2)
        assert np.array_equal(points, reference(kind, 2, chunk * 2**11 + local * 100, 100)), task


@pytest.mark.parametrize("kind", KINDS)
def test_uniform_and_normal_map_the_same_points(cc, kind):
    (first, uniform, normal, half), = rx_exec(draw_mapped, rx_elem_arg([0]), rng_seed=5, rng_kind=kind,
                                              rng_scope="task", compute_context=cc)
    x = reference(kind, 2, 0, 14)
    from scipy.special import ndtri

    assert np.array_equal(first, x[:3])
    assert np.array_equal(uniform, -1.0 + 4.0 * x[3:7])
    assert np.allclose(normal, 10.0 + np.array([1.0, 2.0]) * ndtri(x[7:12]), rtol=0, atol=1e-12)
    assert np.array_equal(half, 0.5 + 0.5 * x[12:14])


@needs_scipy
@pytest.mark.spark
def test_the_default_stream_offset_is_2_to_the_20_also_on_spark_workers(spark_local):
    assert rx_options()["qrng_stream_points"] == 2**20
    out = rx_exec(draw_points, rx_elem_arg(range(3)), n=50, d=4, rng_seed=1, rng_kind="SOBOL", rng_scope="task",
                  compute_context=spark_local)
    for i, points in enumerate(out):
        assert np.array_equal(points, scipy_sobol(4, i * 2**20, 50))


@needs_scipy
def test_the_points_do_not_depend_on_the_seed_but_the_global_states_do():
    def run(seed):
        return rx_exec(draw_with_globals, rx_elem_arg(range(3)), rng_seed=seed, rng_kind="NIEDERR", rng_scope="task")

    a, b, again = run(1), run(2), run(1)
    for x, y, z in zip(a, b, again):
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[0], z[0])  # same points whatever the seed
        assert x[1:] != y[1:] and x[1:] == z[1:]  # random / numpy.random: seeded from (seed, index) as ever
    job = rx_exec(draw_with_globals, rx_elem_arg(range(3)), rng_kind="SOBOL", rng_scope="task", wait=False)
    assert job.rng_seed is not None and job.rng_kind == "SOBOL"  # no seed: a fresh one, recorded for replay
    assert all(np.array_equal(x[0], reference("SOBOL", 1, i * 2**20, 4)[:, 0]) for i, x in enumerate(job.result()))


@needs_scipy
def test_shapes_of_each_draw():
    g = QuasiStream("NIEDERR", 2, 2**10)
    assert isinstance(g.random(), float) and g.position == 2 * 2**10 + 1
    assert g.random(5).shape == (5,) and g.random(0).shape == (0,)
    assert isinstance(g.uniform(), float) and isinstance(g.normal(), float)
    assert g.uniform(size=3).shape == (3,) and g.normal(size=(3,)).shape == (3,)
    assert g.uniform(size=(3, 1)).shape == (3, 1) and g.normal(size=[2, 1]).shape == (2, 1)
    h = QuasiStream("SOBOL", 0, 2**10)
    assert h.random(4, 3).shape == (4, 3) and h.random(None, 3).shape == (3,)
    assert h.uniform(size=(2, 3)).shape == (2, 3) and h.normal(size=(np.int64(2), np.int64(3))).shape == (2, 3)
    assert h.d == 3 and h.position == 4 + 1 + 2 + 2


@needs_scipy
def test_normal_takes_the_origin_as_the_centre_of_the_finest_cell():
    from scipy.special import ndtri

    for kind, bits in (("SOBOL", 53), ("NIEDERR", 31)):
        z = QuasiStream(kind, 0, 2**10).normal(size=(2, 3))
        assert np.isfinite(z).all()
        assert np.array_equal(z[0], np.full(3, ndtri(2.0 ** -(bits + 1))))


def test_drawing_1e5_points_is_fast():
    t0 = time.perf_counter()
    x = qrng.Niederreiter2(12, 777).draw(10**5)
    assert time.perf_counter() - t0 < 2.0 and x.shape == (10**5, 12)


# ---------------------------------------------------------------- bad input


@needs_scipy
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda g: g.uniform(size=(2, 3, 4)), "size must be None"),
        (lambda g: g.uniform(size=(3, 0)), "size=\\(n, d\\) needs a positive int d"),
        (lambda g: g.uniform(size=(3, -2)), "size=\\(n, d\\) needs a positive int d"),
        (lambda g: g.uniform(size=-1), "size must be a non-negative int"),
        (lambda g: g.random(-5), "n must be a non-negative int"),
        (lambda g: g.random(4, 0), "d=0 is out of range"),
        (lambda g: g.random(4, 21), "d=21 is out of range: rng_kind='NIEDERR' has 1 to 20 dimensions"),
        (lambda g: g.uniform([0, 1, 2], size=(4, 2)), "low and high must broadcast"),
        (lambda g: g.normal(0.0, np.ones(3), size=5), "loc and scale must broadcast"),
    ],
)
def test_bad_arguments_are_errors_naming_the_argument(call, match):
    g = QuasiStream("NIEDERR", 0, 2**10)
    with pytest.raises(RxArgumentError, match=match):
        call(g)
    assert g.position == 0 and g.d is None  # nothing drawn, nothing fixed


@needs_scipy
@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.random(2.5),
        lambda g: g.random(True),
        lambda g: g.random(3, 2.0),
        lambda g: g.uniform(size=1.0),
        lambda g: g.normal(size="10"),
        lambda g: g.random((3, 2)),
    ],
)
def test_bad_argument_types_are_type_errors(call):
    with pytest.raises(RxArgumentTypeError, match="(n|d|size) must be (a non-negative int|a positive int|None)"):
        call(QuasiStream("SOBOL", 0, 2**10))


@needs_scipy
def test_sobol_dimension_limit():
    with pytest.raises(RxArgumentError, match="d=21202 is out of range: rng_kind='SOBOL' has 1 to 21201 dimensions"):
        QuasiStream("SOBOL", 0, 2**10).random(1, 21202)
    assert QuasiStream("SOBOL", 0, 2**10).random(2, 21201).shape == (2, 21201)


@needs_scipy
@pytest.mark.parametrize("kind", QUASI_KINDS)
def test_another_d_after_the_first_draw_is_an_error(kind):
    g = QuasiStream(kind, 0, 2**10)
    g.uniform(size=(4, 2))
    with pytest.raises(RxArgumentError, match="d=3, but this stream's first draw fixed d=2"):
        g.random(4, 3)
    with pytest.raises(RxArgumentError, match="d=1, but this stream's first draw fixed d=2"):
        g.normal(size=4)
    assert g.random(1, 2).shape == (1, 2) and g.position == 5


@needs_scipy
def test_another_d_in_a_later_task_of_the_same_chunk_is_a_task_error():
    def two_dims(d):
        return rxspark.rng().random(3, d)

    with pytest.warns(RxTaskFailureWarning, match="1 of 2 tasks"):
        out = rx_exec(two_dims, rx_elem_arg([2, 3]), rng_seed=1, rng_kind="SOBOL", task_chunk_size=2)
    assert out[0].shape == (3, 2)
    assert isinstance(out[1], RxTaskError) and out[1].exc_type == "RxArgumentError" and "fixed d=2" in out[1].message
    assert all(x.shape == (3, d) for x, d in zip(rx_exec(two_dims, rx_elem_arg([2, 3]), rng_seed=1, rng_kind="SOBOL",
                                                         rng_scope="task"), (2, 3)))


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "1024", None])
def test_qrng_stream_points_must_be_a_positive_int(value):
    before = rx_options()["qrng_stream_points"]
    with pytest.raises(RxArgumentError, match="qrng_stream_points must be a positive int"):
        rx_options(qrng_stream_points=value)
    assert rx_options()["qrng_stream_points"] == before


@needs_scipy
def test_more_streams_than_the_sequence_has_room_for_is_an_argument_error(stream_points):
    def never(_):  # pragma: no cover - must not run
        raise AssertionError("ran")

    stream_points(2**30)  # NIEDERR has 2**31 points: room for two streams
    with pytest.raises(RxArgumentError, match="room for 2 streams of rx_options\\(\\)\\['qrng_stream_points'\\]"):
        rx_exec(never, rx_elem_arg(range(3)), rng_seed=1, rng_kind="NIEDERR", rng_scope="task")
    assert rx_exec(len, rx_elem_arg(["ab", "c"]), rng_seed=1, rng_kind="NIEDERR", rng_scope="task") == [2, 1]
    stream_points(2**32)
    with pytest.raises(RxArgumentError, match="room for 0 streams"):
        rx_exec(never, rx_elem_arg(range(1)), rng_seed=1, rng_kind="NIEDERR")
    assert rx_exec(draw_points, rx_elem_arg([0]), n=2, d=1, rng_seed=1, rng_kind="SOBOL")[0].shape == (2,)


def test_missing_scipy_is_reported_on_the_driver(monkeypatch):
    def no_scipy():
        raise ImportError("No module named 'scipy'")

    monkeypatch.setattr(qrng, "scipy_qmc", no_scipy)
    for kind in QUASI_KINDS:
        with pytest.raises(RxMissingExtraError, match="need SciPy: pip install 'rxspark\\[qmc\\]'"):
            rx_exec(len, rx_elem_arg(["a"]), rng_seed=1, rng_kind=kind)


@needs_scipy
def test_other_generator_methods_say_what_a_quasi_stream_offers():
    with pytest.raises(AttributeError, match="has no 'integers': it offers random\\(n, d\\), uniform"):
        QuasiStream("SOBOL", 0, 2**10).integers(0, 6)


# ---------------------------------------------------------------- drawing past the stream


@needs_scipy
@pytest.mark.parametrize("kind", QUASI_KINDS)
def test_a_task_drawing_more_than_its_stream_owns_fails_naming_the_option(kind, stream_points):
    stream_points(1000)
    with pytest.warns(RxTaskFailureWarning):
        ok, over = rx_exec(draw_past_the_stream, rx_elem_arg([1000, 1001]), rng_seed=1, rng_kind=kind,
                           rng_scope="task")
    assert ok == 1000
    assert isinstance(over, RxTaskError) and over.exc_type == "RxArgumentError"
    assert "stream 1 owns rx_options()['qrng_stream_points'] = 1000 points (sequence points 1000..1999)" in over.message
    assert "set a larger rx_options(qrng_stream_points=...)" in over.message
    # rng_scope="chunk": the tasks of a chunk share its stream's points.
    with pytest.warns(RxTaskFailureWarning):
        first, second = rx_exec(draw_past_the_stream, rx_elem_arg([600, 600]), rng_seed=1, rng_kind=kind,
                                task_chunk_size=2)
    assert first == 600 and isinstance(second, RxTaskError) and "it has drawn 600" in second.message
    with pytest.raises(RxTaskError, match="qrng_stream_points") as info:
        rx_exec(draw_past_the_stream, rx_elem_arg([1001]), rng_seed=1, rng_kind=kind, continue_on_failure=False)
    assert isinstance(info.value.__cause__, RxArgumentError)
