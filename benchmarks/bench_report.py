"""Targets, RESULTS.md, results.json and the scaling plot, from one run's results.

Every target is a ratio (or a difference) of medians measured in the same run,
so machine-wide slowdowns affect both sides alike; the ratio of minimums is
shown beside it as a second opinion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench_harness import Recorder, Result

TITLES = {
    "W1": "W1 tiny tasks: the dice game",
    "W2": "W2 CPU-bound: Mandelbrot by row",
    "W3": "W3 large shared object: per-tag statistic of a big table",
    "W4": "W4 scaling: a trivial task, 1e3 to 1e6 times",
    "W5": "W5 latency: a 2-task trivial job on a warm session",
    "W6": "W6 RNG cost: the dice game with rng_seed",
    "W7": "W7 RxExecutor: map of 10k dice games",
}

# The variant each workload's "relative" column divides by (per case).
BASELINES = {
    "W1": "raw PySpark",
    "W2": "sequential loop",
    "W3": "argument",
    "W4": "raw PySpark",
    "W5": "raw PySpark",
    "W6": "no seed",
    "W7": "rx_exec",
}


@dataclass
class Target:
    id: str
    workload: str
    text: str  # what is asked
    measured: str  # the numbers
    value: float | None  # the ratio / difference judged
    limit: float
    met: bool | None  # None: not measured in this run

    @property
    def status(self) -> str:
        return "not measured" if self.met is None else ("met" if self.met else "MISSED")


def _pair(rec: Recorder, workload: str, case: str, a: str, b: str) -> tuple[Result, Result] | None:
    ra, rb = rec.get(workload, case, a), rec.get(workload, case, b)
    if ra is None or rb is None or not ra.ok or not rb.ok:
        return None
    return ra, rb


def _fmt_s(x: float | None) -> str:
    """Seconds, with the unit: '12.3 s', '0.245 s', '4.12 ms'."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f} s"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 0.01:
        return f"{x:.3f} s"
    return f"{x * 1000:.2f} ms"


def _ratio_target(
    rec: Recorder, tid: str, workload: str, case: str, num: str, den: str, limit: float, text: str, at_least: bool = False
) -> Target:
    """``num / den`` (medians) at most ``limit`` (or at least, with ``at_least``)."""
    pair = _pair(rec, workload, case, num, den)
    if pair is None:
        return Target(tid, workload, text, f"{num} or {den} not measured", None, limit, None)
    a, b = pair
    assert a.median and b.median and a.min and b.min
    ratio, ratio_min = a.median / b.median, a.min / b.min
    met = ratio >= limit if at_least else ratio <= limit
    measured = f"{num} {_fmt_s(a.median)} / {den} {_fmt_s(b.median)} = **{ratio:.2f}x** (mins: {ratio_min:.2f}x)"
    return Target(tid, workload, text, measured, ratio, limit, met)


