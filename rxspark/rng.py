"""Reproducible parallel random number streams.

A stream is identified by ``(seed, index)`` where the index is the chunk index
(``rng_scope="chunk"``) or the task index (``rng_scope="task"``). Everything a
task may draw from is derived from that pair alone, so a stream is the same on
every compute context and on every retry of a chunk:

* ``rxspark.rng()``: a ``numpy.random.Generator`` over the chosen bit generator,
  seeded with ``SeedSequence(seed, spawn_key=(index,))`` (NumPy's recommended
  way to make independent parallel streams), or an mkl-random ``MKLRandomState``
  for Intel VSL kinds (MT2203 uses substream ``index`` of the family);
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
ALL_KINDS: tuple[str, ...] = tuple(NUMPY_KINDS) + VSL_KINDS
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
    if rng_seed is None and rng_kind is None:
        return None
    from .options import get_option

    seed = secrets.randbits(63) if rng_seed in (None, "auto") else int(rng_seed)
    kind = DEFAULT_KIND if rng_kind in (None, "auto") else rng_kind
    return RngSpec(seed=seed, kind=kind, scope=rng_scope, seed_globals=get_option("seed_global_rngs"))


def check_stream_count(spec: RngSpec | None, n_streams: int) -> None:
    if spec is not None and spec.kind == "MT2203" and n_streams > MT2203_STREAMS:
        raise RxArgumentError(
            f"rng_kind='MT2203' has {MT2203_STREAMS} substreams but this call needs {n_streams} "
            f"(one per {spec.scope}); use a larger task_chunk_size, rng_scope='chunk', or another rng_kind"
        )


def _mkl_random() -> Any:
    try:
        import mkl_random
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RxMissingExtraError(
            "Intel VSL rng kinds need mkl-random: pip install 'rxspark[mkl]'"
        ) from exc
    return mkl_random


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


_current = threading.local()


def rng() -> Any:
    """Return the random generator of the task being run.

    Returns:
        A ``numpy.random.Generator`` (NumPy kinds) or an mkl-random
        ``RandomState`` (Intel VSL kinds). With no ``rng_seed``/``rng_kind``
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
        _current.state = Stream(self.spec, index) if self.spec is not None else _UNSEEDED

    def __exit__(self, *exc: Any) -> None:
        _current.state = None
        if self._saved is not None:
            _random.setstate(self._saved[0])
            np.random.set_state(self._saved[1])
            self._lock.release()
