"""The birthday problem of the rxExec guide: P(shared birthday) for party sizes 2..100.

Each party size is one task (a per-call argument, ``rx_elem_arg``), the tasks
go to the workers in chunks of 20, and each task estimates the probability
from ``--ntests`` simulated parties drawn with ``rxspark.rng()``. The exact
probability ``1 - prod((365 - k) / 365)`` is printed alongside, and the
estimates are plotted by party size, coloured by the chunk (and node) that
computed them.

    python examples/birthday.py                          # embedded Spark (local[*])
    python examples/birthday.py --seed 42                # reproducible estimates
    python examples/birthday.py --master none            # no Spark: RxLocalSeq
    python examples/birthday.py --output docs/img/birthday.png
    ./spark-submit.sh examples/birthday.py --seed 42
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import rxspark
from rxspark import RxLocalSeq, RxSpark, rx_elem_arg, rx_exec

DAYS_IN_YEAR = 365
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "birthday.png")


def pbirthday(n: int | Sequence[int], ntests: int = 5000, rng: Any = None) -> float | list[float]:
    """Estimate P(at least two of ``n`` people share a birthday) from ``ntests`` simulated parties.

    Like the guide's R function, a sequence of sizes gives one estimate per size.
    Inside an rx_exec task the draws come from the task's stream (``rxspark.rng()``);
    elsewhere pass a ``numpy.random.Generator`` as ``rng``.
    """
    rng = rxspark.rng() if rng is None else rng
    if np.ndim(n) > 0:
        return [pbirthday(k, ntests, rng) for k in n]
    days = rng.integers(0, DAYS_IN_YEAR, size=(ntests, int(n)))
    days.sort(axis=1)
    any_duplicate = (np.diff(days, axis=1) == 0).any(axis=1)
    return float(any_duplicate.mean())


def exact_pbirthday(n: int) -> float:
    """The exact probability: 1 - prod_{k<n} (365 - k) / 365."""
    return float(1.0 - np.prod((DAYS_IN_YEAR - np.arange(n)) / DAYS_IN_YEAR))


def plot(result: dict[str, Any], path: str) -> str:
    """Probability vs party size, one colour per chunk, with the exact curve."""
    # A bare Figure draws off-screen without touching pyplot's backend, so a notebook's
    # inline plots keep working after an example ran in it.
    import matplotlib
    from matplotlib.figure import Figure

    sizes = np.asarray(result["party_size"])
    estimates = np.asarray(result["estimate"])
    chunks = np.asarray(result["chunk"])
    fig = Figure(figsize=(7, 4.5), dpi=110)
    ax = fig.subplots()
    ax.plot(sizes, result["exact"], color="0.3", lw=1, zorder=1, label="exact")
    colours = matplotlib.colormaps.get_cmap("tab10")
    for k in np.unique(chunks):
        mask = chunks == k
        node = result["node"][int(np.flatnonzero(mask)[0])]
        ax.scatter(sizes[mask], estimates[mask], s=14, color=colours(int(k) % 10), zorder=2,
                   label=f"chunk {k + 1}" + (f" ({node})" if node else ""))
    ax.set_xlabel("Party size")
    ax.set_ylabel("Probability of same birthday")
    ax.set_title(f"Our Rockin Soiree! ({result['ntests']} simulated parties per size)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--min-size", type=int, default=2)
    parser.add_argument("--max-size", type=int, default=100)
    parser.add_argument("--ntests", type=int, default=5000, help="simulated parties per party size")
    parser.add_argument("--chunk-size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="rng_seed for reproducible estimates")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG to write ('none': no picture)")
    args = parser.parse_args(argv)

    sizes = list(range(args.min_size, args.max_size + 1))
    if args.seed is not None:
        # The guide's sequential check, outside any compute context.
        check = pbirthday([3, 25, 50], args.ntests, rng=np.random.default_rng(args.seed))
        print("sequential check  n=3: {:.4f}  n=25: {:.4f}  n=50: {:.4f}".format(*check))

    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        started = time.perf_counter()
        # wait=False hands back the RxJob, which also knows where each task ran.
        job = rx_exec(pbirthday, rx_elem_arg(sizes), ntests=args.ntests, task_chunk_size=args.chunk_size,
                      rng_seed=args.seed, wait=False)
        estimates = job.result()
        elapsed = time.perf_counter() - started
        nodes = job.nodes()

    result: dict[str, Any] = {
        "party_size": sizes,
        "estimate": estimates,
        "exact": [exact_pbirthday(n) for n in sizes],
        "chunk": [i // args.chunk_size for i in range(len(sizes))],
        "node": nodes,
        "ntests": args.ntests,
        "elapsed": elapsed,
        "output": None,
    }
    print(f"{len(sizes)} party sizes x {args.ntests} parties in {elapsed:.2f} s on {type(context).__name__} "
          f"({len(set(result['chunk']))} chunks of {args.chunk_size})")
    print(f"{'size':>5} {'estimate':>9} {'exact':>8}")
    for n in (3, 23, 25, 50, 70):
        if n in sizes:
            i = sizes.index(n)
            print(f"{n:>5} {estimates[i]:>9.4f} {result['exact'][i]:>8.4f}")
    if args.output and args.output.lower() != "none":
        result["output"] = plot(result, args.output)
        print(f"plot: {result['output']}")
    return result


if __name__ == "__main__":
    main()
