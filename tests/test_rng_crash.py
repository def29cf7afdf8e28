"""No offered rng kind may crash the process drawing from it.

A native generator that segfaults is not an error a task can report: it takes
the worker down (Spark retries it until the job fails with "Python worker
exited unexpectedly") or, on RxLocalSeq, the user's own interpreter. mkl-random's
WH did exactly that on this project's CI machine, intermittently, so the check
runs every offered kind in several fresh interpreters at once, each drawing
``uniform`` and ``normal`` from many streams, and fails on any death by signal.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import rxspark
from rxspark.rng import ALL_KINDS, VSL_KINDS, WITHHELD_KINDS

HAVE_MKL = importlib.util.find_spec("mkl_random") is not None
PROCESSES_PER_KIND = 4
STREAMS = 120

PROBE = textwrap.dedent(
    """
    import sys
    import rxspark

    def draw(x):
        g = rxspark.rng()
        return float(g.uniform(size=3).sum() + g.normal(size=3).sum())

    out = rxspark.rx_exec(draw, rxspark.rx_elem_arg(range({streams})), rng_seed=int(sys.argv[2]),
                          rng_kind=sys.argv[1], rng_scope="task", compute_context="local")
    assert len(out) == {streams} and len(set(out)) == {streams}, out
    print("ok")
    """
).format(streams=STREAMS)


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(k, marks=pytest.mark.skipif(not HAVE_MKL, reason="mkl-random (extra 'mkl') is not installed"))
        if k in VSL_KINDS
        else k
        for k in ALL_KINDS
    ],
)
def test_drawing_from_many_streams_never_kills_the_process(kind, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), kind, str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for seed in range(PROCESSES_PER_KIND)
    ]
    deaths, failures = [], []
    for seed, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120)
        if proc.returncode < 0:
            deaths.append(f"seed {seed}: killed by {_signal_name(proc.returncode)}\n{err[-2000:]}")
        elif proc.returncode != 0 or out.strip() != "ok":
            failures.append(f"seed {seed}: exit {proc.returncode}\n{err[-2000:]}")
    assert not deaths, f"rng_kind={kind!r} crashed {len(deaths)} of {PROCESSES_PER_KIND} processes:\n" + "\n".join(
        deaths
    )
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kind", sorted(WITHHELD_KINDS))
def test_a_withheld_kind_is_refused_with_the_reason(kind):
    def never(_):  # pragma: no cover - must not run
        raise AssertionError("ran")

    with pytest.raises(rxspark.RxArgumentError, match=rf"rng_kind {kind!r} is not offered: .*segfaults"):
        rxspark.rx_exec(never, rxspark.rx_elem_arg([1]), rng_seed=1, rng_kind=kind)
