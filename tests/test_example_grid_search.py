"""examples/grid_search.py at reduced size: the seeded scores are the same on RxLocalSeq and on Spark, the picture is drawn."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("matplotlib") is None,
    reason="the example needs scikit-learn (extra 'joblib') and matplotlib (extra 'examples')",
)

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
QUICK = ["--folds", "2", "--max-iter", "2"]


@pytest.fixture(scope="module")
def grid_search():
    if EXAMPLES_DIR not in sys.path:
        sys.path.insert(0, EXAMPLES_DIR)
    return importlib.import_module("grid_search")


@pytest.fixture(scope="module")
def result(grid_search, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "grid.png"
    return grid_search.main(["--master", "none", "--seed", "3", *QUICK, "--output", str(out)])


def test_the_docstring_lists_the_commands(grid_search):
    assert "python examples/grid_search.py" in grid_search.__doc__
    assert "--master none" in grid_search.__doc__


def test_it_scores_24_candidates_on_every_fold(grid_search, result):
    assert result["fits"] == 24 * 2
    assert len(result["splits"]) == 24 and all(len(s) == 2 for s in result["splits"])
    assert result["mean"].shape == (len(grid_search.L1_RATIOS), len(grid_search.ALPHAS))
    assert all(0.0 <= v <= 1.0 for s in result["splits"] for v in s)
    assert result["best_score"] > 0.8  # digits: a linear model gets about 0.9
    assert result["best_score"] == pytest.approx(float(result["mean"].max()))


def test_the_seed_decides_the_scores(grid_search, result):
    again = grid_search.main(["--master", "none", "--seed", "3", *QUICK, "--output", "none"])
    other = grid_search.main(["--master", "none", "--seed", "4", *QUICK, "--output", "none"])
    assert again["splits"] == result["splits"]
    assert other["splits"] != result["splits"]
    assert again["output"] is None


@pytest.mark.spark
def test_the_same_scores_on_spark_as_on_rxlocalseq(grid_search, result, spark_local):
    search, _ = grid_search.run_search(spark_local, 3, 2, -1, max_iter=2)
    assert grid_search.score_table(search, 2)["splits"] == result["splits"]


def test_the_picture_is_a_png(result):
    with open(result["output"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
