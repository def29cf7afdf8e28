"""Timing and bookkeeping for ``run.py``: how a variant is measured and recorded.

Every variant of a workload is measured in the same run, the same way: one
warm-up call (its result is checked, so a broken variant fails loudly instead
of reporting a number), then ``repeat`` timed calls with a garbage collection
before each. The timed calls of a case's variants are interleaved (run 1 of
each variant, then run 2 ...), so a load change on a shared machine hits them
alike. Reported: every time, the minimum, the median and the warm-up
("first") time. A variant whose warm-up took longer than ``slow_seconds`` is
timed ``slow_repeat`` times only, and says so in its note. A variant that would
take longer than ``budget_seconds`` per call (judged from its time at a
smaller size) is not run at the large size: its figure is extrapolated
linearly from the smaller size and labelled as such.
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Result:
    """One variant of one case of a workload."""

    workload: str
    case: str
    variant: str
    n: int | None = None  # tasks (for per-task figures)
    times: list[float] = field(default_factory=list)
    first: float | None = None  # the warm-up call
    min: float | None = None
    median: float | None = None
    note: str = ""
    skipped: str = ""  # why it did not run (then no times)
    extrapolated_from: int | None = None  # measured at this many tasks, scaled to n
    derived: bool = False  # computed from other results (no run of its own)

    @property
    def ok(self) -> bool:
        return not self.skipped and self.median is not None

    @property
    def per_task_us(self) -> float | None:
        if not self.ok or not self.n:
            return None
        return self.median / self.n * 1e6

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["per_task_us"] = self.per_task_us
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class Recorder:
    """Runs and records the variants of a benchmark run."""

    def __init__(
        self,
        repeat: int,
        warmup: int = 1,
        slow_seconds: float = 20.0,
        slow_repeat: int = 2,
        budget_seconds: float = 60.0,
        log: Callable[[str], None] = print,
    ) -> None:
        self.repeat = repeat
        self.warmup = warmup
        self.slow_seconds = slow_seconds
        self.slow_repeat = slow_repeat
        self.budget_seconds = budget_seconds
        self.log = log
        self.results: list[Result] = []
        self.notes: dict[str, list[str]] = {}

    # ------------------------------------------------------------ lookups

    def get(self, workload: str, case: str, variant: str) -> Result | None:
        for r in self.results:
            if (r.workload, r.case, r.variant) == (workload, case, variant):
                return r
        return None

    def note(self, workload: str, text: str) -> None:
        self.notes.setdefault(workload, []).append(text)

    # ------------------------------------------------------------ recording

    def _add(self, result: Result) -> Result:
        self.results.append(result)
        if result.skipped:
            self.log(f"  {result.workload} {result.case:<18} {result.variant:<34} skipped: {result.skipped}")
        else:
            extra = f"  [{result.note}]" if result.note else ""
            per = f"  {result.per_task_us:9.2f} us/task" if result.per_task_us is not None else ""
            self.log(
                f"  {result.workload} {result.case:<18} {result.variant:<34} min {result.min:9.4f} s  "
                f"median {result.median:9.4f} s{per}{extra}"
            )
        return result

    def skip(self, workload: str, case: str, variant: str, reason: str, n: int | None = None) -> Result:
        return self._add(Result(workload, case, variant, n=n, skipped=reason))

    def derive(self, workload: str, case: str, variant: str, times: list[float], note: str, n: int | None = None) -> Result:
        """A figure computed from others (e.g. a job time plus a one-off setup time)."""
        return self._add(
            Result(workload, case, variant, n=n, times=times, min=min(times), median=statistics.median(times), note=note, derived=True)
        )

    def too_slow(self, workload: str, variant: str, n: int) -> Result | None:
        """The same variant at the largest smaller size already measured, if running at ``n`` would exceed the budget."""
        smaller = [r for r in self.results if r.workload == workload and r.variant == variant and r.ok and r.n and r.n < n and not r.extrapolated_from]
        if not smaller:
            return None
        best = max(smaller, key=lambda r: r.n or 0)
        assert best.median is not None and best.n
        return best if best.median * n / best.n > self.budget_seconds else None

    def extrapolate(self, workload: str, case: str, variant: str, base: Result, n: int, why: str) -> Result:
        assert base.n
        scale = n / base.n
        times = [t * scale for t in base.times]
        return self._add(
            Result(
                workload,
                case,
                variant,
                n=n,
                times=times,
                first=None,
                min=min(times),
                median=statistics.median(times),
                note=f"extrapolated linearly from n={base.n} ({why})",
                extrapolated_from=base.n,
            )
        )

    def measure(
        self,
        workload: str,
        case: str,
        variant: str,
        fn: Callable[[], Any],
        *,
        n: int | None = None,
        check: Callable[[Any], None] | None = None,
        repeat: int | None = None,
        note: str = "",
    ) -> Result:
        """One variant on its own: warm up (and check the result), then time ``fn`` ``repeat`` times."""
        (result,) = self.measure_case(workload, case, [Variant(variant, fn, n=n, check=check, repeat=repeat, note=note)])
        return result

    def measure_case(self, workload: str, case: str, variants: list[Variant]) -> list[Result]:
        """The variants of one case, interleaved.

        Each variant is warmed up (and its result checked) first; then the timed
        runs go round-robin (run 1 of every variant, then run 2 ...), so a change
        in the machine's load during the case hits every variant alike instead
        of whichever happened to run last.
        """
        firsts: dict[str, float | None] = {}
        repeats: dict[str, int] = {}
        notes: dict[str, list[str]] = {}
        for v in variants:
            first = None
            for i in range(max(self.warmup, 1 if v.check is not None else 0)):
                gc.collect()
                began = time.perf_counter()
                value = v.fn()
                elapsed = time.perf_counter() - began
                if i == 0:
                    first = elapsed
                    if v.check is not None:
                        v.check(value)
                del value
            firsts[v.name] = first
            repeats[v.name] = self.repeat if v.repeat is None else v.repeat
            notes[v.name] = [v.note] if v.note else []
            if first is not None and first > self.slow_seconds and repeats[v.name] > self.slow_repeat:
                repeats[v.name] = self.slow_repeat
                notes[v.name].append(f"{self.slow_repeat} timed runs only: the warm-up took {first:.0f} s (> {self.slow_seconds:.0f} s)")
        times: dict[str, list[float]] = {v.name: [] for v in variants}
        for round_ in range(max(repeats.values(), default=0)):
            for v in variants:
                if round_ >= repeats[v.name]:
                    continue
                gc.collect()
                began = time.perf_counter()
                v.fn()
                times[v.name].append(time.perf_counter() - began)
        results = []
        for v in variants:
            ts = times[v.name] or ([firsts[v.name]] if firsts[v.name] is not None else [])
            result = Result(workload, case, v.name, n=v.n, times=ts, first=firsts[v.name], note="; ".join(notes[v.name]))
            if ts:
                result.min = min(ts)
                result.median = statistics.median(ts)
            results.append(self._add(result))
        return results


@dataclass
class Variant:
    """One way of doing a case's work: ``fn`` runs it once; ``check`` validates the warm-up's result."""

    name: str
    fn: Callable[[], Any]
    n: int | None = None
    check: Callable[[Any], None] | None = None
    repeat: int | None = None
    note: str = ""


# ------------------------------------------------------------------ the machine


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - not installed or broken: reported as absent
        return None
    return getattr(mod, "__version__", "unknown")


def java_description() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else "java"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in (out.stderr or out.stdout).splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else None


def git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "rxspark"], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" (rxspark/ modified)" if dirty.stdout.strip() else "")


def machine_description() -> dict[str, Any]:
    """Cores, memory, CPU, and the versions that matter, for results.json and RESULTS.md."""
    meminfo = _read("/proc/meminfo")
    match = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
    cpu = re.search(r"model name\s*:\s*(.+)", _read("/proc/cpuinfo"))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu.group(1).strip() if cpu else platform.processor() or None,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gb": round(int(match.group(1)) / 1024**2, 1) if match else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "java": java_description(),
        "pyspark": _version("pyspark"),
        "numpy": _version("numpy"),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "cloudpickle": _version("cloudpickle"),
        "rxspark": _version("rxspark"),
        "rxspark_commit": git_commit(),
        "joblib": _version("joblib"),
        "joblibspark": _version("joblibspark"),
        "loky": _version("loky"),
        "dask": _version("dask"),
        "distributed": _version("distributed"),
        "matplotlib": _version("matplotlib"),
        "executable": sys.executable,
    }


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - missing or broken optional peer
        return False
    return True
