"""W1S and W2S: W1 (dice) and W2 (Mandelbrot) on the share-nothing cluster, RxSpark against raw PySpark.

    python benchmarks/bench_sharenothing.py                 # needs root (unshare -m), see tests/sharenothing.py
    python benchmarks/bench_sharenothing.py --quick
    python benchmarks/bench_sharenothing.py --output-dir benchmarks/runs

The cluster is the test suite's (tests/sharenothing.py): a standalone master
and two one-core workers, each in a mount namespace of its own with Debian's
bare Python and none of the driver's files. Both variants run in one
application started by ``RxSpark(python_env=ARCHIVE)`` (the node environment
of the tests, packed by ``rxspark.pack``), so raw PySpark's executors run the
same shipped ``./environment/bin/python``: the same archive, the same session,
timed in the same run and interleaved (bench_harness). Raw PySpark gets as
many partitions as RxSpark has chunks. The task functions travel by value for
both (the nodes do not have benchmarks/).

Prints a table and writes sharenothing-results.json to --output-dir (if
given); the numbers go into RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

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

cloudpickle.register_pickle_by_value(wl)
cloudpickle.register_pickle_by_value(dice)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one timed run")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--output-dir", default=None, help="where sharenothing-results.json goes (default: print only)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    warnings.filterwarnings("ignore", category=FutureWarning)

    from pyspark import cloudpickle as spark_cloudpickle
    from sharenothing import NodeEnvironment, ShareNothingCluster, make_workdir, unavailable

    from rxspark import RxSpark, rx_elem_arg, rx_exec

    spark_cloudpickle.register_pickle_by_value(wl)  # raw PySpark pickles with its own copy
    spark_cloudpickle.register_pickle_by_value(dice)
    why = unavailable()
    if why:
        print(f"bench_sharenothing: cannot run here: {why}", file=sys.stderr)
        return 1
    began = time.perf_counter()
    node = NodeEnvironment().ensure()
    archive = node.pack(os.path.join(tempfile.mkdtemp(prefix="rxspark-bench-env-"), "nodeenv.tar.gz"))
    packed = time.perf_counter() - began
    size_mb = os.path.getsize(archive) / 1e6
    print(f"node environment packed in {packed:.1f} s: {archive} ({size_mb:.0f} MB)", flush=True)
    with ShareNothingCluster(make_workdir(), workers=2, cores=1, memory="1g") as cluster:
        began = time.perf_counter()
        cc = RxSpark(
            master=cluster.master, num_executors=2, executor_cores=1, executor_mem="512m", progress=False,
            python_env=archive, extra_spark_config=cluster.auth_config(),
        ).connect()
        started = time.perf_counter() - began
        sc = cc.spark_context
        p = cc.parallelism()
        rec = Recorder(repeat=repeat, log=lambda text: print(text, flush=True))
        try:
            began = time.perf_counter()
            for _ in range(2):  # warm both paths: Python workers on both executors, the archive unpacked
                sc.parallelize(range(4), p).map(lambda _: wl.trivial()).collect()
                rx_exec(wl.trivial, times_to_run=4, compute_context=cc)
            warmed = time.perf_counter() - began
            print(f"application started in {started:.1f} s (executors registered), first jobs {warmed:.1f} s", flush=True)
            for n in (1_000,) if args.quick else (10_000, 100_000):
                check = wl_check_dice(n)
                rec.measure_case("W1S", f"n={n}", [
                    Variant("raw PySpark", lambda n=n: sc.parallelize(range(n), p).map(lambda _: wl.play_dice()).collect(),
                            n=n, check=check, note=f"{p} partitions"),
                    Variant("RxSpark", lambda n=n: rx_exec(wl.play_dice, times_to_run=n, compute_context=cc), n=n,
                            check=check, note=f"{p} chunks"),
                ])
            size, lim = (240, 128) if args.quick else (960, 256)
            xs, ys = wl.mandelbrot_axes(size)
            reference = [wl.vmandelbrot(xs, y, lim) for y in ys]

            def same(out: list) -> None:
                assert out == reference, "mandelbrot differs from the sequential reference"

            rec.measure_case("W2S", f"{size}x{size}, limit {lim}", [
                Variant("raw PySpark", lambda: sc.parallelize(ys, p).map(lambda y: wl.vmandelbrot(xs, y, lim)).collect(),
                        n=size, check=same, note=f"{p} partitions"),
                Variant("RxSpark", lambda: rx_exec(wl.vmandelbrot, xs, rx_elem_arg(ys), lim, compute_context=cc),
                        n=size, check=same, note=f"{p} chunks"),
            ])
        finally:
            cc.close()
    rows = []
    for r in rec.results:
        rows.append(r.to_dict())
        print(f"{r.workload:4} {r.case:18} {r.variant:12} median {r.median:.3f} s  min {r.min:.3f} s  first {r.first:.3f} s")
    for workload in ("W1S", "W2S"):
        for case in dict.fromkeys(r.case for r in rec.results if r.workload == workload):
            mine = [r for r in rec.results if r.workload == workload and r.case == case]
            base = next(r for r in mine if r.variant == "raw PySpark")
            ours = next(r for r in mine if r.variant == "RxSpark")
            print(f"{workload} {case}: RxSpark / raw PySpark = {ours.median / base.median:.2f}x (median), "
                  f"{ours.min / base.min:.2f}x (min)")
    if args.output_dir:
        with open(os.path.join(args.output_dir, "sharenothing-results.json"), "w") as f:
            json.dump({"machine": machine_description(), "archive_mb": round(size_mb), "pack_seconds": round(packed, 1),
                       "start_seconds": round(started, 1), "warm_seconds": round(warmed, 1), "parallelism": p,
                       "results": rows}, f, indent=1)
    return 0


def wl_check_dice(n: int):
    def check(out: list) -> None:
        assert len(out) == n and set(out) <= {"Win", "Loss"}, "dice results"

    return check


if __name__ == "__main__":
    sys.exit(main())
