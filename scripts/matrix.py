"""The version matrix: the suite's core on other Pythons and PySparks, each cell from its own lock.

    python scripts/matrix.py test [CELL ...]   # make test-matrix [CELLS="..."]
    python scripts/matrix.py lock [CELL ...]   # make lock-matrix [CELLS="..."]
    python scripts/matrix.py list

A cell is one Python and one PySpark line. ``test`` builds the cell's venv
(``.venv-matrix/<cell>``) from the cell's committed constraints
(``constraints/<cell>.txt``), so a cell tests what was tested, runs the
suite's core there (:data:`TESTS`) and prints each cell's pytest summary
line; it exits non-zero when a cell fails. ``lock`` resolves the newest
releases the cell allows in a throwaway venv and records them as the cell's
constraints (run ``test`` on the cell afterwards, and commit the file when it
passes). Without cell names, every cell; cells run one after the other.

The Python of a cell is ``python3.X`` from pyenv (``$PYENV_ROOT/versions/3.X.*``),
else from ``PATH``. ``mkl-random`` (the ``mkl`` extra) is installed where a
release exists for the cell's Python; elsewhere its tests skip.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "constraints"
VENVS = ROOT / ".venv-matrix"

# The suite's core: conformance on every context (local, Spark local[2] and local-cluster, Spark Connect),
# Spark's own tests, the jobs (non-blocking, records, states, processes, privacy), the reliability suite
# (faults injected into local and Spark workers, the driver process, user errors, security), and Connect's
# tests (they skip on PySpark 3.5, saying why). Left out: examples, notebooks, benchmarks, joblib's own
# suite, CPython's futures tests, the QMC references: they do not depend on the Spark or Python version
# in ways these do not already cover, and `make test` runs them.
TESTS = [
    "tests/test_conformance.py",
    "tests/test_spark.py",
    "tests/test_connect.py",
    "tests/test_jobs_nonblocking.py",
    "tests/test_jobs_records.py",
    "tests/test_jobs_processes.py",
    "tests/test_jobs_privacy.py",
    "tests/test_job_states.py",
    "tests/test_cli.py",
    "tests/test_versions.py",
    "tests/reliability",
]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One Python and one PySpark line.

    Attributes:
        python: ``"3.11"``.
        requirements: What the cell installs besides ``rxspark[test]``: its PySpark line.
        pytest_args: The cell's own narrowing of :data:`TESTS`.
    """

    python: str
    requirements: tuple[str, ...]
    pytest_args: tuple[str, ...] = ()


# The PySpark 4 cells leave out the multi-executor local-cluster context (marker ``cluster``): what it adds
# (executor JVMs, executors lost and added) is the Spark version's, which `make test` covers on 4.x and the
# 3.5 cell on 3.5; a cell's Python version shows in local[2]'s and the Connect server's workers as well.
NO_CLUSTER = ("-m", "not cluster")
CELLS: dict[str, Cell] = {
    # The cluster's own PySpark: EMR 7.x and Databricks LTS up to 16.4 run Spark 3.5 (classic sessions only).
    "py311-pyspark35": Cell("3.11", ("pyspark>=3.5,<3.6",)),
    "py310-pyspark4": Cell("3.10", ("pyspark[connect]>=4.0,<5",), NO_CLUSTER),
    "py312-pyspark4": Cell("3.12", ("pyspark[connect]>=4.0,<5",), NO_CLUSTER),
    "py313-pyspark4": Cell("3.13", ("pyspark[connect]>=4.0,<5",), NO_CLUSTER),
}
OPTIONAL = ("mkl-random>=1.2",)


def interpreter(version: str) -> str:
    """The path of a CPython ``version`` (``"3.12"``): pyenv's, else ``python3.12`` on PATH.

    Raises:
        SystemExit: None is installed.
    """
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")))
    if found:
        return found[-1]
    on_path = shutil.which(f"python{version}")
    if on_path:
        return on_path
    raise SystemExit(f"matrix: no Python {version} found (pyenv install {version}, or put python{version} on PATH)")


def lock_path(name: str) -> Path:
    return LOCKS / f"{name}.txt"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, cwd=ROOT, **kwargs)


def make_venv(name: str, path: Path, cell: Cell, constraints: Path | None) -> str:
    """A fresh venv at ``path`` with ``rxspark[test]`` (editable) and the cell's requirements; its python."""
    shutil.rmtree(path, ignore_errors=True)
    run(interpreter(cell.python), "-m", "venv", str(path), check=True)
    python = str(path / "bin" / "python")
    pin = ["-c", str(constraints)] if constraints else []
    upgrade = [] if constraints else ["--upgrade"]
    run(python, "-m", "pip", "install", "--quiet", *upgrade, *pin, "pip", check=True)
    run(python, "-m", "pip", "install", "--quiet", *pin, "-e", ".[test]", *cell.requirements, check=True)
    for optional in OPTIONAL:
        if run(python, "-m", "pip", "install", "--quiet", *pin, optional).returncode:
            print(f"matrix: {name}: {optional} is not available for Python {cell.python}; its tests will skip")
    return python


