"""The quasi-random sequences behind ``rng_kind="SOBOL"`` and ``"NIEDERR"``: point ``k`` onwards, from any ``k``.

Both are digital sequences in base 2 taken in Gray-code order: with generator
columns ``C[0], C[1], ...`` (one ``bits``-bit integer per dimension each), point
``k`` is the XOR of the columns picked by the set bits of ``gray(k) = k ^ (k >> 1)``,
divided by ``2**bits``. Point 0 is the origin. Consecutive points differ by one
column, ``x(k) = x(k - 1) ^ C[ctz(k)]``, so ``n`` points cost one XOR scan, and a
stream can start at any index without stepping there.

* ``NIEDERR``: Niederreiter's base-2 sequence as constructed and programmed by
  Bratley, Fox and Niederreiter, "Algorithm 738: Programs to generate
  Niederreiter's low-discrepancy sequences", ACM TOMS 20(4), 1994 (routines
  CALCC2/CALCV2/GOLO2; GSL's ``gsl_qrng_niederreiter_2`` is the same program):
  dimension ``i`` uses the ``i``-th irreducible polynomial over GF(2) in increasing
  order (x, 1+x, 1+x+x^2, 1+x+x^3, ...), 31-bit digits, every free choice of the
  construction set to 1. Implemented here (neither NumPy nor SciPy has it); the
  tests check it against GSL bit for bit. Up to :data:`NIEDERR_MAX_DIM` = 20
  dimensions: TOMS 738's base-2 program stops at 12 (as GSL does); its general
  program reads the polynomials from a table (``gfplys.dat``) in this same order,
  and Burkardt's port of it (``niederreiter2``) tabulates the first 20, which this
  order reproduces. The tests check the (t, m, 2)-net property of every pair of
  dimensions up to 20 (t = deg p_i + deg p_j - 2).
* ``SOBOL``: SciPy's unscrambled ``scipy.stats.qmc.Sobol`` (Joe and Kuo's direction
  numbers), 53-bit, drawn by SciPy itself. ``Sobol.fast_forward`` steps through
  every skipped point (about 7 ms per 2**20 points at d=5), so a stream starting
  ``i * 2**20`` points in would pay for ``i`` of those: the engine is instead put
  at its start by setting its state to the Gray-code point directly, from SciPy's
  own direction numbers.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

NIEDERR_BITS = 31
NIEDERR_MAX_DIM = 20
SOBOL_BITS = 53  # floats are exact, and 2**53 points leave room for 2**33 streams of 2**20
SOBOL_MAX_DIM = 21201  # scipy.stats.qmc.Sobol.MAXDIM


# ----------------------------------------------------------- GF(2) polynomials
# A polynomial over GF(2) is an int whose bit k is the coefficient of x**k.


def _degree(p: int) -> int:
    return p.bit_length() - 1


def _mul(a: int, b: int) -> int:
    """Carry-less product: the product of two polynomials over GF(2)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        b >>= 1
    return out


def _mod(a: int, m: int) -> int:
    dm = _degree(m)
    while a and _degree(a) >= dm:
        a ^= m << (_degree(a) - dm)
    return a


@functools.cache
def irreducible_polynomials(count: int) -> tuple[int, ...]:
    """The first ``count`` irreducible polynomials over GF(2), in increasing order (2 = x, 3 = 1 + x, 7, 11, ...)."""
    found: list[int] = []
    p = 2
    while len(found) < count:
        deg = _degree(p)
        if all(_mod(p, q) for q in found if 2 * _degree(q) <= deg):
            found.append(p)
        p += 1
    return tuple(found)


def _niederreiter_columns(p: int, bits: int = NIEDERR_BITS) -> list[int]:
    """The ``bits`` generator columns of the dimension built on the irreducible polynomial ``p``.

    Column ``r`` is a ``bits``-bit integer whose most significant bit is digit 1
    of the coordinate. Rows (digits) ``j`` come in groups of ``e = deg(p)`` that share
    one sequence ``v`` (TOMS 738 section 3.3): for the ``J``-th group, ``b = p**J``,
    ``v`` is 0 below ``deg(p**(J-1))``, 1 from there to ``deg(b) - 1``, and continues
    by the linear recurrence whose characteristic polynomial is ``b``; row ``j`` is ``v``
    shifted by ``j mod e``.
    """
    e = _degree(p)
    size = bits + e + 1
    rows: list[list[int]] = []
    b = 1
    v: list[int] = []
    for j in range(bits):
        u = j % e
        if u == 0:
            low = _degree(b)  # deg p**(J-1)
            b = _mul(b, p)
            m = _degree(b)
            v = [0] * max(size, m)
            for r in range(low, m):
                v[r] = 1
            taps = [k for k in range(m) if (b >> k) & 1]
            for r in range(len(v) - m):
                acc = 0
                for k in taps:
                    acc ^= v[r + k]
                v[r + m] = acc
        rows.append(v[u : u + bits])
    return [sum(rows[j][r] << (bits - 1 - j) for j in range(bits)) for r in range(bits)]


@functools.cache
def _niederreiter_table() -> np.ndarray:
    """Generator columns of every supported dimension: ``table[r, i]`` is column ``r`` of dimension ``i``."""
    polys = irreducible_polynomials(NIEDERR_MAX_DIM)
    table = np.array([_niederreiter_columns(p) for p in polys], dtype=np.uint32).T
    table.setflags(write=False)
    return table


