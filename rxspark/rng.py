"""Reproducible parallel random number streams.

A stream is identified by ``(seed, index)`` where the index is the chunk index
(``rng_scope="chunk"``) or the task index (``rng_scope="task"``). Everything a
task may draw from is derived from that pair alone, so a stream is the same on
every compute context and on every retry of a chunk:

* ``rxspark.rng()``: a ``numpy.random.Generator`` over the chosen bit generator,
  seeded with ``SeedSequence(seed, spawn_key=(index,))`` (NumPy's recommended
  way to make independent parallel streams), or an mkl-random ``MKLRandomState``
  for Intel VSL kinds (MT2203 uses substream ``index`` of the family), or, for
  the quasi-random kinds SOBOL and NIEDERR, a :class:`QuasiStream` over the
  points ``[index * S, (index + 1) * S)`` of the sequence (``S`` =
  ``rx_options()["qrng_stream_points"]``, resolved on the driver);
* the stdlib ``random`` module and NumPy's legacy global state, reseeded at
  each stream start from a keyed hash of the same ``(seed, index)``, so code
  that only uses ``random.random()`` or ``numpy.random.rand()`` is reproducible
  (``rx_options(seed_global_rngs=False)`` skips that for tasks that use only
  ``rng()``: reseeding is most of a stream's cost).

The generator behind ``rng()`` is built lazily: a task that never calls it
pays only for reseeding the two global states.
"""

from __future__ import annotations

import hashlib
import random as _random
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import qrng as _qrng
from .errors import RxArgumentError, RxArgumentTypeError, RxMissingExtraError

NUMPY_KINDS: dict[str, str] = {
    "PCG64": "PCG64",
    "PCG64DXSM": "PCG64DXSM",
    "Philox": "Philox",
    "SFC64": "SFC64",
    "MT19937": "MT19937",
}
# Intel VSL basic generators available through mkl-random (extra "mkl").
VSL_KINDS: tuple[str, ...] = (
    "MT2203",
    "SFMT19937",
    "R250",
    "MCG31",
    "MCG59",
    "MRG32K3A",
    "PHILOX4X32X10",
    "ARS5",
)
# Kinds mkl-random has but rxspark does not offer, and why. A kind that can crash
# the process drawing from it is never offered: a segfault is not an error a task
# can report, it takes the worker (or, on RxLocalSeq, the user's own process) down.
WITHHELD_KINDS: dict[str, str] = {
    "WH": (
        "mkl-random's Wichmann-Hill generator segfaults the process that draws from it on some CPUs "
        "(measured: mkl-random 1.5.0 / MKL 2026.2 on an AMD EPYC, uniform() from a single WH state crashed "
        "3 of 5 fresh processes, whatever the seeding or MKL_ENABLE_INSTRUCTIONS)"
    ),
}
# Quasi-random sequences (rxspark.qrng): SciPy's unscrambled Sobol', Niederreiter base 2.
QUASI_KINDS: tuple[str, ...] = ("SOBOL", "NIEDERR")
ALL_KINDS: tuple[str, ...] = tuple(NUMPY_KINDS) + VSL_KINDS + QUASI_KINDS
DEFAULT_KIND = "PCG64"
MT2203_STREAMS = 6024
SCOPES = ("chunk", "task")


@dataclass(frozen=True)
class RngSpec:
    """What the user asked for, resolved: a concrete seed, kind and scope."""

    seed: int
    kind: str
    scope: str
    seed_globals: bool = True  # reseed random / numpy.random at each stream start
    # Quasi-random kinds: points of the sequence each stream owns. Workers do not
    # see the driver's rx_options, so the value travels with the spec.
    qrng_stream_points: int | None = None
    # rng_scope="task" only: task i draws from stream streams[i] instead of stream i. RxExecutor
    # gives each call the stream of its submission index, whatever batch (job) it runs in.
    streams: tuple[int, ...] | None = None

    def stream_index(self, index: int) -> int:
        """The stream that chunk or task ``index`` draws from."""
        return self.streams[index] if self.streams is not None else index


