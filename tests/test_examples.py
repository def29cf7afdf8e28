"""The examples of examples/ run in-process through their main(argv), at reduced sizes.

They attach to the shared local Spark session (``spark_local``) rather than
starting their own, and the checks are on what they compute: statistical
agreement with exact values, exact agreement with independent references,
and reproducibility.
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from unittest import mock

import cloudpickle
import numpy as np
import pytest

from rxspark import RxLocalSeq, rx_exec, rx_options

pytestmark = pytest.mark.spark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES_DIR = os.path.join(ROOT, "examples")
EXAMPLES = ["dice", "birthday", "mandelbrot", "kmeans", "shared_data", "rng_streams", "poisson_sim", "nonblocking", "local_parallel", "qmc_integral"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name: str):
    """Import examples/<name>.py; its functions are shipped to Spark workers by value, as a script's are."""
    if EXAMPLES_DIR not in sys.path:
        sys.path.insert(0, EXAMPLES_DIR)
    with mock.patch.dict(os.environ):  # kmeans.py sets BLAS thread variables for its own process
        module = importlib.import_module(name)
    cloudpickle.register_pickle_by_value(module)
    return module


@pytest.fixture
def job_store(tmp_path):
    """Job records and shares of non-waiting jobs go to a temporary directory."""
    previous = rx_options()["share_dir"]
    rx_options(share_dir=str(tmp_path / "store"))
    yield tmp_path / "store"
    rx_options(share_dir=previous)


def is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_documents_its_commands(name):
    module = load(name)
    assert callable(module.main)
    assert f"python examples/{name}.py" in module.__doc__
    assert f"./spark-submit.sh examples/{name}.py" in module.__doc__


# ------------------------------------------------------------------ dice


def test_dice_win_rate_and_seeded_reruns(spark_local, capsys):
    dice = load("dice")
    argv = ["--games", "4000", "--chunk-size", "1000", "--seed", "777"]
    table = dice.main(argv)
    assert set(table) == {"Loss", "Win"} and sum(table.values()) == 4000
    p = 244 / 495
    assert abs(table["Win"] / 4000 - p) < 4 * math.sqrt(p * (1 - p) / 4000)
    assert dice.main(argv) == table
    assert dice.main([*argv, "--master", "none"]) == table  # same numbers without Spark
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Loss", "Win"] and lines[1].split() == [str(table["Loss"]), str(table["Win"])]


# ------------------------------------------------------------------ birthday


