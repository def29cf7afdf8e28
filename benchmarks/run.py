"""Benchmarks: rxspark against raw PySpark, plain Python and its peers, with targets.

    python benchmarks/run.py                       # everything (about 10-15 minutes on 2 cores)
    python benchmarks/run.py --quick               # tiny sizes, 1 timed run: checks the suite works
    python benchmarks/run.py --only W1,W3 --repeat 7 --output-dir /tmp/bench

Writes RESULTS.md, results.json and scaling.png to --output-dir (default:
this directory). Workloads:

  W1  tiny tasks: the dice game of examples/dice.py, 10k and 100k games
  W2  CPU-bound: Mandelbrot 960 x 960, limit 256, by row, in pure Python
  W3  a large shared object: the guide's 5e6-row table, a per-tag statistic (7 tasks)
  W4  scaling: a trivial task 1e3 .. 1e6 times (seconds, microseconds per task, plot)
  W5  latency: a 2-task trivial job on a warm session
  W6  RNG cost: W1 (10k) with rng_seed, scope "chunk" and "task"
  W7  RxExecutor: list(ex.map(dice, range(10k))) against rx_exec of the same tasks, loky's map, Dask's client.map

Every Spark variant runs on one local[2] session: raw PySpark uses it
directly and RxSpark is attached to it, both warmed up before any timing.
The peers (joblib/loky, joblibspark, Dask) come from the extra ``bench``
(``pip install -e '.[bench]'``); each one missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLES = os.path.join(ROOT, "examples")
for _path in (EXAMPLES, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# Child processes (local pools, loky, Dask workers, Spark's Python workers)
# import the task functions by reference: give them the same path.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [HERE, EXAMPLES] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

import bench_workloads as wl  # noqa: E402
from bench_harness import Recorder, Variant, importable, machine_description  # noqa: E402
from bench_workloads import play_dice, play_dice_i, tag_sum, trivial, vmandelbrot  # noqa: E402

PRELIMINARY = ("Measured on a shared 2-core machine while other engineers were running test suites (see the load "
               "averages: the machine was oversubscribed), so the timings are noisy and parallel speedups are "
               "understated. The final numbers will be re-measured on a quiet machine.")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
PEERS = {"joblib": "joblib (loky)", "joblibspark": "joblibspark", "distributed": "Dask"}


@dataclass(frozen=True)
class Sizes:
    w1: tuple[int, ...]
    joblibspark: int
    w2_size: int
    w2_limit: int
    w3_rows: int
    w4: tuple[int, ...]
    w6: int
    w7: int

    @classmethod
    def full(cls) -> Sizes:
        return cls(w1=(10_000, 100_000), joblibspark=100, w2_size=960, w2_limit=256, w3_rows=5_000_000,
                   w4=(1_000, 10_000, 100_000, 1_000_000), w6=10_000, w7=10_000)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(w1=(100, 400), joblibspark=8, w2_size=40, w2_limit=32, w3_rows=20_000, w4=(100, 1_000, 10_000), w6=500, w7=500)


def log(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ result checks


def check_dice(n: int) -> Callable[[Any], None]:
    def check(values: Any) -> None:
        values = list(values)
        if len(values) != n or not set(values) <= {"Win", "Loss"}:
            raise AssertionError(f"dice: expected {n} Win/Loss results, got {len(values)}: {sorted(set(map(str, values)))[:5]}")

    return check


def check_ones(n: int) -> Callable[[Any], None]:
    def check(values: Any) -> None:
        values = list(values)
        if len(values) != n or any(v != 1 for v in values):
            raise AssertionError(f"trivial: expected {n} ones, got {len(values)} values")

    return check


def check_equal(expected: list[Any], what: str) -> Callable[[Any], None]:
    def check(values: Any) -> None:
        if list(values) != expected:
            raise AssertionError(f"{what}: the results differ from the expected ones")

    return check


def check_close(expected: list[float], what: str) -> Callable[[Any], None]:
    def check(values: Any) -> None:
        values = list(values)
        if len(values) != len(expected) or any(not math.isclose(a, b, rel_tol=1e-9) for a, b in zip(values, expected)):
            raise AssertionError(f"{what}: expected {expected}, got {values}")

    return check


# ------------------------------------------------------------------ the run


class Bench:
    def __init__(self, args: argparse.Namespace, sizes: Sizes, rec: Recorder) -> None:
        self.args = args
        self.sizes = sizes
        self.rec = rec
        self.spark: Any = None
        self.sc: Any = None
        self.cc: Any = None  # RxSpark attached to self.spark
        self.seq: Any = None
        self._localpar: Any = None
        self._dask: Any = None
        self.spark_info: dict[str, Any] = {}
        self.tmp = tempfile.mkdtemp(prefix="rxspark-bench-")

    # ------------------------------------------------------------ setup

    def start(self) -> None:
        import rxspark
        from rxspark import RxLocalSeq, RxSpark

        # Job records of long waiting calls and rx_share files go to a scratch directory.
        rxspark.rx_options(share_dir=os.path.join(self.tmp, "jobs"))
        self.seq = RxLocalSeq()
        from pyspark import SparkConf
        from pyspark.sql import SparkSession

        master = self.args.master
        # The properties RxSpark would give a session it starts (loopback, the driver's
        # interpreter and sys.path for the workers), so raw PySpark runs under the same ones.
        defaults, explicit = RxSpark(master=master).spark_config(master)
        conf = SparkConf()
        for key, value in defaults.items():
            conf.setIfMissing(key, value)
        conf.setAll(list(explicit.items()))
        conf.set("spark.driver.memory", self.args.driver_memory)
        conf.setMaster(master).setAppName("rxspark-benchmarks")
        log(f"starting Spark ({master}) ...")
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.spark = SparkSession.builder.config(conf=conf).getOrCreate()
        self.spark_info["session_start_s"] = time.perf_counter() - began
        self.sc = self.spark.sparkContext
        self.sc.setLogLevel("ERROR")
        self.cc = RxSpark(spark=self.spark, progress=False)
        self.spark_info.update(master=self.sc.master, spark_version=self.sc.version, default_parallelism=self.sc.defaultParallelism,
                               driver_memory=self.args.driver_memory)
        log(f"Spark {self.sc.version} started in {self.spark_info['session_start_s']:.1f} s")
        # Warm both paths (Python worker daemon, JIT, py4j) before any timing.
        sc, cc = self.sc, self.cc
        for _ in range(3):
            sc.parallelize(range(4), 2).map(lambda _: trivial()).collect()
            self._rx(trivial, times_to_run=4, compute_context=cc)
        empty = []
        for _ in range(5):
            began = time.perf_counter()
            sc.parallelize(range(2), 2).map(lambda x: x).collect()
            empty.append(time.perf_counter() - began)
        empty.sort()
        self.spark_info.update(empty_job_median_s=empty[len(empty) // 2], empty_job_runs=len(empty))

    @staticmethod
    def _rx(*args: Any, **kwargs: Any) -> Any:
        from rxspark import rx_exec

        return rx_exec(*args, **kwargs)

    @property
    def localpar(self) -> Any:
        if self._localpar is None:
            from rxspark import RxLocalParallel

            self._localpar = RxLocalParallel(2)
        return self._localpar

    def close(self) -> None:
        if self._dask is not None:
            self._close_dask()
        if self._localpar is not None:
            self._localpar.close()
        if importable("joblib"):
            try:
                from joblib.externals.loky import get_reusable_executor

                get_reusable_executor().shutdown(wait=True)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        if self.cc is not None:
            self.cc.close()  # attached: leaves the session running
        if self.spark is not None:
            self.spark.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def peer(self, module: str, workload: str, case: str, variant: str, n: int | None = None) -> bool:
        """Whether a peer can run; records the skip otherwise."""
        if self.args.skip_peers:
            self.rec.skip(workload, case, variant, "peers skipped (--skip-peers)", n=n)
            return False
        if not importable(module):
            self.rec.skip(workload, case, variant, f"{module} is not installed (pip install -e '.[bench]')", n=n)
            return False
        return True

    # ------------------------------------------------------------ W1

    def w1(self) -> None:
        rec, sc, cc, rx = self.rec, self.sc, self.cc, self._rx
        js_base = self._joblibspark_base()
        for n in self.sizes.w1:
            case, check = f"n={n}", check_dice(n)
            variants = [
                Variant("plain loop", lambda n=n: [play_dice() for _ in range(n)]),
                Variant("RxLocalSeq", lambda n=n: rx(play_dice, times_to_run=n, compute_context=self.seq)),
                Variant("RxLocalParallel(2)", lambda n=n: rx(play_dice, times_to_run=n, compute_context=self.localpar)),
                Variant("raw PySpark", lambda n=n: sc.parallelize(range(n), 5).map(lambda _: play_dice()).collect(), note="5 partitions"),
                Variant("RxSpark", lambda n=n: rx(play_dice, times_to_run=n, compute_context=cc),
                        note=f"default chunking: {min(n, cc.parallelism())} chunks"),
            ]
            if self.peer("joblib", "W1", case, "joblib loky (2 jobs)", n):
                from joblib import Parallel, delayed

                variants.append(Variant("joblib loky (2 jobs)",
                                        lambda n=n: Parallel(n_jobs=2, backend="loky")(delayed(play_dice)() for _ in range(n))))
            dask = self._w1_dask(case, n)
            if dask is not None:
                variants.append(dask)
            rec.measure_case("W1", case, [self._with(v, n, check) for v in variants])
            if js_base is not None:
                rec.extrapolate("W1", case, "joblibspark (2 jobs)", js_base, n, "joblibspark runs one Spark job per batch")

    @staticmethod
    def _with(v: Variant, n: int, check: Callable[[Any], None]) -> Variant:
        v.n, v.check = n, check
        return v

    def _joblibspark_base(self) -> Any:
        m = self.sizes.joblibspark
        case = f"n={m} (joblibspark)"
        if not self.peer("joblibspark", "W1", case, "joblibspark (2 jobs)", m):
            return None
        from joblib import Parallel, delayed, parallel_backend
        from joblibspark import register_spark

        register_spark()

        def run() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "local mode doesn't support stage-level scheduling"
                with parallel_backend("spark", n_jobs=2):
                    return Parallel()(delayed(play_dice)() for _ in range(m))

        result = self.rec.measure("W1", case, "joblibspark (2 jobs)", run, n=m, check=check_dice(m),
                                  note="measured at a size it can finish; the W1 sizes are extrapolated from it")
        self.rec.note("W1", f"joblibspark is measured at {m} tasks and extrapolated linearly to the W1 sizes "
                            "(it runs one Spark job per joblib batch).")
        return result

    def _w1_dask(self, case: str, n: int) -> Variant | None:
        variant = "Dask client.map (2 procs)"
        if not self.peer("distributed", "W1", case, variant, n):
            return None
        base = self.rec.too_slow("W1", variant, n)
        if base is not None:
            self.rec.extrapolate("W1", case, variant, base, n, f"a run would take over {self.args.budget_seconds:.0f} s")
            return None
        client = self._dask_client()
        return Variant(variant, lambda: client.gather(client.map(play_dice_i, range(n), pure=False)))

    def _dask_client(self) -> Any:
        if self._dask is None:
            import logging

            from dask.distributed import Client, LocalCluster

            began = time.perf_counter()
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
            self._dask = (cluster, client)
            self.rec.note("W1", f"Dask LocalCluster (2 worker processes, 1 thread each) started in {time.perf_counter() - began:.1f} s "
                                "(not included).")
        return self._dask[1]

    def _close_dask(self) -> None:
        cluster, client = self._dask
        self._dask = None
        try:
            client.close()
            cluster.close()
        except Exception:  # noqa: BLE001 - best effort
            pass

    # ------------------------------------------------------------ W2

    def w2(self) -> None:
        rec, sc, cc, rx = self.rec, self.sc, self.cc, self._rx
        from rxspark import rx_elem_arg

        size, lim = self.sizes.w2_size, self.sizes.w2_limit
        xs, ys = wl.mandelbrot_axes(size)
        reference = [vmandelbrot(xs, y, lim) for y in ys]
        check = check_equal(reference, "mandelbrot")
        partitions = sc.defaultParallelism
        rec.measure_case("W2", f"{size}x{size}, limit {lim}", [
            Variant("sequential loop", lambda: [vmandelbrot(xs, y, lim) for y in ys], n=size, check=check),
            Variant("RxLocalParallel(2)", lambda: rx(vmandelbrot, xs, rx_elem_arg(ys), lim, compute_context=self.localpar),
                    n=size, check=check),
            Variant("RxSpark", lambda: rx(vmandelbrot, xs, rx_elem_arg(ys), lim, compute_context=cc), n=size, check=check,
                    note=f"default chunking: {cc.parallelism()} chunks"),
            Variant("raw PySpark", lambda: sc.parallelize(ys, partitions).map(lambda y: vmandelbrot(xs, y, lim)).collect(),
                    n=size, check=check, note=f"{partitions} partitions"),
        ])
        rec.note("W2", f"{size} rows of {size} points, one task per row (rx_elem_arg over y), iteration limit {lim}; "
                       "'relative' is the speedup over the sequential loop.")

    # ------------------------------------------------------------ W3

    def w3(self) -> None:
        rec, sc, rx = self.rec, self.sc, self._rx
        from rxspark import rx_elem_arg, rx_share

        began = time.perf_counter()
        table = wl.make_table(self.sizes.w3_rows)
        made = time.perf_counter() - began
        tags = sorted(table["tag"].unique().tolist())
        expected = [tag_sum(table, t) for t in tags]
        check = check_close(expected, "per-tag sums")
        size_mb = table.memory_usage(deep=True).sum() / 1e6
        rec.note("W3", f"Table: {len(table):,} rows (tag A..G, a and b uniform), {size_mb:.0f} MB in pandas "
                       f"(tag dtype {table['tag'].dtype}); made in {made:.1f} s. {len(tags)} tasks, one per tag.")

        # The share: created once per use; its creation is timed like any variant.
        shares: list[Any] = []
        share_root = os.path.join(self.tmp, "shares")

        def create() -> Any:
            handle = rx_share(table, share_dir=share_root)
            shares.append(handle)
            return handle

        creation = rec.measure("W3", "setup", "rx_share creation", create,
                               note="writes the Arrow IPC file and hashes it; each run makes a new share")
        handle = shares.pop()
        for old in shares:
            old.delete()
        shares.clear()

        contexts = [("RxSpark", self.cc)]
        if not self.args.skip_localpar_w3:
            contexts.append(("RxLocalParallel(2)", self.localpar))
        for name, cc in contexts:
            variants = [
                Variant("argument", lambda cc=cc: rx(tag_sum, table, rx_elem_arg(tags), compute_context=cc)),
                Variant("exec object",
                        lambda cc=cc: rx(wl.tag_sum_exec, rx_elem_arg(tags), exec_objects={"test_data": table}, compute_context=cc)),
                Variant("rx_share", lambda cc=cc: rx(wl.tag_sum_shared, handle, rx_elem_arg(tags), compute_context=cc),
                        note="warm: each worker process loaded the share in the warm-up"),
            ]
            reused = None
            if name == "RxSpark":
                partitions = min(len(tags), sc.defaultParallelism)
                reused = sc.broadcast(table)
                variants += [
                    Variant("raw PySpark closure", lambda p=partitions: sc.parallelize(tags, p).map(lambda tag: tag_sum(table, tag)).collect(),
                            note=f"table captured by the mapped function; {partitions} partitions"),
                    Variant("raw PySpark broadcast per job", lambda p=partitions: self._broadcast_job(table, tags, p)),
                    Variant("raw PySpark broadcast reused",
                            lambda p=partitions, bc=reused: sc.parallelize(tags, p).map(lambda tag: tag_sum(bc.value, tag)).collect(),
                            note="one broadcast for all runs, like the share"),
                ]
            results = rec.measure_case("W3", name, [self._with(v, len(tags), check) for v in variants])
            shared = results[2]
            if creation.ok and shared.ok:
                assert creation.median is not None
                rec.derive("W3", name, "rx_share incl. creation", [creation.median + t for t in shared.times],
                           note="job time + median creation time", n=len(tags))
            if reused is not None:
                reused.destroy()
        handle.delete()
        rec.note("W3", "rx_share: the 'first' column is the first job after the share was made, when each worker process "
                       "loads (and verifies) the file; later jobs find it in the worker's cache. The same holds for the "
                       "reused raw broadcast.")

    def _broadcast_job(self, table: Any, tags: list[str], partitions: int) -> Any:
        sc = self.sc
        bc = sc.broadcast(table)
        try:
            return sc.parallelize(tags, partitions).map(lambda tag: tag_sum(bc.value, tag)).collect()
        finally:
            bc.unpersist(blocking=False)

    # ------------------------------------------------------------ W4

    def w4(self) -> None:
        rec, sc, cc, rx = self.rec, self.sc, self.cc, self._rx
        for n in self.sizes.w4:
            partitions = min(n, cc.parallelism())  # RxSpark's default chunk count
            rec.measure_case("W4", f"n={n}", [self._with(v, n, check_ones(n)) for v in [
                Variant("plain loop", lambda n=n: [trivial() for _ in range(n)]),
                Variant("RxLocalSeq", lambda n=n: rx(trivial, times_to_run=n, compute_context=self.seq)),
                Variant("raw PySpark", lambda n=n, p=partitions: sc.parallelize(range(n), p).map(lambda _: trivial()).collect(),
                        note=f"{partitions} partitions"),
                Variant("RxSpark", lambda n=n: rx(trivial, times_to_run=n, compute_context=cc), note=f"{partitions} chunks"),
            ]])

    # ------------------------------------------------------------ W5

    def w5(self) -> None:
        rec, sc, cc, rx = self.rec, self.sc, self.cc, self._rx
        repeat = self.args.repeat * 4
        check = check_ones(2)
        rec.measure_case("W5", "2 tasks", [
            Variant("raw PySpark", lambda: sc.parallelize(range(2), 2).map(lambda _: trivial()).collect(), n=2, check=check,
                    repeat=repeat),
            Variant("RxSpark", lambda: rx(trivial, times_to_run=2, compute_context=cc), n=2, check=check, repeat=repeat),
        ])
        rec.note("W5", f"{repeat} timed runs each (cheap, and latency is noisy).")

    # ------------------------------------------------------------ W6

    def w6(self) -> None:
        rec, rx = self.rec, self._rx
        n = self.sizes.w6
        check = check_dice(n)
        task_scope: dict[str, list[Any]] = {}

        def same_across_contexts(name: str) -> Callable[[Any], None]:
            def verify(values: Any) -> None:
                check(values)
                task_scope[name] = list(values)
                first = next(iter(task_scope.values()))
                if task_scope[name] != first:
                    raise AssertionError("rng_scope='task' gave different results on different contexts")

            return verify

        for name, cc in (("RxSpark", self.cc), ("RxLocalSeq", self.seq)):
            rec.measure_case("W6", name, [
                Variant("no seed", lambda cc=cc: rx(play_dice, times_to_run=n, compute_context=cc), n=n, check=check),
                Variant("rng_seed, scope chunk",
                        lambda cc=cc: rx(play_dice, times_to_run=n, rng_seed=42, rng_scope="chunk", compute_context=cc), n=n, check=check),
                Variant("rng_seed, scope task",
                        lambda cc=cc: rx(play_dice, times_to_run=n, rng_seed=42, rng_scope="task", compute_context=cc), n=n,
                        check=same_across_contexts(name)),
            ])
        rec.note("W6", f"{n} dice games, default chunking; rng_seed=42 (PCG64). The scope-'task' results are checked to be "
                       "identical on both contexts.")

    # ------------------------------------------------------------ W7

    def w7(self) -> None:
        import math

        from rxspark import RxExecutor, rx_elem_arg
        from rxspark.executor import _CHUNKS_PER_WORKER

        rec, rx = self.rec, self._rx
        n = self.sizes.w7
        check = check_dice(n)
        executors = []
        try:
            for name, cc in (("RxSpark", self.cc), ("RxLocalParallel(2)", self.localpar)):
                ex = RxExecutor(compute_context=cc)
                executors.append(ex)
                variants = [
                    Variant("RxExecutor map", lambda ex=ex: list(ex.map(play_dice_i, range(n))), n=n, check=check),
                    Variant("rx_exec", lambda cc=cc: rx(play_dice_i, rx_elem_arg(range(n)), compute_context=cc), n=n, check=check,
                            note="the same calls, default chunking"),
                ]
                if name == "RxLocalParallel(2)":
                    from loky import get_reusable_executor

                    chunk = max(1, math.ceil(n / (_CHUNKS_PER_WORKER * cc.parallelism())))
                    variants.append(Variant("loky map (2 workers)",
                                            lambda chunk=chunk: list(get_reusable_executor(2).map(play_dice_i, range(n), chunksize=chunk)),
                                            n=n, check=check, note=f"chunksize={chunk}, as RxExecutor chunks one batch"))
                else:
                    dask = self._w7_dask(name, n, check)
                    if dask is not None:
                        variants.append(dask)
                rec.measure_case("W7", name, variants)
        finally:
            for ex in executors:
                ex.shutdown()
        rec.note("W7", f"{n} dice games as {n} calls of play_dice_i(i). RxExecutor batches the calls submitted close together "
                       "into one job per batch (a map queues all its calls at once: one job); rx_exec runs them as one job.")

    def _w7_dask(self, case: str, n: int, check: Callable[[Any], None]) -> Variant | None:
        variant = "Dask client.map (2 procs)"
        if not self.peer("distributed", "W7", case, variant, n):
            return None
        client = self._dask_client()
        return Variant(variant, lambda: client.gather(client.map(play_dice_i, range(n), pure=False)), n=n, check=check)


# ------------------------------------------------------------------ command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 timed run (checks the suite works; numbers mean nothing)")
    parser.add_argument("--only", default=None, help="comma-separated workloads, e.g. W1,W3 (default: all)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per variant after the warm-up (default 5; 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per variant (default 1; the first one's result is checked)")
    parser.add_argument("--output-dir", default=HERE, help="where RESULTS.md, results.json and scaling.png go (default: benchmarks/)")
    parser.add_argument("--master", default="local[2]", help="Spark master of the shared session (default local[2])")
    parser.add_argument("--driver-memory", default="2g", help="spark.driver.memory of the session (default 2g; W3 broadcasts a big table)")
    parser.add_argument("--budget-seconds", type=float, default=60.0,
                        help="a variant that would run longer than this per call is extrapolated from a smaller size (default 60)")
    parser.add_argument("--slow-seconds", type=float, default=20.0, help="a variant whose warm-up took longer gets fewer timed runs (default 20)")
    parser.add_argument("--slow-repeat", type=int, default=2, help="timed runs of such a slow variant (default 2)")
    parser.add_argument("--skip-peers", action="store_true", help="skip joblib, joblibspark and Dask")
    parser.add_argument("--skip-localpar-w3", action="store_true", help="run W3 on RxSpark only")
    parser.add_argument("--preliminary", action="store_true",
                        help="mark the results as preliminary (noisy machine; to be re-measured on a quiet one)")
    parser.add_argument("--note", default=None, metavar="TEXT", help="a note printed at the top of RESULTS.md")
    parser.add_argument("--rerender", action="store_true",
                        help="measure nothing: rebuild RESULTS.md and scaling.png from the results.json in --output-dir")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0")
    if args.only:
        wanted = [w.strip().upper() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in WORKLOADS]
        if unknown:
            parser.error(f"--only: unknown workload(s) {unknown}; choose from {','.join(WORKLOADS)}")
        args.workloads = [w for w in WORKLOADS if w in wanted]
    else:
        args.workloads = list(WORKLOADS)
    args.output_dir = os.path.abspath(args.output_dir)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench_report import rerender, write_all

    if args.rerender:
        for t in rerender(args.output_dir):
            log(f"  {t.status:>12}  {t.text}: {t.measured.replace('**', '')}")
        return 0

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    rec = Recorder(repeat=args.repeat, warmup=args.warmup, slow_seconds=args.slow_seconds, slow_repeat=args.slow_repeat,
                   budget_seconds=args.budget_seconds, log=log)
    machine = machine_description()
    log(f"rxspark benchmarks: {', '.join(args.workloads)}; {args.repeat} timed runs after {args.warmup} warm-up; "
        f"{machine['cores']} cores, load average {machine['load_average_at_start']}")
    began = time.perf_counter()
    bench = Bench(args, sizes, rec)
    workload_seconds: dict[str, float] = {}
    try:
        bench.start()
        workload_seconds["Spark start"] = time.perf_counter() - began
        for workload in args.workloads:
            started = time.perf_counter()
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            log(f"{workload} (load average {load:.1f})" if load is not None else workload)
            if load is not None:
                rec.note(workload, f"1-minute load average when this workload started: {load:.1f} on {os.cpu_count()} cores.")
            getattr(bench, workload.lower())()
            workload_seconds[workload] = time.perf_counter() - started
    finally:
        bench.close()
    elapsed = time.perf_counter() - began
    machine["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    command = ("python benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
    config = {
        "command": command,
        "date": machine["date"],
        "elapsed_s": elapsed,
        "workload_seconds": workload_seconds,
        "quick": args.quick,
        "preliminary": PRELIMINARY if args.preliminary else None,
        "note": args.note,
        "workloads": args.workloads,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "slow_seconds": args.slow_seconds,
        "slow_repeat": args.slow_repeat,
        "budget_seconds": args.budget_seconds,
        "sizes": asdict(sizes),
        "peers": {module: importable(module) and not args.skip_peers for module in PEERS},
    }
    targets = write_all(args.output_dir, machine, config, rec, {"spark": bench.spark_info})
    log(f"\nwrote {os.path.join(args.output_dir, 'RESULTS.md')} and results.json in {elapsed:.0f} s")
    for t in targets:
        log(f"  {t.status:>12}  {t.text}: {t.measured.replace('**', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