def resolve(rng_seed: Any, rng_kind: Any, rng_scope: Any) -> RngSpec | None:
    """Validate the RNG arguments of ``rx_exec`` and resolve ``"auto"``.

    Returns ``None`` when no stream control was asked for (no seed and no kind).
    A kind without a seed (or ``"auto"``) draws a fresh seed, which is recorded
    so the run can be replayed.
    """
    if rng_scope not in SCOPES:
        raise RxArgumentError(f"rng_scope must be one of {list(SCOPES)}, got {rng_scope!r}")
    if rng_seed is not None and rng_seed != "auto":
        if isinstance(rng_seed, bool) or not isinstance(rng_seed, (int, np.integer)):
            raise RxArgumentTypeError(
                f"rng_seed must be None, a non-negative int or 'auto', got {type(rng_seed).__name__} {rng_seed!r}"
            )
        if rng_seed < 0:
            raise RxArgumentError(f"rng_seed must be None, a non-negative int or 'auto', got {rng_seed!r}")
    if rng_kind is not None and rng_kind != "auto":
        if not isinstance(rng_kind, str):
            raise RxArgumentTypeError(f"rng_kind must be a string, one of {list(ALL_KINDS)}, got {rng_kind!r}")
        if rng_kind in WITHHELD_KINDS:
            raise RxArgumentError(
                f"rng_kind {rng_kind!r} is not offered: {WITHHELD_KINDS[rng_kind]}; "
                f"valid kinds: {', '.join(ALL_KINDS)} or 'auto'"
            )
        if rng_kind not in ALL_KINDS:
            raise RxArgumentError(f"rng_kind {rng_kind!r} is unknown; valid kinds: {', '.join(ALL_KINDS)} or 'auto'")
        if rng_kind in VSL_KINDS:
            _mkl_random()  # fail now, on the driver, rather than on every worker
        if rng_kind in QUASI_KINDS:
            _scipy_qmc()
    if rng_seed is None and rng_kind is None:
        return None
    from .options import get_option

    seed = secrets.randbits(63) if rng_seed in (None, "auto") else int(rng_seed)
    kind = DEFAULT_KIND if rng_kind in (None, "auto") else rng_kind
    points = get_option("qrng_stream_points") if kind in QUASI_KINDS else None
    return RngSpec(
        seed=seed, kind=kind, scope=rng_scope, seed_globals=get_option("seed_global_rngs"), qrng_stream_points=points
    )


def check_stream_count(spec: RngSpec | None, n_streams: int) -> None:
    if spec is not None and spec.kind == "MT2203" and n_streams > MT2203_STREAMS:
        raise RxArgumentError(
            f"rng_kind='MT2203' has {MT2203_STREAMS} substreams but this call needs {n_streams} "
            f"(one per {spec.scope}); use a larger task_chunk_size, rng_scope='chunk', or another rng_kind"
        )
    if spec is not None and spec.kind in QUASI_KINDS and n_streams:
        sequence = _qrng.SEQUENCES[spec.kind]
        points = spec.qrng_stream_points
        assert points is not None
        room = sequence.max_points // points
        if n_streams > room:
            raise RxArgumentError(
                f"rng_kind={spec.kind!r} has 2**{sequence.bits} points, room for {room} streams of "
                f"rx_options()['qrng_stream_points'] = {points} points, but this call needs {n_streams} "
                f"(one per {spec.scope}); use a smaller qrng_stream_points, a larger task_chunk_size or rng_scope='chunk'"
            )


def _mkl_random() -> Any:
    try:
        import mkl_random
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RxMissingExtraError(
            "Intel VSL rng kinds need mkl-random: pip install 'rxspark[mkl]'"
        ) from exc
    return mkl_random


SCIPY_EXTRA = "qmc"


def _scipy_qmc() -> Any:
    try:
        return _qrng.scipy_qmc()
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RxMissingExtraError(
            f"the quasi-random rng kinds {' and '.join(QUASI_KINDS)} need SciPy: pip install 'rxspark[{SCIPY_EXTRA}]'"
        ) from exc