def _trailing_zeros(k: np.ndarray) -> np.ndarray:
    """Number of trailing zero bits of each (positive) int64 in ``k``."""
    lowest = (k & -k).astype(np.float64)  # a power of two: exact as a float
    return np.frexp(lowest)[1] - 1


def _gray_point(columns: np.ndarray, k: int) -> np.ndarray:
    """Point ``k`` as integers: XOR of the columns selected by the bits of ``gray(k)``."""
    gray = k ^ (k >> 1)
    picked = [r for r in range(gray.bit_length()) if (gray >> r) & 1]
    if not picked:
        return np.zeros(columns.shape[1], dtype=columns.dtype)
    return np.bitwise_xor.reduce(columns[picked], axis=0)


# ------------------------------------------------------------------ sequences


class Niederreiter2:
    """Niederreiter's base-2 sequence in ``d`` dimensions, read forward from point ``start``.

    Args:
        d: Dimensions, ``1 <= d <= NIEDERR_MAX_DIM``.
        start: Index of the first point :meth:`draw` returns (0 is the origin).
    """

    bits = NIEDERR_BITS
    max_dim = NIEDERR_MAX_DIM
    max_points = 2**NIEDERR_BITS

    def __init__(self, d: int, start: int = 0) -> None:
        if not 1 <= d <= self.max_dim:
            raise ValueError(f"Niederreiter2: d must be in 1..{self.max_dim}, got {d}")
        if not 0 <= start <= self.max_points:
            raise ValueError(f"Niederreiter2: start must be in 0..2**{self.bits}, got {start}")
        self.d = d
        self._columns = _niederreiter_table()[:, :d]
        self.position = start

    def integers(self, n: int) -> np.ndarray:
        """The next ``n`` points as ``bits``-bit integers, shape ``(n, d)``."""
        k0 = self.position
        if k0 + n > self.max_points:
            raise ValueError(f"Niederreiter2: the sequence has 2**{self.bits} points; points {k0}..{k0 + n - 1} asked for")
        out = np.empty((n, self.d), dtype=np.uint32)
        if n:
            out[0] = _gray_point(self._columns, k0)
            out[1:] = self._columns[_trailing_zeros(np.arange(k0 + 1, k0 + n, dtype=np.int64))]
            np.bitwise_xor.accumulate(out, axis=0, out=out)
        self.position = k0 + n
        return out

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` points in ``[0, 1)``, shape ``(n, d)``."""
        return self.integers(n) * (1.0 / self.max_points)


def scipy_qmc() -> Any:
    """``scipy.stats.qmc``, or ImportError (rng.py turns it into the extra's message)."""
    from scipy.stats import qmc

    return qmc


class SobolSequence:
    """SciPy's unscrambled Sobol' sequence in ``d`` dimensions, read forward from point ``start``."""

    bits = SOBOL_BITS
    max_dim = SOBOL_MAX_DIM
    max_points = 2**SOBOL_BITS

    def __init__(self, d: int, start: int = 0) -> None:
        if not 1 <= d <= self.max_dim:
            raise ValueError(f"SobolSequence: d must be in 1..{self.max_dim}, got {d}")
        if not 0 <= start <= self.max_points:
            raise ValueError(f"SobolSequence: start must be in 0..2**{self.bits}, got {start}")
        self.d = d
        self._engine = scipy_qmc().Sobol(d, scramble=False, bits=self.bits)
        if start:
            _sobol_seek(self._engine, start)

    @property
    def position(self) -> int:
        return int(self._engine.num_generated)

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` points in ``[0, 1)``, shape ``(n, d)``."""
        engine = self._engine
        if self.position + n > self.max_points:
            raise ValueError(f"SobolSequence: the sequence has 2**{self.bits} points; "
                             f"points {self.position}..{self.position + n - 1} asked for")
        if n == 0:
            return np.empty((0, self.d))
        if engine.num_generated == 0:
            # SciPy warns when a fresh engine's first draw is not a power of two
            # (a net needs 2**m points), but any n is legitimate for a stream; and
            # random(1) of a fresh engine hands out the engine's own first-point
            # array. So: one point (a power of two), copied, then the rest.
            first = engine.random(1).copy()
            return first if n == 1 else np.concatenate([first, engine.random(n - 1)])
        return engine.random(n)


def _sobol_seek(engine: Any, k: int) -> None:
    """Put a fresh unscrambled SciPy Sobol engine at point ``k`` (the next one drawn).

    SciPy's engine keeps the last point drawn as integers (``_quasi``) and the
    count drawn (``num_generated``), and steps with its direction numbers ``_sv``
    (``(d, bits)``, column ``b`` flipped when bit ``b`` of the Gray code changes):
    so being at ``k`` means holding point ``k - 1``, which is the Gray-code XOR of
    the columns. Without those attributes (another SciPy), the public, stepping
    ``fast_forward`` gives the same state, slowly. The tests compare both paths.
    """
    quasi = getattr(engine, "_quasi", None)
    sv = getattr(engine, "_sv", None)
    if (
        isinstance(quasi, np.ndarray)
        and isinstance(sv, np.ndarray)
        and sv.shape == (engine.d, engine.bits)
        and quasi.shape == (engine.d,)
        and engine.num_generated == 0
    ):
        quasi[:] = _gray_point(np.ascontiguousarray(sv.T), k - 1)
        engine.num_generated = k
    else:  # pragma: no cover - only with a SciPy whose Sobol internals differ
        engine.fast_forward(k)


SEQUENCES: dict[str, type] = {"SOBOL": SobolSequence, "NIEDERR": Niederreiter2}
