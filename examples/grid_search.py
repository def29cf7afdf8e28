"""scikit-learn on Spark: a seeded grid search through the joblib backend "rxspark", with a picture of the scores.

A linear SVM trained by stochastic gradient descent (``SGDClassifier`` with an
elastic-net penalty, ``random_state=None``) on scikit-learn's bundled
hand-written digits, tuned over 6 values of ``alpha`` x 4 of ``l1_ratio`` with
5-fold cross-validation: 120 fits, which ``GridSearchCV`` hands to joblib, which
``joblib.parallel_config(backend="rxspark", ...)`` sends to the compute context.
With ``rng_seed`` fit *k* draws its shuffling from stream ``(seed, k)``, so the
scores are the same on every run and on every context: ``--verify`` runs the
search again on ``RxLocalSeq`` (no Spark) and compares.

The picture shows the mean accuracy of each candidate as a heat map and, per
``l1_ratio``, the mean and spread over the folds against ``alpha``.

    python examples/grid_search.py                          # embedded Spark (local[*])
    python examples/grid_search.py --seed 7 --verify        # and the same scores again without Spark
    python examples/grid_search.py --master none            # no Spark: RxLocalSeq
    python examples/grid_search.py --seed 7 --output docs/img/grid_search.png
    ./spark-submit.sh examples/grid_search.py --seed 7
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import joblib
import numpy as np

import rxspark.joblib  # noqa: F401 - registers the joblib backend "rxspark"
from rxspark import RxLocalSeq, RxSpark

ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
L1_RATIOS = (0.0, 0.15, 0.5, 0.9)
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "grid_search.png")


def make_search(folds: int = 5, max_iter: int = 15) -> Any:
    """The grid search: scaling + elastic-net linear SVM by SGD, ``random_state=None`` (the seed comes from rxspark)."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sgd = SGDClassifier(penalty="elasticnet", max_iter=max_iter, tol=None, random_state=None)
    grid = {"sgdclassifier__alpha": list(ALPHAS), "sgdclassifier__l1_ratio": list(L1_RATIOS)}
    return GridSearchCV(make_pipeline(StandardScaler(), sgd), grid, cv=folds)


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits (bundled with it: nothing to download)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data, digits.target


def run_search(context: Any, seed: int | None, folds: int, n_jobs: int, max_iter: int = 15) -> tuple[Any, float]:
    """Fit the grid search with joblib on ``context``; return it and the seconds it took."""
    features, labels = load_data()
    search = make_search(folds, max_iter)
    started = time.perf_counter()
    with joblib.parallel_config(backend="rxspark", n_jobs=n_jobs, compute_context=context, rng_seed=seed):
        search.fit(features, labels)
    return search, time.perf_counter() - started


def score_table(search: Any, folds: int) -> dict[str, Any]:
    """Mean and standard deviation of the fold accuracies as (l1_ratio x alpha) arrays, and every fold's score."""
    results = search.cv_results_
    alphas = [float(a) for a in results["param_sgdclassifier__alpha"]]
    ratios = [float(r) for r in results["param_sgdclassifier__l1_ratio"]]
    mean = np.full((len(L1_RATIOS), len(ALPHAS)), np.nan)
    std = np.full_like(mean, np.nan)
    for i, (a, r) in enumerate(zip(alphas, ratios)):
        row, col = L1_RATIOS.index(r), ALPHAS.index(a)
        mean[row, col] = results["mean_test_score"][i]
        std[row, col] = results["std_test_score"][i]
    splits = [[float(results[f"split{k}_test_score"][i]) for k in range(folds)] for i in range(len(alphas))]
    return {"mean": mean, "std": std, "splits": splits}