def evaluate_targets(rec: Recorder) -> list[Target]:
    targets: list[Target] = []
    workloads = {r.workload for r in rec.results}
    if "W1" in workloads:
        for case in [c for c in _cases(rec, "W1") if rec.get("W1", c, "RxSpark") is not None]:
            targets.append(_ratio_target(rec, f"W1-spark-{case}", "W1", case, "RxSpark", "raw PySpark", 1.0,
                                         f"W1 {case}: RxSpark at most 1.0x raw PySpark"))
            targets.append(_ratio_target(rec, f"W1-seq-{case}", "W1", case, "RxLocalSeq", "plain loop", 1.5,
                                         f"W1 {case}: RxLocalSeq at most 1.5x the plain loop"))
    if "W2" in workloads:
        for case in _cases(rec, "W2"):
            for variant in ("RxSpark", "RxLocalParallel(2)"):
                targets.append(_ratio_target(rec, f"W2-{variant}", "W2", case, "sequential loop", variant, 1.8,
                                             f"W2: {variant} speedup at least 1.8x over sequential", at_least=True))
    if "W3" in workloads:
        for case in [c for c in _cases(rec, "W3") if c != "setup"]:
            for variant in ("exec object", "rx_share"):
                targets.append(_ratio_target(rec, f"W3-{case}-{variant}", "W3", case, "argument", variant, 2.0,
                                             f"W3 {case}: {variant} at least 2x faster than the table as an argument",
                                             at_least=True))
    if "W4" in workloads:
        cases = _cases(rec, "W4")
        if cases:
            case = max(cases, key=_case_n)
            pair = _pair(rec, "W4", case, "RxSpark", "raw PySpark")
            text = f"W4 {case}: RxSpark per-task cost no higher than raw PySpark's"
            if pair is None:
                targets.append(Target("W4-per-task", "W4", text, "not measured", None, 1.0, None))
            else:
                a, b = pair
                assert a.per_task_us is not None and b.per_task_us is not None
                ratio = a.per_task_us / b.per_task_us
                targets.append(Target("W4-per-task", "W4", text,
                                      f"RxSpark {a.per_task_us:.2f} us/task vs raw {b.per_task_us:.2f} us/task = **{ratio:.2f}x**",
                                      ratio, 1.0, ratio <= 1.0))
    if "W5" in workloads:
        for case in _cases(rec, "W5"):
            pair = _pair(rec, "W5", case, "RxSpark", "raw PySpark")
            text = "W5: RxSpark at most raw PySpark + 30 ms"
            if pair is None:
                targets.append(Target("W5-latency", "W5", text, "not measured", None, 0.030, None))
            else:
                a, b = pair
                assert a.median is not None and b.median is not None and a.min is not None and b.min is not None
                diff = a.median - b.median
                targets.append(Target("W5-latency", "W5", text,
                                      f"RxSpark {a.median * 1000:.1f} ms - raw {b.median * 1000:.1f} ms = **{diff * 1000:+.1f} ms** "
                                      f"(mins: {(a.min - b.min) * 1000:+.1f} ms)", diff, 0.030, diff <= 0.030))
    if "W6" in workloads:
        for case in _cases(rec, "W6"):
            targets.append(_ratio_target(rec, f"W6-{case}-chunk", "W6", case, "rng_seed, scope chunk", "no seed", 1.1,
                                         f"W6 {case}: seeded scope 'chunk' at most 1.1x unseeded"))
            targets.append(_ratio_target(rec, f"W6-{case}-task", "W6", case, "rng_seed, scope task", "no seed", 1.5,
                                         f"W6 {case}: seeded scope 'task' at most 1.5x unseeded"))
    if "W7" in workloads:
        targets.append(_ratio_target(rec, "W7-spark", "W7", "RxSpark", "RxExecutor map", "rx_exec", 2.0,
                                     "W7 RxSpark: RxExecutor map at most 2x rx_exec of the same calls"))
        targets.append(_ratio_target(rec, "W7-localpar", "W7", "RxLocalParallel(2)", "RxExecutor map", "loky map (2 workers)", 1.5,
                                     "W7 RxLocalParallel(2): RxExecutor map at most 1.5x loky's map with the same chunking"))
    return targets


def _cases(rec: Recorder, workload: str) -> list[str]:
    seen: dict[str, None] = {}
    for r in rec.results:
        if r.workload == workload:
            seen.setdefault(r.case, None)
    return list(seen)


def _case_n(case: str) -> int:
    try:
        return int(case.split("=", 1)[1])
    except (IndexError, ValueError):
        return -1


# ------------------------------------------------------------------ files


