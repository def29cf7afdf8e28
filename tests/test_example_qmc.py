"""examples/qmc_integral.py, in-process on RxLocalSeq at reduced size: what it computes, not that it runs."""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("scipy") is None or importlib.util.find_spec("matplotlib") is None,
    reason="the example needs SciPy (extra 'qmc') and matplotlib (extra 'examples')",
)

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture(scope="module")
def qmc_integral():
    if EXAMPLES_DIR not in sys.path:
        sys.path.insert(0, EXAMPLES_DIR)
    return importlib.import_module("qmc_integral")


@pytest.fixture(scope="module")
def result(qmc_integral, tmp_path_factory):
    out = tmp_path_factory.mktemp("qmc") / "qmc.png"
    args = ["--master", "none", "--seed", "3", "--tasks", "4", "--min-log2-n", "4", "--max-log2-n", "16",
            "--replicates", "8", "--output", str(out)]
    return qmc_integral.main(args)


def test_the_docstring_lists_the_commands(qmc_integral):
    assert "python examples/qmc_integral.py" in qmc_integral.__doc__
    assert "--master none" in qmc_integral.__doc__


def test_qmc_error_at_the_largest_n_is_many_times_smaller_than_monte_carlos(result):
    mc = result["mc_rms_error"][-1]
    for kind in ("SOBOL", "NIEDERR"):
        assert result["qmc_error"][kind][-1] * 10 < mc, (kind, result["qmc_error"][kind][-1], mc)


def test_the_errors_fall_at_their_rates(result):
    # Monte Carlo's RMS error follows sigma / sqrt(n) (within the noise of 8 replicates) ...
    assert -0.7 < result["slope"]["MC"] < -0.3
    for n, error in zip(result["n"], result["mc_rms_error"]):
        assert 0.3 < error / (result["sigma"] / math.sqrt(n)) < 2.0, n
    # ... quasi-Monte Carlo's falls about as 1/n: clearly faster.
    for kind in ("SOBOL", "NIEDERR"):
        assert result["slope"][kind] < -0.8, (kind, result["slope"][kind])


def test_the_tasks_streams_tile_the_first_n_points_of_the_sequence(result):
    assert result["same_as_sequential"]
    for kind in ("SOBOL", "NIEDERR"):
        assert math.isclose(result["qmc_estimate"][kind][-1], result["sequential"][kind], rel_tol=1e-12)


def test_the_qmc_points_and_so_the_estimates_do_not_depend_on_the_seed_or_the_tasks(qmc_integral, result):
    other = qmc_integral.main(["--master", "none", "--seed", "4", "--tasks", "2", "--min-log2-n", "4",
                               "--max-log2-n", "10", "--replicates", "2", "--output", "none"])
    for kind in ("SOBOL", "NIEDERR"):
        for a, b in zip(other["qmc_estimate"][kind], result["qmc_estimate"][kind]):
            assert math.isclose(a, b, rel_tol=1e-12)
    assert other["mc_rms_error"][:7] != result["mc_rms_error"][:7]
    assert other["output"] is None


def test_the_picture_is_a_png(result):
    with open(result["output"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
