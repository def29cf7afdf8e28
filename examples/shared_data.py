"""Sharing a big table with the tasks, three ways (the guide's "Share data across parallel processes").

A 5e6-row table (``tag`` in A..G, columns ``a`` and ``b`` uniform) and one
task per tag that filters the table on the worker and summarizes its rows
(count, sum and mean of ``a``, mean of ``b``). The table reaches the tasks

1. as an argument of every call: ``rx_exec(tag_stats, table, rx_elem_arg(tags))``;
2. as an exec object: ``rx_exec(tag_stats_global, rx_elem_arg(tags), exec_objects={"test_data": table})``;
3. through ``rx_share``: stored once as a memory-mappable Arrow file, the
   tasks get a handle of a few hundred bytes and load it once per worker process.

rxspark ships arguments and exec objects once per job (a Spark broadcast),
not once per task as the guide's doParallel did, so 1 and 2 cost the same:
serializing the table on the driver and deserializing it in every worker
process. ``rx_share`` writes it once, and workers only map the file. The three
results are identical, and equal to a pandas ``groupby``.

    python examples/shared_data.py                       # embedded Spark, 5e6 rows
    python examples/shared_data.py --rows 1000000
    python examples/shared_data.py --master none         # no Spark: RxLocalSeq
    ./spark-submit.sh examples/shared_data.py --share-dir hdfs:///tmp/rxspark   # clusters need shared storage
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

from rxspark import RxLocalSeq, RxSpark, rx_elem_arg, rx_exec, rx_share

TAGS = list("ABCDEFG")


def make_table(rows: int, seed: int | None) -> pd.DataFrame:
    """``data.table(tag = sample(LETTERS[1:7], rows, replace = TRUE), a = runif(rows), b = runif(rows))``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "tag": np.array(TAGS)[rng.integers(0, len(TAGS), rows)],
        "a": rng.random(rows),
        "b": rng.random(rows),
    })


def tag_stats(d: pd.DataFrame, ztag: str) -> dict[str, Any]:
    """Statistics of the rows of ``d`` tagged ``ztag`` (the guide's filterTest, with a few more)."""
    rows = d.loc[d["tag"] == ztag, ["a", "b"]]
    return {
        "tag": ztag,
        "n": len(rows),
        "sum_a": float(rows["a"].sum()),
        "mean_a": float(rows["a"].mean()),
        "mean_b": float(rows["b"].mean()),
    }


def tag_stats_global(ztag: str) -> dict[str, Any]:
    """``tag_stats`` on the global ``test_data``, which ``exec_objects`` installs on the workers."""
    return tag_stats(test_data, ztag)  # noqa: F821 - an exec object


def tag_stats_shared(data: Any, ztag: str) -> dict[str, Any]:
    """``tag_stats`` on a shared table: ``data.value`` loads it once per worker process."""
    return tag_stats(data.value, ztag)


def groupby_stats(d: pd.DataFrame) -> pd.DataFrame:
    """The reference: the same statistics from one pandas groupby."""
    g = d.groupby("tag", sort=True)
    return pd.DataFrame({"n": g.size(), "sum_a": g["a"].sum(), "mean_a": g["a"].mean(), "mean_b": g["b"].mean()})


def as_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(results).set_index("tag").sort_index()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--chunk-size", type=int, default=1, help="tags per chunk")
    parser.add_argument("--seed", type=int, default=None, help="seed of the table")
    parser.add_argument("--share-dir", default=None, help="where rx_share stores the table (default: <share_dir>/shared)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    table = make_table(args.rows, args.seed)
    tags = sorted(table["tag"].unique())
    print(f"table: {len(table):,} rows, {table.memory_usage(deep=True).sum() / 2**20:.0f} MB, tags {''.join(tags)} "
          f"({time.perf_counter() - started:.2f} s to make)")
    times: dict[str, float] = {}
    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        # Start the worker processes before timing (Spark starts Python workers on first use).
        rx_exec(len, rx_elem_arg(tags), task_chunk_size=args.chunk_size)
        started = time.perf_counter()
        by_argument = rx_exec(tag_stats, table, rx_elem_arg(tags), task_chunk_size=args.chunk_size)
        times["argument"] = time.perf_counter() - started

        started = time.perf_counter()
        by_exec_objects = rx_exec(tag_stats_global, rx_elem_arg(tags), task_chunk_size=args.chunk_size,
                                  exec_objects={"test_data": table})
        times["exec_objects"] = time.perf_counter() - started

        started = time.perf_counter()
        handle = rx_share(table, share_dir=args.share_dir)
        times["rx_share_write"] = time.perf_counter() - started
        try:
            started = time.perf_counter()
            by_share = rx_exec(tag_stats_shared, handle, rx_elem_arg(tags), task_chunk_size=args.chunk_size)
            times["rx_share"] = time.perf_counter() - started
        finally:
            handle.delete()

    started = time.perf_counter()
    reference = groupby_stats(table)
    times["pandas_groupby"] = time.perf_counter() - started
    frames = {"argument": as_frame(by_argument), "exec_objects": as_frame(by_exec_objects), "rx_share": as_frame(by_share)}
    identical = all(frame.equals(frames["argument"]) for frame in frames.values())
    matches_groupby = all(
        (frame["n"] == reference["n"]).all() and np.allclose(frame[reference.columns[1:]], reference[reference.columns[1:]], rtol=1e-12, atol=0)
        for frame in frames.values()
    )

    print(f"on {type(context).__name__}, one task per tag:")
    print(f"  (i)   table as an argument     {times['argument']:7.2f} s")
    print(f"  (ii)  table as an exec object  {times['exec_objects']:7.2f} s")
    print(f"  (iii) rx_share                 {times['rx_share']:7.2f} s  (+ {times['rx_share_write']:.2f} s to write the share once)")
    print(f"  pandas groupby on the driver   {times['pandas_groupby']:7.2f} s")
    print(frames["rx_share"].to_string(float_format=lambda v: f"{v:.6f}"))
    print(f"three methods identical: {identical}; equal to the pandas groupby: {matches_groupby}")
    return {**frames, "groupby": reference, "times": times, "identical": identical, "matches_groupby": matches_groupby}


if __name__ == "__main__":
    main()