class Stream:
    """One stream: reseeds the global states at start; builds ``rng()`` on demand."""

    __slots__ = ("spec", "index", "_generator")

    def __init__(self, spec: RngSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        self._generator: Any = None
        if not spec.seed_globals:
            return
        # Seeds for the global states come from a keyed hash of (seed, index):
        # distinct from the SeedSequence behind rng(), and cheap enough to run
        # once per task under rng_scope="task".
        digest = hashlib.blake2b(
            b"%d:%d" % (spec.seed, index), digest_size=20, person=b"rxspark-globals"
        ).digest()
        _random.seed(int.from_bytes(digest[:16], "little"))
        np.random.seed(int.from_bytes(digest[16:], "little"))

    @property
    def generator(self) -> Any:
        if self._generator is None:
            self._generator = _make_generator(self.spec, self.index)
        return self._generator


def _make_generator(spec: RngSpec, index: int) -> Any:
    if spec.kind in QUASI_KINDS:
        assert spec.qrng_stream_points is not None
        return QuasiStream(spec.kind, index, spec.qrng_stream_points)
    if spec.kind in NUMPY_KINDS:
        bitgen = getattr(np.random, NUMPY_KINDS[spec.kind])
        return np.random.Generator(bitgen(np.random.SeedSequence(spec.seed, spawn_key=(index,))))
    mkl_random = _mkl_random()
    words = np.random.SeedSequence(spec.seed, spawn_key=(index,)).generate_state(8, np.uint32)
    if spec.kind == "MT2203":
        # A distinct member of the MT2203 family per stream, each with its own
        # seed: members seeded alike start out correlated (measured: |r| up to 0.5
        # over 5 x 500 draws), members seeded apart do not.
        return mkl_random.MKLRandomState(words, brng=("MT2203", index))
    return mkl_random.MKLRandomState(words, brng=spec.kind)


def _count(value: Any, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise RxArgumentTypeError(f"rng().{what}: {name} must be a non-negative int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise RxArgumentError(f"rng().{what}: {name} must be a non-negative int, got {value!r}")
    return int(value)


class QuasiStream:
    """What ``rxspark.rng()`` returns inside a task under ``rng_kind="SOBOL"`` or ``"NIEDERR"``.

    Stream ``index`` (the chunk or task index, per ``rng_scope``) owns the points
    ``[index * S, (index + 1) * S)`` of the kind's sequence, ``S`` =
    ``rx_options()["qrng_stream_points"]`` (default ``2**20``) on the driver when
    ``rx_exec`` was called; each draw returns the stream's next points, so the
    tasks of a chunk (``rng_scope="chunk"``) read the chunk's points in task order.
    Streams never overlap: drawing past ``S`` points is an error. With ``S`` a
    power of two, every stream starts at a multiple of ``2**m`` for all
    ``2**m <= S``, so its first ``2**m`` points are a net like the sequence's own.

    Streams are consecutive parts of one sequence, not independent streams: the
    k-th points of two streams are close in low dimensions (in the first, both
    sequences' van der Corput coordinate, they differ by less than about
    ``2 / S``). To pool ``T`` streams into one estimate, let each draw all of its
    points, with ``qrng_stream_points`` set to the points per stream: the union is
    then exactly the first ``T * S`` points of the sequence.

    The points are the unscrambled sequence: they do not depend on ``rng_seed``.
    Same kind, scope, ``task_chunk_size`` and ``qrng_stream_points`` give the same
    points on every context and every run whatever the seed; the seed still seeds
    the ``random`` / ``numpy.random`` global states (which are pseudo-random) and is
    recorded on the job. Point 0 of the sequence (stream 0's first) is the origin.

    Dimensions: the first draw fixes ``d`` for the stream (SOBOL: ``d <= 21201``,
    NIEDERR: ``d <= 20``); a later draw with another ``d`` is an error.

    ``size`` of :meth:`uniform` and :meth:`normal` says how many points of how
    many dimensions: ``None`` -> one point of ``d=1``, returned as a float; an int
    ``n`` or ``(n,)`` -> ``n`` points of ``d=1``, shape ``(n,)``; ``(n, d)`` -> ``n``
    points of ``d`` dimensions, shape ``(n, d)`` (the shape NumPy's
    ``Generator.uniform(size=(n, d))`` gives, so code using that form runs under
    both pseudo- and quasi-random kinds).
    """

    __slots__ = ("kind", "index", "stream_points", "_sequence", "_d", "_drawn")

    def __init__(self, kind: str, index: int, stream_points: int) -> None:
        self.kind = kind
        self.index = index
        self.stream_points = stream_points
        self._sequence: Any = None
        self._d: int | None = None
        self._drawn = 0

    @property
    def start(self) -> int:
        """Index in the sequence of the stream's first point."""
        return self.index * self.stream_points

    @property
    def position(self) -> int:
        """Index in the sequence of the next point this stream draws."""
        return self.start + self._drawn

    @property
    def d(self) -> int | None:
        """The stream's dimension (None until its first draw)."""
        return self._d

    def random(self, n: int | None = None, d: int = 1) -> Any:
        """The stream's next ``n`` points of the ``d``-dimensional sequence, in ``[0, 1)``.

        Args:
            n: Number of points; ``None`` draws one and returns it as a float
                (``d=1``) or a ``(d,)`` array.
            d: Dimensions; fixed by the stream's first draw.

        Returns:
            Shape ``(n,)`` for ``d=1``, else ``(n, d)``.

        Raises:
            RxArgumentError: ``n`` or ``d`` out of range, another ``d`` than the
                stream's, or more points than the stream owns.
        """
        points = self._draw("random", 1 if n is None else _count(n, "n", "random"), d)
        if n is None:
            return float(points[0, 0]) if d == 1 else points[0]
        return points[:, 0] if d == 1 else points

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> Any:
        """``low + (high - low) * x`` for the stream's next points ``x`` (see the class docstring for ``size``)."""
        n, d, shape = self._size(size, "uniform")
        self._check_broadcast(shape, "uniform", "low and high", low, high)
        x = self._shape(self._draw("uniform", n, d), shape)
        values = np.add(low, np.multiply(np.subtract(high, low), x))
        return float(values) if shape is None else values

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        """``loc + scale * Phi^-1(x)`` for the stream's next points ``x`` (inverse CDF, so the net structure carries over).

        A coordinate exactly 0 (the origin is point 0 of the sequence) is taken as
        ``2**-(bits + 1)``, the centre of the sequence's finest first cell
        (SOBOL: 53 bits, about -8.5 standard deviations; NIEDERR: 31 bits, about -6.2).
        """
        n, d, shape = self._size(size, "normal")
        self._check_broadcast(shape, "normal", "loc and scale", loc, scale)
        x = self._draw("normal", n, d)
        x[x == 0.0] = 2.0 ** -(self._sequence.bits + 1)
        values = np.add(loc, np.multiply(scale, self._shape(_ndtri()(x), shape)))
        return float(values) if shape is None else values

    # -- helpers

    @staticmethod
    def _size(size: Any, what: str) -> tuple[int, int, tuple[int, ...] | None]:
        if size is None:
            return 1, 1, None
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            n = _count(size, "size", what)
            return n, 1, (n,)
        if isinstance(size, (tuple, list)) and len(size) in (1, 2):
            n = _count(size[0], "size", what)
            if len(size) == 1:
                return n, 1, (n,)
            d = size[1]
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
                raise RxArgumentError(f"rng().{what}: size=(n, d) needs a positive int d, got size={size!r}")
            return n, int(d), (n, int(d))
        error = RxArgumentError if isinstance(size, (tuple, list)) else RxArgumentTypeError
        raise error(
            f"rng().{what}: size must be None (one point), an int n or (n,) (n points of d=1) or (n, d) "
            f"(n points of d dimensions), got {size!r}"
        )

    @staticmethod
    def _check_broadcast(shape: tuple[int, ...] | None, what: str, names: str, *params: Any) -> None:
        expected = shape or ()
        try:
            ok = np.broadcast_shapes(expected, *(np.shape(p) for p in params)) == expected
        except ValueError:
            ok = False
        if not ok:
            raise RxArgumentError(
                f"rng().{what}: {names} must broadcast to the shape of the points, {expected}, "
                f"but have shapes {[np.shape(p) for p in params]}"
            )

    @staticmethod
    def _shape(points: np.ndarray, shape: tuple[int, ...] | None) -> Any:
        return points[0, 0] if shape is None else points.reshape(shape)

    def _draw(self, what: str, n: int, d: Any) -> np.ndarray:
        sequence = _qrng.SEQUENCES[self.kind]
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise RxArgumentTypeError(f"rng().{what}: d must be a positive int, got {type(d).__name__} {d!r}")
        d = int(d)
        if not 1 <= d <= sequence.max_dim:
            raise RxArgumentError(
                f"rng().{what}: d={d} is out of range: rng_kind={self.kind!r} has 1 to {sequence.max_dim} dimensions"
            )
        if self._d is not None and d != self._d:
            raise RxArgumentError(
                f"rng().{what}: d={d}, but this stream's first draw fixed d={self._d}: a quasi-random stream is one "
                f"{self._d}-dimensional sequence (draw all coordinates at once, or use rng_scope='task' so that "
                f"each task has a stream of its own)"
            )
        if self._drawn + n > self.stream_points:
            raise RxArgumentError(
                f"rng().{what}: stream {self.index} owns rx_options()['qrng_stream_points'] = {self.stream_points} "
                f"points (sequence points {self.start}..{self.start + self.stream_points - 1}); it has drawn "
                f"{self._drawn}, so {n} more would run into stream {self.index + 1}'s: set a larger "
                f"rx_options(qrng_stream_points=...) before rx_exec"
            )
        if self.start + self.stream_points > sequence.max_points:
            raise RxArgumentError(
                f"rng().{what}: stream {self.index} would start past the 2**{sequence.bits} points of "
                f"rng_kind={self.kind!r} with qrng_stream_points = {self.stream_points}"
            )
        if self._sequence is None:
            self._sequence = sequence(d, self.start)
        self._d = d
        points = self._sequence.draw(n)
        self._drawn += n
        return points

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"a quasi-random stream (rng_kind={self.kind!r}) has no {name!r}: it offers random(n, d), "
            f"uniform(low, high, size) and normal(loc, scale, size); map its uniform points for other distributions"
        )

    def __repr__(self) -> str:
        return (
            f"QuasiStream(kind={self.kind!r}, stream={self.index}, start={self.start}, "
            f"position={self.position}, d={self._d})"
        )


def _ndtri() -> Any:
    try:
        from scipy.special import ndtri
    except ImportError as exc:  # pragma: no cover - resolve() checked SciPy on the driver
        raise RxMissingExtraError(f"rng().normal of a quasi-random kind needs SciPy: pip install 'rxspark[{SCIPY_EXTRA}]'") from exc
    return ndtri


_current = threading.local()


def rng() -> Any:
    """Return the random generator of the task being run.

    Returns:
        A ``numpy.random.Generator`` (NumPy kinds), an mkl-random
        ``RandomState`` (Intel VSL kinds) or a :class:`QuasiStream` (``"SOBOL"``,
        ``"NIEDERR"``: ``random(n, d)``, ``uniform``, ``normal`` on the stream's
        share of the quasi-random sequence). With no ``rng_seed``/``rng_kind``
        the task gets a generator on fresh entropy.

    Raises:
        RuntimeError: Called outside a task run by ``rx_exec``.
    """
    state = getattr(_current, "state", None)
    if state is None:
        raise RuntimeError("rxspark.rng() can only be called inside a task run by rx_exec")
    if isinstance(state, Stream):
        return state.generator
    if state is _UNSEEDED:
        _current.state = np.random.default_rng()
        return _current.state
    return state


_UNSEEDED = object()


class Streams:
    """Activates streams for the chunk being run, restoring global states afterwards.

    The stdlib ``random`` and NumPy legacy states are process-wide, so when a
    seed is given, chunks run under a process-wide lock: thread-based contexts
    would otherwise interleave draws from the shared state.
    """

    _lock = threading.RLock()

    def __init__(self, spec: RngSpec | None) -> None:
        self.spec = spec
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> Streams:
        if self.spec is not None and self.spec.seed_globals:
            self._lock.acquire()
            self._saved = (_random.getstate(), np.random.get_state())
        _current.state = _UNSEEDED
        return self

    def start(self, index: int) -> None:
        """Start stream ``index`` (a chunk or task index, per the scope)."""
        _current.state = Stream(self.spec, self.spec.stream_index(index)) if self.spec is not None else _UNSEEDED

    def __exit__(self, *exc: Any) -> None:
        _current.state = None
        if self._saved is not None:
            _random.setstate(self._saved[0])
            np.random.set_state(self._saved[1])
            self._lock.release()
