"""Simulate Poisson data and fit a GLM per trial (the guide's SimAndEstimatePoisson).

Each task simulates ``--trials`` data sets of ``--nobs`` rows, with
``x1, x2 = log(uniform(0.5, 1.5))`` and ``count ~ Poisson(exp(0 + 1 x1 + 2 x2))``,
and fits ``count ~ x1 + x2`` with a Poisson GLM (a small NumPy IRLS, the
algorithm behind R's ``glm``). 100 tasks x 10 trials in chunks of 5 give 1000
fits; the mean of the coefficients should be close to (0, 1, 2), and their
spread is the sampling variability of one fit.

    python examples/poisson_sim.py                       # embedded Spark, 100 x 10 fits of 50000 rows
    python examples/poisson_sim.py --seed 1 --nobs 5000
    python examples/poisson_sim.py --master none --tasks 10 --nobs 5000
    ./spark-submit.sh examples/poisson_sim.py --seed 1
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

import rxspark
from rxspark import RxLocalSeq, RxSpark, rx_exec

TRUE_COEFFICIENTS = (0.0, 1.0, 2.0)
NAMES = ("(Intercept)", "x1", "x2")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "poisson.png")


def simulate_poisson_data(nobs: int, rng: Any) -> tuple[np.ndarray, np.ndarray]:
    """The guide's SimulatePoissonData: (count, design matrix [1, x1, x2])."""
    x1 = np.log(rng.uniform(0.5, 1.5, nobs))
    x2 = np.log(rng.uniform(0.5, 1.5, nobs))
    b0, b1, b2 = TRUE_COEFFICIENTS
    lam = np.exp(b0 + b1 * x1 + b2 * x2)
    count = rng.poisson(lam)
    return count, np.column_stack([np.ones(nobs), x1, x2])


def poisson_glm(y: np.ndarray, x: np.ndarray, tol: float = 1e-8, max_iter: int = 25) -> tuple[np.ndarray, int]:
    """Fit a Poisson GLM with log link by iteratively reweighted least squares.

    Starts like R's glm (mu = y + 0.1) and stops when the relative change of the
    deviance is below ``tol`` (R's ``glm.control`` default).

    Returns:
        (coefficients, iterations)
    """
    y = np.asarray(y, dtype=np.float64)
    mu = y + 0.1
    eta = np.log(mu)
    deviance_old = np.inf
    beta = np.zeros(x.shape[1])
    for iteration in range(1, max_iter + 1):
        z = eta + (y - mu) / mu  # working response
        xtw = x.T * mu  # working weights are mu for the log link
        beta = np.linalg.solve(xtw @ x, xtw @ z)
        eta = x @ beta
        mu = np.exp(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            deviance = 2.0 * np.sum(np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < tol:
            return beta, iteration
        deviance_old = deviance
    return beta, max_iter


def sim_and_estimate_poisson(nobs: int, trials: int) -> np.ndarray:
    """``trials`` simulated data sets, one fit each: a trials x 3 array of coefficients."""
    rng = rxspark.rng()
    cf = np.empty((trials, len(TRUE_COEFFICIENTS)))
    for i in range(trials):
        count, x = simulate_poisson_data(nobs, rng)
        cf[i], _ = poisson_glm(count, x)
    return cf


def plot(coefficients: np.ndarray, nobs: int, path: str) -> str:
    """Histograms of the estimates, with the true values."""
    # A bare Figure draws off-screen without touching pyplot's backend, so a notebook's
    # inline plots keep working after an example ran in it.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3), dpi=110)
    axes = fig.subplots(1, 3)
    for ax, column, name, truth in zip(axes, coefficients.T, NAMES, TRUE_COEFFICIENTS):
        ax.hist(column, bins=30, color="tab:blue", alpha=0.8)
        ax.axvline(truth, color="tab:red", lw=1.5)
        ax.set_title(f"{name}: mean {column.mean():.4f}", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{len(coefficients)} Poisson GLM fits, {nobs} rows each (red: true value)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--nobs", type=int, default=50000, help="rows per simulated data set")
    parser.add_argument("--trials", type=int, default=10, help="fits per task")
    parser.add_argument("--tasks", type=int, default=100, help="tasks (timesToRun)")
    parser.add_argument("--chunk-size", type=int, default=5)
    parser.add_argument("--seed", type=int, default=None, help="rng_seed for reproducible results")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG to write ('none': no picture)")
    args = parser.parse_args(argv)

    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        started = time.perf_counter()
        results = rx_exec(sim_and_estimate_poisson, nobs=args.nobs, trials=args.trials, task_chunk_size=args.chunk_size,
                          times_to_run=args.tasks, rng_seed=args.seed)
        elapsed = time.perf_counter() - started
    coefficients = np.vstack(results)
    mean = coefficients.mean(axis=0)
    sd = coefficients.std(axis=0, ddof=1)
    se = sd / np.sqrt(len(coefficients))
    print(f"{len(coefficients)} fits ({args.tasks} tasks x {args.trials} trials, {args.nobs} rows each) in "
          f"{elapsed:.2f} s on {type(context).__name__}")
    print(f"{'':>12} {'true':>6} {'mean':>8} {'sd':>8} {'se(mean)':>9}")
    for name, truth, m, s, e in zip(NAMES, TRUE_COEFFICIENTS, mean, sd, se):
        print(f"{name:>12} {truth:>6.1f} {m:>8.4f} {s:>8.4f} {e:>9.5f}")
    result: dict[str, Any] = {"coefficients": coefficients, "mean": mean, "sd": sd, "se": se, "elapsed": elapsed, "output": None}
    if args.output and args.output.lower() != "none":
        result["output"] = plot(coefficients, args.nobs, args.output)
        print(f"plot: {result['output']}")
    return result


if __name__ == "__main__":
    main()
