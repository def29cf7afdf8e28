"""rxspark installed as users install it: ``python -m build``, then the wheel (not editable) in a fresh venv.

``python -m build`` makes the sdist and then the wheel from the unpacked
sdist, so the wheel's existence shows the sdist holds what a build needs; the
tests also read both archives for the package data (``conf/`` files,
``py.typed``) and every module. The wheel goes into a new venv with its
dependencies at the versions of ``constraints.txt`` (from pip's cache), and
the demo (``examples/dice.py`` on embedded Spark, and without Spark) and
``rxspark doctor`` run from there, in a directory away from the clone, so the
clone's ``rxspark/`` cannot stand in for the installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rxspark"

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.timeout(900)]


def _sources() -> set[str]:
    """The package's files a wheel must carry, relative to the clone: modules, ``py.typed``, ``conf/`` files."""
    files = {p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    files |= {PACKAGE / "py.typed", *(PACKAGE / "conf").glob("*.properties")}
    return {str(p.relative_to(ROOT)) for p in files}


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{' '.join(map(str, args))} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel ``python -m build`` makes (the wheel from the sdist), in a temporary directory."""
    out = tmp_path_factory.mktemp("dist")
    # Isolated, as a user's build is: pip fetches the build backend pyproject.toml names (setuptools>=77; the
    # venv's own setuptools is older), from its cache when it has it.
    started = time.monotonic()
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    print(f"sdist and wheel built in {time.monotonic() - started:.0f} s")
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (not editable) and its dependencies from constraints.txt."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)])
    (wheel,) = dist.glob("rxspark-*.whl")
    started = time.monotonic()
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), str(wheel)])
    print(f"wheel and dependencies installed in {time.monotonic() - started:.0f} s")
    return venv


def _env(venv: Path) -> dict[str, str]:
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME", "VIRTUAL_ENV")}
    env.update(PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python, SPARK_LOCAL_IP="127.0.0.1")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_sdist_holds_what_a_build_needs(dist):
    (sdist,) = dist.glob("rxspark-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = _sources() | {"pyproject.toml", "README.md"}
    assert not needed - names, f"the sdist lacks {sorted(needed - names)}"


def test_the_wheel_holds_every_module_and_the_package_data(dist):
    (wheel,) = dist.glob("rxspark-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [line for line in zf.read(metadata).decode().splitlines() if line.startswith("Requires-Dist: pyspark")]
        entry_points = zf.read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert not _sources() - names, f"the wheel lacks {sorted(_sources() - names)}"
    assert "rxspark/py.typed" in names and any(n.startswith("rxspark/conf/") for n in names)
    assert any("pyspark<5,>=3.5" in line.replace(" ", "") for line in requires), requires
    assert "rxspark = rxspark.cli:main" in entry_points


def test_the_installed_wheel_runs_the_demo_and_the_doctor(installed, tmp_path):
    env, python = _env(installed), str(installed / "bin" / "python")
    where = _run([python, "-c", "import rxspark, sys; print(rxspark.__file__)"], cwd=tmp_path, env=env).stdout.strip()
    assert where.startswith(str(installed)) and "site-packages" in where, where
    spark = _run([python, str(ROOT / "examples" / "dice.py"), "--seed", "777"], cwd=tmp_path, env=env).stdout
    local = _run([python, str(ROOT / "examples" / "dice.py"), "--seed", "777", "--master", "none"], cwd=tmp_path, env=env).stdout
    assert "on RxSpark" in spark and "on RxLocalSeq" in local, (spark, local)
    table = spark.splitlines()[:2]
    assert table[0].split() == ["Loss", "Win"] and sum(map(int, table[1].split())) == 10000, spark
    assert table == local.splitlines()[:2], "the seeded demo differs between Spark and RxLocalSeq"
    # --no-spark: the demo above already ran Spark from the wheel; the doctor's own Spark probe is pyspark alone.
    doctor = subprocess.run(
        [str(installed / "bin" / "rxspark"), "doctor", "--no-spark"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "all required checks passed" in doctor.stdout, doctor.stdout
    assert "OK    PySpark: pyspark " in doctor.stdout and "FAIL" not in doctor.stdout, doctor.stdout