def plot(result: dict[str, Any], path: str) -> str:
    """Heat map of the mean accuracy (best marked) and mean +/- std over the folds against alpha."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mean, std = result["mean"], result["std"]
    fig = Figure(figsize=(11, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    heat, lines = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.05, 1]})
    # The colours span the best 5 points of accuracy (worse cells share the darkest): the good
    # candidates differ by less than that, the worst by far more.
    top = float(np.nanmax(mean))
    vmin = max(float(np.nanmin(mean)), top - 0.05)
    image = heat.imshow(mean, cmap="viridis", aspect="auto", origin="lower", vmin=vmin, vmax=top)
    heat.set_xticks(range(len(ALPHAS)), [f"{a:g}" for a in ALPHAS])
    heat.set_yticks(range(len(L1_RATIOS)), [f"{r:g}" for r in L1_RATIOS])
    heat.set_xlabel("alpha (regularization)")
    heat.set_ylabel("l1_ratio")
    for (row, col), value in np.ndenumerate(mean):
        heat.text(col, row, f"{value:.3f}", ha="center", va="center", fontsize=8,
                  color="white" if value < vmin + 0.6 * (top - vmin) else "black")
    best_row, best_col = np.unravel_index(np.nanargmax(mean), mean.shape)
    heat.add_patch(_box(best_col, best_row))
    heat.set_title(f"mean accuracy over {result['folds']} folds ({mean.size} candidates)")
    fig.colorbar(image, ax=heat, fraction=0.046, pad=0.04, extend="min" if vmin > np.nanmin(mean) else "neither")
    for row, ratio in enumerate(L1_RATIOS):
        lines.errorbar(ALPHAS, mean[row], yerr=std[row], marker="o", ms=4, capsize=3, label=f"l1_ratio = {ratio:g}")
    lines.set_xscale("log")
    lines.set_xlabel("alpha")
    lines.set_ylabel("accuracy (mean +/- std over folds)")
    lines.set_title(f"{result['fits']} fits on {result['context']} in {result['elapsed']:.1f} s, rng_seed={result['seed']}")
    lines.grid(alpha=0.3, which="both")
    lines.legend(fontsize=8, loc="lower left")
    fig.suptitle("GridSearchCV(SGDClassifier(penalty='elasticnet', random_state=None)) on the digits, via joblib on rxspark",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def _box(col: int, row: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default=None, help="Spark master (default: the active session or local[*]); 'none' runs without Spark")
    parser.add_argument("--seed", type=int, default=7, help="rng_seed: fit k draws from stream (seed, k)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--n-jobs", type=int, default=-1, help="joblib n_jobs (-1: the context's parallelism)")
    parser.add_argument("--max-iter", type=int, default=15, help="SGD epochs per fit")
    parser.add_argument("--verify", action="store_true", help="run again on RxLocalSeq and compare the scores")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="PNG to write ('none': no picture)")
    args = parser.parse_args(argv)

    context = RxLocalSeq() if args.master == "none" else RxSpark(master=args.master).connect()
    with context:
        search, elapsed = run_search(context, args.seed, args.folds, args.n_jobs, args.max_iter)
    table = score_table(search, args.folds)
    fits = len(table["splits"]) * args.folds
    result: dict[str, Any] = {**table, "folds": args.folds, "fits": fits, "seed": args.seed, "elapsed": elapsed,
                              "context": type(context).__name__, "best_params": search.best_params_,
                              "best_score": float(search.best_score_), "same_on_rxlocalseq": None, "output": None}
    print(f"{fits} fits ({len(table['splits'])} candidates x {args.folds} folds) in {elapsed:.2f} s on {result['context']}")
    print("mean accuracy, rows l1_ratio, columns alpha:")
    print(f"{'':>8}" + "".join(f"{a:>9g}" for a in ALPHAS))
    for ratio, row in zip(L1_RATIOS, table["mean"]):
        print(f"{ratio:>8g}" + "".join(f"{v:>9.4f}" for v in row))
    print(f"best: {search.best_params_} accuracy {search.best_score_:.4f}")
    if args.verify:
        again, seconds = run_search(RxLocalSeq(), args.seed, args.folds, args.n_jobs, args.max_iter)
        result["same_on_rxlocalseq"] = score_table(again, args.folds)["splits"] == table["splits"]
        print(f"the same {fits} fold scores again on RxLocalSeq ({seconds:.2f} s): {result['same_on_rxlocalseq']}")
    if args.output and args.output.lower() != "none":
        result["output"] = plot(result, args.output)
        print(f"plot: {result['output']}")
    return result


if __name__ == "__main__":
    main()