def write_json(path: str, machine: dict[str, Any], config: dict[str, Any], rec: Recorder, targets: Sequence[Target], extra: dict[str, Any]) -> None:
    data = {
        "machine": machine,
        "config": config,
        **extra,
        "results": [r.to_dict() for r in rec.results],
        "notes": rec.notes,
        "targets": [{**asdict(t), "status": t.status} for t in targets],
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.write("\n")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _workload_table(rec: Recorder, workload: str) -> list[str]:
    lines = [
        _row(["case", "variant", "tasks", "min", "median", "first", "us/task", "relative", "note"]),
        _row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]),
    ]
    baseline_name = BASELINES.get(workload)
    for case in _cases(rec, workload):
        base = rec.get(workload, case, baseline_name) if baseline_name else None
        for r in [r for r in rec.results if r.workload == workload and r.case == case]:
            if r.skipped:
                lines.append(_row([case, r.variant, str(r.n or ""), "-", "-", "-", "-", "-", f"skipped: {r.skipped}"]))
                continue
            relative = "-"
            if base is not None and base.ok and r.median and base.median:
                if workload == "W2":
                    relative = f"{base.median / r.median:.2f}x speedup"
                elif workload == "W5":
                    relative = f"{(r.median - base.median) * 1000:+.1f} ms"
                else:
                    relative = f"{r.median / base.median:.2f}x"
            per = f"{r.per_task_us:.2f}" if r.per_task_us is not None else "-"
            runs = f"{len(r.times)} runs" if not r.derived and not r.extrapolated_from else ""
            note = "; ".join(x for x in (runs, r.note) if x)
            lines.append(_row([case, r.variant, str(r.n or ""), _fmt_s(r.min), _fmt_s(r.median), _fmt_s(r.first), per, relative, note]))
    return lines