def test_birthday_estimates_match_the_exact_probabilities(spark_local, tmp_path):
    birthday = load("birthday")
    ntests = 1000
    result = birthday.main(["--ntests", str(ntests), "--seed", "7", "--output", str(tmp_path / "b.png")])
    assert result["party_size"] == list(range(2, 101))
    exact = [1 - math.prod((365 - k) / 365 for k in range(n)) for n in range(2, 101)]
    assert np.allclose(result["exact"], exact, rtol=0, atol=1e-12)
    for n, estimate, p in zip(result["party_size"], result["estimate"], exact):
        assert abs(estimate - p) <= 4 * math.sqrt(p * (1 - p) / ntests) + 1 / ntests, n
    assert result["chunk"] == [i // 20 for i in range(99)]
    assert all(result["node"])
    assert is_png(result["output"])
    again = birthday.main(["--ntests", str(ntests), "--seed", "7", "--output", "none", "--master", "none"])
    assert again["estimate"] == result["estimate"]


# ------------------------------------------------------------------ mandelbrot


def mandelbrot_reference(x_in: np.ndarray, y_in: np.ndarray, lim: int) -> np.ndarray:
    """Vectorized escape counts, same arithmetic as the scalar loop; rows are y values."""
    x0, y0 = np.meshgrid(x_in, y_in)
    x, y = x0.copy(), y0.copy()
    counts = np.zeros(x0.shape, dtype=np.int64)
    for _ in range(lim):
        active = x * x + y * y < 4
        if not active.any():
            break
        xtemp = x * x - y * y + x0
        y = np.where(active, 2 * x * y + y0, y)
        x = np.where(active, xtemp, x)
        counts += active
    return counts


def test_mandelbrot_counts_equal_a_numpy_reference(spark_local, tmp_path):
    mandelbrot = load("mandelbrot")
    result = mandelbrot.main(["--output", str(tmp_path / "m.png")])
    counts = result["counts"]
    assert counts.shape == (240, 240)
    assert np.array_equal(result["x"], np.linspace(-2.0, 0.6, 240)) and np.array_equal(result["y"], np.linspace(-1.3, 1.3, 240))
    assert np.array_equal(counts, mandelbrot_reference(result["x"], result["y"], 100))
    assert 0 < (counts == 100).sum() < counts.size
    assert is_png(result["output"])


# ------------------------------------------------------------------ k-means

KMEANS_SMALL = ["--rows", "600", "--cols", "8", "--centers", "4", "--iter-max", "20", "--tasks", "6", "--nstart", "2"]


def test_kmeans_best_of_tasks_and_seeded_reruns(spark_local):
    kmeans = load("kmeans")
    argv = [*KMEANS_SMALL, "--seed", "5", "--output", "none"]
    result = kmeans.main(argv)
    best, tasks = result["best"], result["results"]
    assert len(tasks) == 6
    assert all(best["tot_withinss"] <= r["tot_withinss"] for r in tasks)
    assert best is tasks[result["best_task"]]
    # The reported SS is the SS of the reported clustering.
    x = kmeans.make_data(600, 8, 5)
    assert math.isclose(best["tot_withinss"], float(((x - best["centers"][best["cluster"]]) ** 2).sum()), rel_tol=1e-12)
    assert best["size"].sum() == 600 and best["centers"].shape == (4, 8)
    assert result["sequential"]["nstart"] == 12 and result["sequential"]["tot_withinss"] > 0

    again = kmeans.main(argv)
    for key in ("centers", "cluster", "withinss"):
        assert np.array_equal(again["best"][key], best[key])
    # rng_scope="task": another chunking, and no Spark, give the same result.
    other = kmeans.main([*argv, "--master", "none", "--chunk-size", "4", "--no-sequential"])
    assert other["task_tot_withinss"] == result["task_tot_withinss"]


# ------------------------------------------------------------------ shared data


def test_shared_data_three_ways_agree_with_pandas(spark_local, tmp_path):
    shared_data = load("shared_data")
    result = shared_data.main(["--rows", "200000", "--seed", "3", "--share-dir", str(tmp_path / "shares")])
    reference = result["groupby"]
    assert list(reference.index) == list("ABCDEFG") and reference["n"].sum() == 200000
    for method in ("argument", "exec_objects", "rx_share"):
        frame = result[method]
        assert frame.equals(result["argument"]), method
        assert list(frame.index) == list(reference.index)
        assert (frame["n"] == reference["n"]).all()
        for column in ("sum_a", "mean_a", "mean_b"):
            assert np.allclose(frame[column], reference[column], rtol=1e-12, atol=0), (method, column)
    assert result["identical"] and result["matches_groupby"]
    assert not [p for p in (tmp_path / "shares").iterdir()]  # the share was deleted


# ------------------------------------------------------------------ random streams


def test_rng_streams_are_uncorrelated_and_auto_seeds_replay(spark_local):
    rng_streams = load("rng_streams")
    result = rng_streams.main(["--repeats", "4", "--seed", "11"])
    for kind, found in result["kinds"].items():
        assert found["seed"] == 11
        assert max(found["max_corr"]) < 0.3, kind
    for argument in ("rng_seed", "rng_kind"):
        assert isinstance(result["auto"][argument]["seed"], int)
        assert result["auto"][argument]["replayed"] is True


@pytest.mark.parametrize(
    "kind",
    [
        "PCG64",
        "MT2203",
    ],
)
def test_streams_look_independent_over_many_checks(kind):
    """Independent streams: max |r| of 5 x 500 uniforms exceeds 0.1 in about 20% of checks."""
    if kind == "MT2203":
        pytest.importorskip("mkl_random")
    rng_streams = load("rng_streams")
    checks = 40
    draws = rx_exec(rng_streams.runif, 500, times_to_run=5 * checks, rng_seed=2024, rng_kind=kind, rng_scope="task",
                    compute_context=RxLocalSeq())
    largest = [rng_streams.max_abs_correlation(draws[5 * i:5 * i + 5])[0] for i in range(checks)]
    assert max(largest) < 0.3
    assert sum(v > 0.1 for v in largest) < checks / 2


# ------------------------------------------------------------------ Poisson GLM


def test_poisson_coefficients_are_unbiased(spark_local):
    poisson_sim = load("poisson_sim")
    result = poisson_sim.main(["--nobs", "2000", "--trials", "4", "--tasks", "10", "--seed", "1", "--output", "none"])
    coefficients = result["coefficients"]
    assert coefficients.shape == (40, 3)
    for j, truth in enumerate((0.0, 1.0, 2.0)):
        assert abs(result["mean"][j] - truth) < 4 * result["se"][j] + 1e-3, j
    assert np.all(result["sd"] > 0) and np.all(result["sd"] < 0.2)


def test_poisson_irls_solves_the_score_equations():
    poisson_sim = load("poisson_sim")
    count, x = poisson_sim.simulate_poisson_data(5000, np.random.default_rng(3))
    beta, iterations = poisson_sim.poisson_glm(count, x)
    assert iterations < 25
    assert np.allclose(x.T @ (count - np.exp(x @ beta)), 0, atol=1e-6 * len(count))


# ------------------------------------------------------------------ non-blocking jobs

BIRTHDAY_SMALL = ["--ntests", "300", "--max-size", "40", "--chunk-size", "10"]
KMEANS_TINY = ["--rows", "400", "--cols", "5", "--centers", "3", "--iter-max", "10", "--tasks", "4", "--nstart", "2"]
NONBLOCKING_SMALL = [*BIRTHDAY_SMALL, *KMEANS_TINY, "--seed", "9"]


def test_nonblocking_jobs_finish_with_the_blocking_results(spark_local, job_store):
    nonblocking = load("nonblocking")
    result = nonblocking.main([*NONBLOCKING_SMALL, "--poll", "0.05"])
    assert result["statuses"] == {"birthday": "finished", "kmeans": "finished"}
    assert all(s in ("queued", "running", "finished") for h in result["status_history"] for s in h.values())
    assert len(set(result["job_ids"].values())) == 2
    assert result["seeds"] == {"birthday": 9, "kmeans": 9}
    assert result["blocking_equal"] is True
    # The blocking examples, with the same sizes and seed, give the same numbers.
    birthday = load("birthday").main([*BIRTHDAY_SMALL, "--seed", "9", "--output", "none"])
    assert birthday["estimate"] == result["birthday"]
    kmeans = load("kmeans").main([*KMEANS_TINY, "--seed", "9", "--no-sequential", "--output", "none"])
    assert np.array_equal(kmeans["best"]["centers"], result["kmeans_best"]["centers"])
    assert not any(job_store.glob("rx-*")), "auto_cleanup left job records behind"


def test_nonblocking_as_a_script_without_spark(tmp_path):
    """The script imports its sibling examples; run it as users do."""
    env = dict(os.environ, HOME=str(tmp_path))
    out = subprocess.run([sys.executable, os.path.join("examples", "nonblocking.py"), "--master", "none", *NONBLOCKING_SMALL],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "birthday: finished" in out.stdout and "kmeans: finished" in out.stdout
    assert "same results: True" in out.stdout


# ------------------------------------------------------------------ local contexts


def test_local_parallel_reproducible_on_every_context(spark_local):
    local_parallel = load("local_parallel")
    before = rx_options()["num_cores_to_use"]
    result = local_parallel.main(["--workers", "3", "--tasks", "3", "--draws", "100"])
    assert rx_options()["num_cores_to_use"] == before
    assert result["equal"] is True
    assert result["matches"] == {
        "RxLocalParallel x2": True,
        "RxForeachDoPar(ThreadPoolExecutor)": True,
        "RxForeachDoPar(ProcessPoolExecutor)": True,
        "RxSpark": True,
    }
    assert len(result["x1"]) == 3 and all(len(v) == 100 for v in result["x1"])
    assert len({float(v[0]) for v in result["x1"]}) == 3  # one stream per task


def test_plots_leave_pyplots_backend_alone(tmp_path):
    """An example's plot() in a notebook must not switch the kernel's backend (inline plots would stop)."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = plt.get_backend()
    plt.switch_backend("svg")
    try:
        mandelbrot = load("mandelbrot")
        counts = np.zeros((8, 8), dtype=int)
        path = mandelbrot.plot(counts, np.linspace(-2, 1, 8), np.linspace(-1.5, 1.5, 8), 10, str(tmp_path / "m.png"))
        assert is_png(path)
        assert matplotlib.get_backend() == "svg"
    finally:
        plt.switch_backend(before)
