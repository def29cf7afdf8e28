"""Profiles behind the missed targets of RESULTS.md (see PROFILES.md), reproducible.

    python benchmarks/profile_hotspots.py rng       # W6: cost of starting an RNG stream, piece by piece
    python benchmarks/profile_hotspots.py worker    # W1/W4/W6: run_chunk in-process vs a bare loop; ChunkResult transport
    python benchmarks/profile_hotspots.py driver    # W4: cProfile of the driver side of rx_exec on RxSpark local[2]
    python benchmarks/profile_hotspots.py payload   # W3: where a job with a big argument / exec object spends its time
    python benchmarks/profile_hotspots.py all

Worker-side costs are timed by calling ``rxspark.worker.run_chunk`` directly
in this process (no Spark), best of several runs, so they are far less noisy
than the end-to-end figures. Run it against a patched rxspark by putting the
patched tree first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pickle
import pstats
import random
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
for _path in (EXAMPLES, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ["PYTHONPATH"] = os.pathsep.join([HERE, EXAMPLES] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

import numpy as np  # noqa: E402
from bench_workloads import play_dice, trivial  # noqa: E402


def best(fn: Callable[[], Any], runs: int = 7) -> float:
    """Best of ``runs`` wall times (the least disturbed by other load)."""
    times = []
    for _ in range(runs):
        gc.collect()
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def us(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:8.3f} us"


def header(text: str) -> None:
    print(f"\n=== {text}")


def _plan(function: Any, n: int, chunk_size: int | None = None, **kw: Any) -> Any:
    from rxspark.plan import build_plan

    return build_plan(function, (), {}, elem_args=None, elem_type="nodes", once_per_elem=False, times_to_run=n,
                      packages_to_load=None, context_packages=(), exec_objects=None, task_chunk_size=chunk_size or n,
                      rng_seed=kw.get("rng_seed"), rng_kind=None, rng_scope=kw.get("rng_scope", "chunk"), rx_args=None,
                      local_state=None, parallelism=1, nodes=lambda: ["n"])


# ------------------------------------------------------------------ rng


def profile_rng(n: int = 20_000) -> None:
    import hashlib

    from rxspark.rng import Stream, Streams, resolve

    header(f"W6: starting one RNG stream (best of 7, {n} streams)")
    spec = resolve(42, None, "task")
    digest = hashlib.blake2b(b"42:7", digest_size=20, person=b"rxspark-globals").digest()
    seed128, seed32 = int.from_bytes(digest[:16], "little"), int.from_bytes(digest[16:], "little")
    legacy = np.random.mtrand._rand
    rows = [
        ("Stream(spec, i) (what rng_scope='task' pays per task)", lambda: [Stream(spec, i) for i in range(n)]),
        ("  blake2b of (seed, index)", lambda: [hashlib.blake2b(b"%d:%d" % (42, i), digest_size=20, person=b"rxspark-globals").digest()
                                               for i in range(n)]),
        ("  random.seed(128-bit int)", lambda: [random.seed(seed128) for _ in range(n)]),
        ("  numpy.random.seed(32-bit int)", lambda: [np.random.seed(seed32) for _ in range(n)]),
        ("  alt: random.seed(64-bit int)", lambda: [random.seed(seed128 >> 64) for _ in range(n)]),
        ("  alt: RandomState._bit_generator._legacy_seeding(32-bit)", lambda: [legacy._bit_generator._legacy_seeding(seed32) for _ in range(n)]),
        ("  alt: random.setstate(saved MT state)", _setstate_loop(n)),
        ("play_dice() (the W6 task, for scale)", lambda: [play_dice() for _ in range(n)]),
    ]
    for label, fn in rows:
        print(f"{label:<62} {us(best(fn), n)} per call")
    with Streams(resolve(42, None, "chunk")) as streams:
        began = time.perf_counter()
        for i in range(2000):
            streams.start(i)
        print(f"{'Streams.start(i) (chunk scope: once per chunk)':<62} {us(time.perf_counter() - began, 2000)} per call")
    enter_exit = best(lambda: [_enter_exit(Streams, resolve(42, None, "chunk")) for _ in range(2000)])
    print(f"{'Streams __enter__/__exit__ (save/restore global states)':<62} {us(enter_exit, 2000)} per chunk")


def _setstate_loop(n: int) -> Callable[[], Any]:
    state = random.getstate()
    return lambda: [random.setstate(state) for _ in range(n)]


def _enter_exit(streams_type: Any, spec: Any) -> None:
    with streams_type(spec):
        pass


# ------------------------------------------------------------------ worker


def profile_worker() -> None:
    from rxspark.worker import LocalPayload, run_chunk

    header("W1/W4/W6: run_chunk in-process (best of 7) against a bare loop")
    cases = [
        ("trivial", trivial, 500_000, {}),
        ("play_dice", play_dice, 50_000, {}),
        ("play_dice, rng_seed scope chunk", play_dice, 50_000, {"rng_seed": 42, "rng_scope": "chunk"}),
        ("play_dice, rng_seed scope task", play_dice, 50_000, {"rng_seed": 42, "rng_scope": "task"}),
    ]
    print(f"{'case':<34} {'tasks':>8} {'bare loop':>12} {'run_chunk':>12} {'run_chunk+ser':>14} {'overhead/task':>14}")
    for label, fn, n, kw in cases:
        plan = _plan(fn, n, **kw)
        chunk = plan.chunks[0]
        ref = LocalPayload(f"p-{label}", plan.payload)
        loop = best(lambda fn=fn, n=n: [fn() for _ in range(n)])
        local = best(lambda ref=ref, chunk=chunk: run_chunk(ref, chunk, serialize_results=False))
        remote = best(lambda ref=ref, chunk=chunk: run_chunk(ref, chunk, serialize_results=True))
        print(f"{label:<34} {n:>8} {loop:>11.4f}s {local:>11.4f}s {remote:>13.4f}s {us(local - loop, n):>14}")

    header("W4: one 500k-task chunk of trivial(): what travels back and what it costs")
    plan = _plan(trivial, 500_000)
    ref = LocalPayload("p-transport", plan.payload)
    result = run_chunk(ref, plan.chunks[0], serialize_results=True)
    blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    parts = {
        "values_blob (cloudpickle of the values list)": len(result.values_blob or b""),
        "times (list of floats)": len(pickle.dumps(result.times, protocol=pickle.HIGHEST_PROTOCOL)),
        "offsets (list of ints)": len(pickle.dumps(result.offsets, protocol=pickle.HIGHEST_PROTOCOL)),
    }
    print(f"pickled ChunkResult: {len(blob) / 1e6:.2f} MB; dumps {best(lambda: pickle.dumps(result, protocol=5)) * 1000:.1f} ms, "
          f"loads {best(lambda: pickle.loads(blob)) * 1000:.1f} ms")
    for k, v in parts.items():
        print(f"  {k:<48} {v / 1e6:6.2f} MB")
    from array import array

    times_array = array("d", result.times)
    print(f"  alt: times as array('d')                         {len(pickle.dumps(times_array, protocol=5)) / 1e6:6.2f} MB, "
          f"dumps {best(lambda: pickle.dumps(times_array, protocol=5)) * 1000:.2f} ms vs list "
          f"{best(lambda: pickle.dumps(result.times, protocol=5)) * 1000:.2f} ms")
    values = result.get_values()
    print(f"driver: get_values (cloudpickle.loads of 500k values) {best(lambda: pickle.loads(result.values_blob or pickle.dumps(values))) * 1000:.1f} ms")

    header("W4: cProfile of run_chunk over 500k trivial tasks (in-process)")
    chunk = plan.chunks[0]
    profiler = cProfile.Profile()
    profiler.enable()
    run_chunk(ref, chunk, serialize_results=True)
    profiler.disable()
    _print_stats(profiler, 12)


def _print_stats(profiler: cProfile.Profile, limit: int, sort: str = "tottime") -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(limit)
    text = out.getvalue()
    start = text.find("   ncalls")
    print(text[start:].rstrip() if start >= 0 else text.rstrip())


# ------------------------------------------------------------------ Spark: driver and payload


def _spark() -> tuple[Any, Any]:
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    from rxspark import RxSpark

    defaults, explicit = RxSpark(master="local[2]").spark_config("local[2]")
    conf = SparkConf()
    for k, v in defaults.items():
        conf.setIfMissing(k, v)
    conf.setAll(list(explicit.items())).set("spark.driver.memory", "2g").setMaster("local[2]").setAppName("rxspark-profile")
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    cc = RxSpark(spark=spark, progress=False)
    from rxspark import rx_exec

    for _ in range(3):
        rx_exec(trivial, times_to_run=10, compute_context=cc)
        spark.sparkContext.parallelize(range(4), 2).map(lambda _: trivial()).collect()
    return spark, cc


def profile_driver(spark: Any, cc: Any, n: int = 1_000_000) -> None:
    from rxspark import rx_exec

    sc = spark.sparkContext
    header(f"W4: {n} trivial tasks on local[2], RxSpark vs raw PySpark (best of 5)")
    raw = best(lambda: sc.parallelize(range(n), 2).map(lambda _: trivial()).collect(), 5)
    rx = best(lambda: rx_exec(trivial, times_to_run=n, compute_context=cc), 5)
    print(f"raw PySpark {raw:.3f} s ({us(raw, n)}/task); RxSpark {rx:.3f} s ({us(rx, n)}/task)")
    header("W4: cProfile of the driver thread of rx_exec (1e6 trivial tasks, RxSpark); Spark's own threads not shown")
    profiler = cProfile.Profile()
    profiler.enable()
    rx_exec(trivial, times_to_run=n, compute_context=cc)
    profiler.disable()
    _print_stats(profiler, 14)


def profile_payload(spark: Any, cc: Any, rows: int = 5_000_000) -> None:
    import cloudpickle
    from bench_workloads import make_table, tag_sum, tag_sum_exec

    from rxspark import rx_elem_arg, rx_exec
    from rxspark.plan import build_plan

    sc = spark.sparkContext
    table = make_table(rows)
    tags = sorted(table["tag"].unique().tolist())
    header(f"W3: a job with the {rows:,}-row table as an argument / exec object (best of 3)")
    blob = cloudpickle.dumps(table)
    print(f"table: cloudpickle {len(blob) / 1e6:.0f} MB; dumps {best(lambda: cloudpickle.dumps(table), 3):.3f} s, "
          f"loads {best(lambda: cloudpickle.loads(blob), 3):.3f} s")
    plan_s = best(lambda: build_plan(tag_sum, (table, rx_elem_arg(tags)), {}, elem_args=None, elem_type="nodes", once_per_elem=False,
                                     times_to_run=-1, packages_to_load=None, context_packages=(), exec_objects=None,
                                     task_chunk_size=None, rng_seed=None, rng_kind=None, rng_scope="chunk", rx_args=None,
                                     local_state=None, parallelism=2, nodes=lambda: ["n"]), 3)
    print(f"build_plan (serializes the payload once):          {plan_s:.3f} s")

    def broadcast_roundtrip() -> None:
        bc = sc.broadcast(blob)
        bc.unpersist(blocking=True)

    print(f"sc.broadcast(payload bytes) + unpersist:           {best(broadcast_roundtrip, 3):.3f} s")
    job_arg = best(lambda: rx_exec(tag_sum, table, rx_elem_arg(tags), compute_context=cc), 3)
    job_exec = best(lambda: rx_exec(tag_sum_exec, rx_elem_arg(tags), exec_objects={"test_data": table}, compute_context=cc), 3)
    compute = best(lambda: [tag_sum(table, t) for t in tags], 3)
    print(f"whole job, argument:                                {job_arg:.3f} s")
    print(f"whole job, exec object:                             {job_exec:.3f} s")
    print(f"the 7 statistics alone, in this process:            {compute:.3f} s (about half of it per worker on 2 workers)")
    header("W3: cProfile of the driver thread of rx_exec with the table as an exec object")
    profiler = cProfile.Profile()
    profiler.enable()
    rx_exec(tag_sum_exec, rx_elem_arg(tags), exec_objects={"test_data": table}, compute_context=cc)
    profiler.disable()
    _print_stats(profiler, 10, sort="cumtime")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="+", choices=["rng", "worker", "driver", "payload", "all"])
    args = parser.parse_args(argv)
    what = set(args.what)
    if what & {"rng", "all"}:
        profile_rng()
    if what & {"worker", "all"}:
        profile_worker()
    if what & {"driver", "payload", "all"}:
        spark, cc = _spark()
        try:
            if what & {"driver", "all"}:
                profile_driver(spark, cc)
            if what & {"payload", "all"}:
                profile_payload(spark, cc)
        finally:
            cc.close()
            spark.stop()


if __name__ == "__main__":
    main()
