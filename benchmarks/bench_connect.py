"""W1C and W5C: W1 (dice) and W5 (latency) on Spark Connect, RxSpark against raw PySpark on the same session.

    python benchmarks/bench_connect.py                     # starts a local Connect server (local[2,4])
    python benchmarks/bench_connect.py --remote sc://host:15002
    python benchmarks/bench_connect.py --quick

Raw PySpark is ``spark.range(0, n, 1, p).mapInArrow(...)`` with the same
number of partitions as RxSpark's chunks (its default: the server's
parallelism), on the same Connect session, timed in the same run and
interleaved with RxSpark (bench_harness). The task functions travel by value
(the server's workers do not have benchmarks/ on their path), alike for both.
Prints a table and writes connect-results.json to --output-dir; it never
touches RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (os.path.join(ROOT, "examples"), HERE, os.path.join(ROOT, "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import bench_workloads as wl  # noqa: E402
import cloudpickle  # noqa: E402
import dice  # noqa: E402
from bench_harness import Recorder, Variant, machine_description  # noqa: E402

for _pickler in (cloudpickle,):
    _pickler.register_pickle_by_value(wl)
    _pickler.register_pickle_by_value(dice)


def _ship_by_value_in_raw_pyspark() -> None:
    """Raw PySpark pickles with its own copy of cloudpickle: tell it too."""
    from pyspark import cloudpickle as spark_cloudpickle

    spark_cloudpickle.register_pickle_by_value(wl)
    spark_cloudpickle.register_pickle_by_value(dice)


def _raw_dice(batches: Any) -> Any:
    import pyarrow as pa

    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.array([wl.play_dice() for _ in range(batch.num_rows)])], names=["v"])


def _raw_trivial(batches: Any) -> Any:
    import pyarrow as pa

    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.array([wl.trivial() for _ in range(batch.num_rows)], pa.int64())], names=["v"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote", default=None, help="a Connect server's URL (default: start a local one)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--output-dir", default=None, help="where connect-results.json goes (default: print only)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import rxspark
    from rxspark import RxSpark, rx_exec

    _ship_by_value_in_raw_pyspark()

    server = None
    if args.remote is None:
        from connect_server import ConnectServer

        began = time.perf_counter()
        server = ConnectServer().start()
        print(f"local Connect server on {server.url} started in {time.perf_counter() - began:.1f} s", flush=True)
    try:
        cc = RxSpark(remote=args.remote or server.url, progress=False)
        spark = cc.session
        rxspark.rx_options(share_dir=os.path.join(cc._engine._tmp, "jobs"))
        p = cc.parallelism()
        rec = Recorder(repeat=repeat, log=lambda text: print(text, flush=True))
        for _ in range(3):  # warm both paths (Python workers, artifacts, the rxspark zip)
            spark.range(0, 4, 1, 2).mapInArrow(_raw_trivial, "v long").collect()
            rx_exec(wl.trivial, times_to_run=4, compute_context=cc)

        def raw(function: Any, n: int, schema: str) -> list[Any]:
            return [row[0] for row in spark.range(0, n, 1, min(n, p)).mapInArrow(function, schema).toLocalIterator()]

        for n in (1_000,) if args.quick else (10_000,):
            rec.measure_case("W1C", f"n={n}", [
                Variant("raw PySpark Connect", lambda n=n: raw(_raw_dice, n, "v string"), n=n, note=f"mapInArrow, {min(n, p)} partitions"),
                Variant("RxSpark Connect", lambda n=n: rx_exec(wl.play_dice, times_to_run=n, compute_context=cc), n=n,
                        note=f"{min(n, p)} chunks"),
            ])
        rec.measure_case("W5C", "2 tasks", [
            Variant("raw PySpark Connect", lambda: raw(_raw_trivial, 2, "v long"), n=2, repeat=repeat * 4),
            Variant("RxSpark Connect", lambda: rx_exec(wl.trivial, times_to_run=2, compute_context=cc), n=2, repeat=repeat * 4),
        ])
        rows = []
        for r in rec.results:
            rows.append(r.to_dict())
            print(f"{r.workload:4} {r.case:10} {r.variant:22} median {r.median:.3f} s  min {r.min:.3f} s  first {r.first:.3f} s")
        for workload in ("W1C", "W5C"):
            mine = [r for r in rec.results if r.workload == workload]
            base = next(r for r in mine if r.variant.startswith("raw"))
            ours = next(r for r in mine if r.variant.startswith("RxSpark"))
            print(f"{workload}: RxSpark / raw Connect = {ours.median / base.median:.2f}x (median), {ours.min / base.min:.2f}x (min)")
        if args.output_dir:
            with open(os.path.join(args.output_dir, "connect-results.json"), "w") as f:
                json.dump({"machine": machine_description(), "parallelism": p, "results": rows}, f, indent=1)
        cc.close()
        spark.stop()
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