def lock(name: str) -> None:
    """Resolve the newest releases the cell allows and record them as ``constraints/<cell>.txt``."""
    cell = CELLS[name]
    path = VENVS / f"{name}-lock"
    python = make_venv(name, path, cell, None)
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--all", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], check=True, capture_output=True, text=True
    ).stdout.strip()
    pins = sorted(line for line in frozen.splitlines() if line and not line.startswith("#"))
    LOCKS.mkdir(exist_ok=True)
    header = (
        f"# Matrix cell {name}: the versions its tests passed with (make test-matrix CELLS={name} installs with -c).\n"
        f"# Python {version} on {platform.system()} {platform.machine()}; "
        f"regenerate with `make lock-matrix CELLS={name}`, then run the cell.\n"
    )
    lock_path(name).write_text(header + "\n".join(pins) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    print(f"{lock_path(name)}: {len(pins)} pins")


def _stale(venv: Path, constraints: Path) -> bool:
    stamp = venv / ".installed"
    newest = max(constraints.stat().st_mtime, (ROOT / "pyproject.toml").stat().st_mtime)
    return not stamp.exists() or stamp.stat().st_mtime < newest


def summary_line(output: str) -> str:
    """pytest's last line (``12 passed, 3 skipped in 40.1s``), or a note when there is none."""
    lines = [line.strip("= ").strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|error|errors|skipped|no tests ran)\b.* in [\d.]+s", line):
            return line
    return "(no pytest summary line)"


def test(name: str, pytest_args: list[str]) -> tuple[int, str]:
    """Build (if its lock or pyproject changed) and test one cell; returns pytest's exit code and summary line."""
    cell = CELLS[name]
    constraints = lock_path(name)
    if not constraints.exists():
        raise SystemExit(f"matrix: {constraints} is missing: make lock-matrix CELLS={name}")
    venv = VENVS / name
    python = str(venv / "bin" / "python")
    if _stale(venv, constraints):
        make_venv(name, venv, cell, constraints)
        (venv / ".installed").touch()
    env = dict(os.environ, PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.pop("SPARK_HOME", None)  # the cell's own pyspark, not another installation's
    started = time.monotonic()
    args = ["-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--durations=10", *cell.pytest_args, *TESTS, *pytest_args]
    print(f"matrix: {name}: pytest {' '.join(args)}", flush=True)
    proc = subprocess.Popen(
        [python, "-m", "pytest", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        output.append(line)
    code = proc.wait()
    summary = summary_line("".join(output))
    versions = subprocess.run(
        [python, "-c", "import platform, pyspark; print(platform.python_version(), pyspark.__version__)"],
        capture_output=True, text=True, env=env,
    ).stdout.split()
    record = (
        f"{name}: Python {versions[0] if versions else '?'}, pyspark {versions[1] if len(versions) > 1 else '?'}: "
        f"{summary} (exit {code}; {datetime.date.today().isoformat()}, {time.monotonic() - started:.0f} s)"
    )
    (venv / "summary.txt").write_text(record + "\n")
    return code, record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("test", "lock", "list"))
    parser.add_argument("cells", nargs="*", help=f"cells (default: all): {', '.join(CELLS)}")
    parser.add_argument("--pytest-args", default="", help="more pytest arguments for `test` (one string)")
    args = parser.parse_args()
    cells = [c for arg in args.cells for c in arg.replace(",", " ").split()] or list(CELLS)
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        parser.error(f"unknown cell(s) {', '.join(unknown)}; the cells are {', '.join(CELLS)}")
    if args.command == "list":
        for name, cell in CELLS.items():
            narrowed = f", pytest {' '.join(cell.pytest_args)}" if cell.pytest_args else ""
            print(f"{name}: Python {cell.python}, {' '.join(cell.requirements)}{narrowed} ({lock_path(name).relative_to(ROOT)})")
        return 0
    if args.command == "lock":
        for name in cells:
            lock(name)
        return 0
    results = [test(name, args.pytest_args.split()) for name in cells]
    print("\nmatrix summary:")
    for _, record in results:
        print("  " + record)
    return max(code for code, _ in results)


if __name__ == "__main__":
    sys.exit(main())
