"""The ```python blocks of README.md, examples/README.md and the documentation site's pages
(docs/**/*.md) run as written (issues 17 and 26).

Each block is a complete program: it imports or defines everything it uses.
Each runs in a fresh interpreter from the repository's root, with job records
in a temporary job store. A block that uses Spark (``RxSpark``,
``rx_spark_connect``, ``SparkSession``) finds a ``local[2]`` session already
active, as in a notebook, and attaches to it.

A block that cannot run here (a YARN or Kubernetes cluster ...) is preceded
by ``<!-- not-run: reason -->``; every such block must be listed in
``NOT_RUN`` below, so none is added by accident.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READMES = ["README.md", "examples/README.md"] + sorted(
    os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    if os.sep + "_build" + os.sep not in path
)

# (file, reason) of every block marked not-run.
NOT_RUN: list[tuple[str, str]] = [
    ("docs/guide/spark.md", "needs a YARN cluster"),
    ("docs/guide/yarn.md", "needs a YARN cluster"),
]

_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.S | re.M)
_MARKER = re.compile(r"<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
_SPARK = re.compile(r"\b(RxSpark|rx_spark_connect|SparkSession)\b")

# Runs before a Spark block: the session a notebook (or spark-submit) would have started.
_SPARK_PRELUDE = """\
import sys as _sys
from pyspark.sql import SparkSession as _Session
(_Session.builder.master("local[2]").appName("readme")
 .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
 .config("spark.pyspark.python", _sys.executable).config("spark.ui.enabled", "false")
 .config("spark.ui.showConsoleProgress", "false").getOrCreate())
"""
_PRELUDE = """\
import rxspark as _rxspark
_rxspark.rx_options(share_dir={share_dir!r})  # job records stay out of ~/.rxspark
"""


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


def blocks(path: str) -> list[Block]:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    found = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match.group("code"), marker.group("reason") if marker else None))
    return found


ALL = [block for path in READMES for block in blocks(path)]


def _once(found: list[Block]) -> list[Block]:
    """The blocks to run, each code once (the README's example is also on the getting-started page)."""
    seen: set[str] = set()
    run = []
    for block in found:
        if block.not_run is None and block.code not in seen:
            seen.add(block.code)
            run.append(block)
    return run


RUN = _once(ALL)


def test_the_readmes_have_blocks_and_every_not_run_block_is_listed():
    assert len(RUN) >= 10, [b.id for b in RUN]
    assert sorted((b.file, b.not_run) for b in ALL if b.not_run is not None) == sorted(NOT_RUN)


@pytest.mark.parametrize("block", [pytest.param(b, marks=[pytest.mark.spark] if _SPARK.search(b.code) else [], id=b.id) for b in RUN])
def test_block_runs(block, tmp_path):
    prelude = _PRELUDE.format(share_dir=str(tmp_path / "jobs"))
    if _SPARK.search(block.code):
        prelude = _SPARK_PRELUDE + prelude
    script = tmp_path / "block.py"
    script.write_text(prelude + "# ---- " + block.id + "\n" + textwrap.dedent(block.code), encoding="utf-8")
    # PYSPARK_PYTHON: PySpark starts workers with it (else "python3" from PATH), as a notebook platform sets it.
    env = dict(os.environ, PYTHONPATH=ROOT, SPARK_LOCAL_IP="127.0.0.1", MPLBACKEND="Agg", PYSPARK_PYTHON=sys.executable)
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=280, env=env)
    assert proc.returncode == 0, f"{block.id} failed ({proc.returncode}):\n{block.code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