def write_markdown(
    path: str,
    machine: dict[str, Any],
    config: dict[str, Any],
    rec: Recorder,
    targets: Sequence[Target],
    extra: dict[str, Any],
    plot_name: str | None,
) -> None:
    out: list[str] = ["# rxspark benchmarks", ""]
    if config.get("quick"):
        out += ["> **Quick run** (tiny sizes, for checking that the suite works): the numbers below mean nothing.", ""]
    if config.get("preliminary"):
        out += [f"> **Preliminary.** {config['preliminary']}", ""]
    if config.get("note"):
        out += [f"> {config['note']}", ""]
    out += [
        f"Command: `{config['command']}` ({config['date']}, {config['elapsed_s']:.0f} s in all: "
        + ", ".join(f"{w} {s:.0f} s" for w, s in config.get("workload_seconds", {}).items()) + ").",
        "",
        "## Machine",
        "",
        _row(["", ""]),
        _row(["---", "---"]),
    ]
    for key in ("cpu_model", "cores", "cores_usable", "memory_gb", "load_average_at_start", "load_average_at_end", "platform",
                "python", "java", "pyspark", "numpy", "pandas", "pyarrow", "cloudpickle", "rxspark", "rxspark_commit",
                "joblib", "joblibspark", "loky", "dask", "distributed"):
        value = machine.get(key)
        if isinstance(value, list):
            value = ", ".join(f"{v:.2f}" for v in value)
        out.append(_row([key, "not installed" if value is None else str(value).replace("|", "/")]))
    spark = extra.get("spark") or {}
    if spark:
        out += ["", f"Spark: master `{spark.get('master')}`, one session shared by every Spark variant (RxSpark attached to it), "
                    f"started in {spark.get('session_start_s', 0):.1f} s; an empty 2-partition job took "
                    f"{_fmt_s(spark.get('empty_job_median_s'))} (median of {spark.get('empty_job_runs')})."]
    out += [
        "",
        "## Method",
        "",
        f"Each variant: {config['warmup']} warm-up call (its result is checked against the expected one; its time is the "
        f"'first' column), then {config['repeat']} timed calls, each after a garbage collection; min and median of those. "
        "The timed calls of the variants of a case are interleaved (call 1 of every variant, then call 2 ...), so a "
        "change in the machine's load hits them alike. "
        f"A variant whose warm-up took more than {config['slow_seconds']:.0f} s gets {config['slow_repeat']} timed runs "
        f"(said in its note). A variant that would run longer than {config['budget_seconds']:.0f} s per call is "
        "extrapolated linearly from the largest smaller size measured (labelled). Targets compare medians from this "
        "same run; the ratio of minimums is shown beside each. 'relative' is the median over the case's "
        f"baseline ({', '.join(f'{w}: {b}' for w, b in BASELINES.items())}).",
        "",
        "## Targets",
        "",
        _row(["target", "measured", "status"]),
        _row(["---", "---", "---"]),
    ]
    for t in targets:
        out.append(_row([t.text, t.measured, f"**{t.status}**" if t.met is False else t.status]))
    missed = [t for t in targets if t.met is False]
    if missed:
        out += ["", f"{len(missed)} target(s) missed; what bounds each, measured, and the proposed fix: [PROFILES.md](PROFILES.md)."]
    for workload in config["workloads"]:
        if not any(r.workload == workload for r in rec.results):
            continue
        out += ["", f"## {TITLES.get(workload, workload)}", ""]
        for text in rec.notes.get(workload, []):
            out += [f"- {text}"]
        if rec.notes.get(workload):
            out.append("")
        out += _workload_table(rec, workload)
        if workload == "W4" and plot_name:
            out += ["", f"![scaling]({plot_name})"]
    out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def plot_scaling(path: str, rec: Recorder) -> str | None:
    """seconds and microseconds per task against the number of tasks (W4). Returns why not, if not drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (extra 'bench'): no plot"
    series: dict[str, list[tuple[int, float, float]]] = {}
    for r in rec.results:
        if r.workload == "W4" and r.ok and r.n and r.median is not None and r.per_task_us is not None:
            series.setdefault(r.variant, []).append((r.n, r.median, r.per_task_us))
    if not series:
        return "no W4 results to plot"
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for variant, points in series.items():
        points.sort()
        ns = [p[0] for p in points]
        left.plot(ns, [p[1] for p in points], marker="o", label=variant)
        right.plot(ns, [p[2] for p in points], marker="o", label=variant)
    left.set(xscale="log", yscale="log", xlabel="tasks", ylabel="seconds (median)", title="Wall time")
    right.set(xscale="log", yscale="log", xlabel="tasks", ylabel="microseconds per task", title="Cost per task")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("W4: a trivial task on local[2] (RxSpark and raw PySpark share one session)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_all(output_dir: str, machine: dict[str, Any], config: dict[str, Any], rec: Recorder, extra: dict[str, Any]) -> list[Target]:
    os.makedirs(output_dir, exist_ok=True)
    plot_name = "scaling.png"
    why_not = plot_scaling(os.path.join(output_dir, plot_name), rec) if "W4" in config["workloads"] else "W4 not run"
    if why_not:
        plot_name = None
        if "W4" in config["workloads"]:
            rec.note("W4", why_not)
    targets = evaluate_targets(rec)
    write_json(os.path.join(output_dir, "results.json"), machine, config, rec, targets, extra)
    write_markdown(os.path.join(output_dir, "RESULTS.md"), machine, config, rec, targets, extra, plot_name)
    return targets


def rerender(output_dir: str) -> list[Target]:
    """Rebuild RESULTS.md and the plot from the results.json of an earlier run (no measuring)."""
    from bench_harness import Result

    with open(os.path.join(output_dir, "results.json")) as f:
        data = json.load(f)
    rec = Recorder(repeat=data["config"]["repeat"], log=lambda _text: None)
    rec.results = [Result.from_dict(r) for r in data["results"]]
    rec.notes = data.get("notes", {})
    machine = data["machine"]
    if isinstance(machine.get("java"), str):
        machine["java"] = machine["java"].replace(" | ", "; ")
    extra = {k: v for k, v in data.items() if k not in ("machine", "config", "results", "notes", "targets")}
    return write_all(output_dir, machine, data["config"], rec, extra)
