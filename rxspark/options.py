"""Global options (``rx_options``): the only process-wide settings besides the active context."""

from __future__ import annotations

import os
from typing import Any

from .errors import RxArgumentError, RxArgumentTypeError

_DEFAULTS: dict[str, Any] = {
    # -1 means every core of this machine; RxLocalParallel(num_workers=None) reads it.
    "num_cores_to_use": -1,
    # Where job records and shared data live unless a context says otherwise.
    "share_dir": os.path.join("~", ".rxspark", "jobs"),
    # How often a chunk whose worker process died is run again on local pools
    # (Spark uses its own spark.task.maxFailures).
    "max_chunk_attempts": 4,
    # exec_objects larger than this (serialized) trigger a warning recommending rx_share.
    "exec_objects_warn_bytes": 256 * 1024**2,
    # Reseed the stdlib random module and NumPy's legacy global state at each
    # stream start (so code using them is reproducible). Tasks that draw only
    # from rxspark.rng() can turn it off: with rng_scope="task" reseeding costs
    # ~6 us a task, mostly CPython's random.seed().
    "seed_global_rngs": True,
    # Quasi-random rng kinds (SOBOL, NIEDERR): stream i draws the points
    # [i * qrng_stream_points, (i + 1) * qrng_stream_points) of the sequence.
    # Read on the driver when rx_exec is called (it travels with the job).
    "qrng_stream_points": 2**20,
}

_options: dict[str, Any] = dict(_DEFAULTS)


def _check(name: str, value: Any) -> Any:
    if name == "num_cores_to_use":
        if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
            raise RxArgumentError(f"rx_options: num_cores_to_use must be a positive int or -1 (all cores), got {value!r}")
    elif name == "share_dir":
        if not isinstance(value, (str, os.PathLike)):
            raise RxArgumentTypeError(f"rx_options: share_dir must be a path, got {type(value).__name__}")
        value = os.fspath(value)
    elif name == "seed_global_rngs":
        if not isinstance(value, bool):
            raise RxArgumentTypeError(f"rx_options: seed_global_rngs must be True or False, got {value!r}")
    elif name in ("max_chunk_attempts", "exec_objects_warn_bytes", "qrng_stream_points"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RxArgumentError(f"rx_options: {name} must be a positive int, got {value!r}")
    return value


def rx_options(**kwargs: Any) -> dict[str, Any]:
    """Get or set global options.

    Args:
        **kwargs: Options to set. Known options: ``num_cores_to_use`` (-1 = all
            cores), ``share_dir``, ``max_chunk_attempts``, ``exec_objects_warn_bytes``,
            ``seed_global_rngs`` (reseed ``random`` / ``numpy.random`` per stream; default True),
            ``qrng_stream_points`` (quasi-random kinds: points of the sequence per stream,
            stream ``i`` starting at point ``i * qrng_stream_points``; default ``2**20``; a power
            of two keeps every stream's first ``2**m`` points a net).

    Returns:
        A copy of the options in force after the call.

    Raises:
        RxArgumentError: An unknown option or a bad value (nothing is changed).
    """
    unknown = sorted(set(kwargs) - set(_DEFAULTS))
    if unknown:
        raise RxArgumentError(f"rx_options: unknown option(s) {unknown}; known: {sorted(_DEFAULTS)}")
    checked = {k: _check(k, v) for k, v in kwargs.items()}
    _options.update(checked)
    return dict(_options)


def get_option(name: str) -> Any:
    return _options[name]


def cores_to_use() -> int:
    """Resolve ``num_cores_to_use`` to a number of cores (-1 or too many -> all)."""
    available = os.cpu_count() or 1
    wanted = _options["num_cores_to_use"]
    return available if wanted == -1 else wanted
