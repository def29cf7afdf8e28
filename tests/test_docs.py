"""The documentation site (docs/, issue 26) builds without a warning, and its API reference covers the code.

One build per test session, of a copy of ``docs/`` with one guide page added (as the
pages other branches add to ``docs/guide/``): Sphinx runs with ``-W --keep-going``
and nitpicky references, so a page left out of every toctree, a broken link or a
reference to nothing fails it. The built site's ``objects.inv`` must then hold every
public name (``rxspark.__all__``, ``rxspark.joblib``, ``rxspark.compat.revoscalepy``)
and every ``rxspark`` subcommand, and the added page must be in the user guide's
navigation. The pages' ```python blocks run in ``tests/test_readme.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("myst_parser", reason="the docs extra is not installed: pip install -e '.[docs]'")

from sphinx.util.inventory import InventoryFile  # noqa: E402

import rxspark  # noqa: E402
import rxspark.compat.revoscalepy  # noqa: E402
from rxspark.cli import _parser  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDED = "guide/zz-added-by-a-test"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built from a copy of docs/ (plus one new guide page); its HTML folder."""
    work = tmp_path_factory.mktemp("site")
    shutil.copytree(os.path.join(ROOT, "docs"), work / "docs", ignore=shutil.ignore_patterns("_build", "_screenshots"))
    for folder in ("benchmarks", "examples", "rxspark"):  # what the pages include, at the same relative paths
        os.symlink(os.path.join(ROOT, folder), work / folder)
    (work / "docs" / f"{ADDED}.md").write_text("# A page added later\n\nPicked up by the user guide's toctree.\n")
    out = work / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-E", "-q", str(work / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=work,
    )
    assert proc.returncode == 0, f"the site does not build cleanly:\n{proc.stderr[-6000:]}"
    return out


def _inventory(site) -> dict[str, dict[str, object]]:
    with open(site / "objects.inv", "rb") as f:
        return InventoryFile.load(f, "", os.path.join)


def _python_names(inventory) -> set[str]:
    return {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}


@pytest.mark.parametrize(
    "module",
    [rxspark, rxspark.compat.revoscalepy, pytest.param("rxspark.joblib", id="rxspark.joblib")],
    ids=lambda m: getattr(m, "__name__", m),
)
def test_every_public_name_has_a_reference_entry(site, module):
    if isinstance(module, str):
        module = pytest.importorskip(module)
    documented = _python_names(_inventory(site))
    missing = [name for name in module.__all__ if f"{module.__name__}.{name}" not in documented]
    assert module.__all__ and not missing, f"no API reference entry for {module.__name__}: {missing}"


def test_every_rxspark_subcommand_has_a_reference_entry(site):
    subcommands = [
        name
        for action in _parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]
    entries = {name for kind, names in _inventory(site).items() if kind.startswith("commands:") for name in names}
    missing = [name for name in subcommands if f"rxspark {name}" not in entries]
    assert subcommands and not missing, f"the rxspark command's reference lacks: {missing}"


def test_a_page_added_to_the_guide_joins_its_navigation(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="{ADDED}.html"' in index, "a new docs/guide/ page is not in the user guide's toctree"


def test_the_reference_pages_show_the_docstrings(site):
    page = (site / "reference" / "run.html").read_text(encoding="utf-8")
    assert 'id="rxspark.rx_exec"' in page
    assert rxspark.rx_exec.__doc__.split("\n", 1)[0].split("``")[0].strip()[:30] in page
