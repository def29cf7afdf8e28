"""The benchmark suite still runs: ``benchmarks/run.py --quick`` end to end, in a subprocess.

Tiny sizes and one timed run: this checks that every workload and variant
runs and returns the right results (run.py checks each variant's first
result), and that the reports are written. It asserts nothing about timings.
Peers that are not installed (extra ``bench``) must be skipped with a note,
not fail the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from rxspark._java import java_version

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")
WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"]
# module -> the W1 variant it provides
PEERS = {"joblib": "joblib loky (2 jobs)", "joblibspark": "joblibspark (2 jobs)", "distributed": "Dask client.map (2 procs)"}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.timeout(170)
def test_quick_run_writes_every_workload_and_skips_missing_peers(tmp_path):
    if (java_version() or 0) < 17:
        pytest.skip("Spark needs Java 17+ (run `rxspark doctor`)")
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.run(
        [sys.executable, RUN, "--quick", "--repeat", "1", "--output-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=160,
    )
    assert proc.returncode == 0, f"run.py --quick failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    data = json.loads((tmp_path / "results.json").read_text())
    for key in ("cores", "memory_gb", "python", "java", "pyspark", "numpy", "date"):
        assert data["machine"].get(key), f"machine description lacks {key}"
    assert data["config"]["quick"] is True and data["config"]["repeat"] == 1

    results = data["results"]
    ran = {(r["workload"], r["variant"]) for r in results if not r["skipped"]}
    assert {r["workload"] for r in results} == set(WORKLOADS)
    for workload, variant in [
        ("W1", "plain loop"), ("W1", "RxLocalSeq"), ("W1", "RxLocalParallel(2)"), ("W1", "raw PySpark"), ("W1", "RxSpark"),
        ("W2", "sequential loop"), ("W2", "RxLocalParallel(2)"), ("W2", "RxSpark"), ("W2", "raw PySpark"),
        ("W3", "rx_share creation"), ("W3", "argument"), ("W3", "exec object"), ("W3", "rx_share"),
        ("W3", "rx_share incl. creation"), ("W3", "raw PySpark closure"),
        ("W4", "plain loop"), ("W4", "RxLocalSeq"), ("W4", "raw PySpark"), ("W4", "RxSpark"),
        ("W5", "raw PySpark"), ("W5", "RxSpark"),
        ("W6", "no seed"), ("W6", "rng_seed, scope chunk"), ("W6", "rng_seed, scope task"),
        ("W7", "RxExecutor map"), ("W7", "rx_exec"), ("W7", "loky map (2 workers)"),
    ]:
        assert (workload, variant) in ran, f"{workload} {variant} did not run"
    for r in results:
        if not r["skipped"]:
            assert r["times"] and r["median"] is not None and r["min"] is not None, r

    for module, variant in PEERS.items():
        entries = [r for r in results if r["workload"] == "W1" and r["variant"] == variant]
        assert entries, f"no W1 entry for {variant}"
        if not _installed(module):
            assert all(r["skipped"] and "not installed" in r["skipped"] for r in entries), entries

    target_ids = {t["id"] for t in data["targets"]}
    assert {"W4-per-task", "W5-latency", "W7-spark", "W7-localpar"} <= target_ids
    assert all(t["status"] in ("met", "MISSED", "not measured") for t in data["targets"])

    report = (tmp_path / "RESULTS.md").read_text()
    assert "Quick run" in report and "## Targets" in report
    for workload in WORKLOADS:
        assert f"## {workload} " in report
    if _installed("matplotlib"):
        assert (tmp_path / "scaling.png").stat().st_size > 0
