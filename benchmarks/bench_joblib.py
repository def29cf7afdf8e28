"""J1-J3: the joblib backend "rxspark" against joblibspark and loky, in one run.

    python benchmarks/bench_joblib.py                 # local[2], writes runs/joblib-<date>.json
    python benchmarks/bench_joblib.py --quick         # small sizes, one timed run
    python benchmarks/bench_joblib.py --output-dir none
    python benchmarks/bench_joblib.py --cases J2 --repeat 9   # one case (J2 starts no Spark)

* J1: 1000 small joblib calls (``delayed(play_dice)()``, the dice game of
  examples/dice.py), ``n_jobs=2``: rxspark on RxSpark against joblibspark on the
  same Spark session (target: rxspark at least 20x faster).
* J2: the same 1000 calls on RxLocalParallel(2) against joblib's loky backend
  with 2 workers (target: at most 1.5x loky's time).
* J3: examples/grid_search.py's 24-candidate x 5-fold ``GridSearchCV`` (120 fits),
  ``n_jobs=2``, on RxSpark, loky and joblibspark.

Variants of a case are interleaved (bench_harness); joblib's own auto-batching is
left on for every backend. Prints a table and writes joblib-<date>.json under
--output-dir (default benchmarks/runs/); it never touches RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import warnings
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (os.path.join(ROOT, "examples"), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import bench_workloads as wl  # noqa: E402
import cloudpickle  # noqa: E402
import grid_search  # noqa: E402
from bench_harness import Recorder, Variant, machine_description  # noqa: E402
from joblib import Parallel, delayed, parallel_config  # noqa: E402

cloudpickle.register_pickle_by_value(wl)

TARGETS = {"J1": ("rxspark on RxSpark", "joblibspark", "<=", 1 / 20), "J2": ("rxspark on RxLocalParallel(2)", "loky", "<=", 1.5)}


def check_dice(n: int) -> Any:
    def check(values: Any) -> None:
        if len(values) != n or not set(values) <= {"Win", "Loss"}:
            raise AssertionError(f"dice: expected {n} Win/Loss results, got {len(values)}")

    return check


def dice_calls(n: int, **config: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # joblibspark: "local mode doesn't support stage-level scheduling"
        with parallel_config(n_jobs=2, **config):
            return Parallel()(delayed(wl.play_dice)() for _ in range(n))


def fit_grid(folds: int, max_iter: int, **config: Any) -> list[float]:
    features, labels = grid_search.load_data()
    search = grid_search.make_search(folds, max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with parallel_config(n_jobs=2, **config):
            search.fit(features, labels)
    return [float(s) for s in search.cv_results_["mean_test_score"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--quick", action="store_true", help="200 calls, a 24 x 2 grid, one timed run")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None, help="joblib calls of J1/J2 (default 1000)")
    parser.add_argument("--max-iter", type=int, default=5, help="SGD epochs per fit in J3")
    parser.add_argument("--cases", default="J1,J2,J3", help="which cases, comma-separated (default J1,J2,J3)")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "runs"), help="where joblib-<date>.json goes ('none': print only)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    calls = args.calls or (200 if args.quick else 1000)
    folds = 2 if args.quick else 5
    cases = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - {"J1", "J2", "J3"})
    if unknown or not cases:
        parser.error(f"--cases takes J1, J2 and/or J3, comma-separated; got {args.cases!r}")
    spark = "J1" in cases or "J3" in cases

    import rxspark
    import rxspark.joblib  # noqa: F401 - registers "rxspark"

    cc = None
    if spark:
        from joblibspark import register_spark
        from pyspark import cloudpickle as spark_cloudpickle

        spark_cloudpickle.register_pickle_by_value(wl)  # joblibspark pickles with PySpark's own copy
        register_spark()
        cc = rxspark.RxSpark(master=args.master, progress=False).connect()
    localpar = rxspark.RxLocalParallel(2)
    rec = Recorder(repeat=repeat, log=lambda text: print(text, flush=True))
    rxspark_spark = dict(backend="rxspark", compute_context=cc)
    for _ in range(2):  # warm the Python workers of every path
        if spark:
            dice_calls(8, **rxspark_spark)
            dice_calls(8, backend="spark")
        dice_calls(8, backend="rxspark", compute_context=localpar)
        dice_calls(8, backend="loky")

    if "J1" in cases:
        rec.measure_case("J1", f"{calls} calls", [
            Variant("rxspark on RxSpark", lambda: dice_calls(calls, **rxspark_spark), n=calls, check=check_dice(calls)),
            Variant("joblibspark", lambda: dice_calls(calls, backend="spark"), n=calls, check=check_dice(calls)),
        ])
    if "J2" in cases:
        rec.measure_case("J2", f"{calls} calls", [
            Variant("rxspark on RxLocalParallel(2)", lambda: dice_calls(calls, backend="rxspark", compute_context=localpar),
                    n=calls, check=check_dice(calls)),
            Variant("loky", lambda: dice_calls(calls, backend="loky"), n=calls, check=check_dice(calls)),
        ])
    fits = 24 * folds

    def same_scores_on_every_run(scores: list[float]) -> None:
        again = fit_grid(folds, args.max_iter, rng_seed=7, **rxspark_spark)
        if again != scores:
            raise AssertionError("the seeded grid search gave other scores on a second run")

    if "J3" in cases:
        rec.measure_case("J3", f"24 x {folds} grid search", [
            Variant("rxspark on RxSpark", lambda: fit_grid(folds, args.max_iter, rng_seed=7, **rxspark_spark), n=fits,
                    check=same_scores_on_every_run, note="rng_seed=7"),
            Variant("loky", lambda: fit_grid(folds, args.max_iter, backend="loky"), n=fits),
            Variant("joblibspark", lambda: fit_grid(folds, args.max_iter, backend="spark"), n=fits),
        ])

    print(f"\n{'case':<4} {'variant':<30} {'median s':>9} {'min s':>8} {'ms/call':>8}")
    rows = []
    for r in rec.results:
        rows.append(r.to_dict())
        print(f"{r.workload:<4} {r.variant:<30} {r.median:>9.3f} {r.min:>8.3f} {1000 * r.median / r.n:>8.2f}")
    verdicts = {}
    for workload, (ours_name, base_name, _, target) in TARGETS.items():
        if workload not in cases:
            continue
        ours = next(r for r in rec.results if r.workload == workload and r.variant == ours_name)
        base = next(r for r in rec.results if r.workload == workload and r.variant == base_name)
        ratio = ours.median / base.median
        verdicts[workload] = {"ratio": ratio, "target": target, "met": ratio <= target}
        print(f"{workload}: {ours_name} / {base_name} = {ratio:.3f}x (target <= {target:g}x: "
              f"{'met' if ratio <= target else 'missed'}; {base.median / ours.median:.1f}x the other way)")
    j3 = {r.variant: r.median for r in rec.results if r.workload == "J3"}
    if j3:
        print("J3: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in j3.items()))
    if args.output_dir.lower() != "none":
        subset = "" if len(cases) == 3 else "-" + "-".join(sorted(cases))
        path = os.path.join(args.output_dir, f"joblib-{datetime.date.today().isoformat()}{subset}.json")
        with open(path, "w") as f:
            json.dump({"machine": machine_description(), "master": args.master if spark else None,
                       "parallelism": cc.parallelism() if cc is not None else localpar.parallelism(),
                       "cases": cases, "calls": calls, "folds": folds, "max_iter": args.max_iter, "repeat": repeat,
                       "results": rows, "targets": verdicts}, f, indent=1)
        print(f"written: {path}")
    localpar.close()
    if cc is not None:
        cc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
