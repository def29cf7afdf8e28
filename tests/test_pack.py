"""rxspark.pack and ``rxspark pack``: a venv packed for python_env, editable installs included, reused while unchanged.

A real venv (``python -m venv``: pip and setuptools from ensurepip, plus
``wheel`` from the package index) with a small project installed editable; the archive is unpacked and
its interpreter run, with the project's source directory moved away so only
the archive's copy can be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap

import pytest

from rxspark import RxSpark
from rxspark.cli import main as cli_main
from rxspark.errors import RxArgumentError
from rxspark.pack import check_python_env, fingerprint, pack, packed_environment

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv with the project ``tinypkg`` installed in editable mode from a directory outside it."""
    root = tmp_path_factory.mktemp("packing")
    prefix = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    project = root / "tinyproj"
    (project / "tinypkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "tinypkg"
            version = "1.0"

            [tool.setuptools]
            packages = ["tinypkg"]
            """
        )
    )
    (project / "tinypkg" / "__init__.py").write_text("ANSWER = 42\n")
    pip = [str(prefix / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel"], check=True)  # ensurepip's setuptools builds editable wheels with it
    subprocess.run([*pip, "--no-index", "--no-deps", "--no-build-isolation", "-e", str(project)], check=True)
    return prefix, project


def _run_unpacked(archive, where, code: str) -> str:
    where.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="tar" if hasattr(tarfile, "tar_filter") else None)
    out = subprocess.run([str(where / "bin" / "python"), "-c", code], capture_output=True, text=True, env={})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_an_editable_install_is_packed_from_its_source_and_runs_without_it(venv, tmp_path):
    prefix, project = venv
    archive = pack(tmp_path / "env.tar.gz", prefix=str(prefix))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        python = tar.getmember(f"bin/python{VERSION}")
    site = f"lib/python{VERSION}/site-packages"
    assert f"{site}/tinypkg/__init__.py" in names
    assert not [n for n in names if "__editable__" in n or n.endswith(".pyc") or "/pyspark/" in n]
    home = next(line.split("=", 1)[1].strip() for line in (prefix / "pyvenv.cfg").read_text().splitlines() if line.startswith("home"))
    assert python.issym() and python.linkname == os.path.join(home, f"python{VERSION}")  # the venv's own base
    moved = project.with_name("tinyproj-moved")
    project.rename(moved)  # the archive's copy is the only tinypkg left
    try:
        out = _run_unpacked(
            archive, tmp_path / "node",
            "import sys, tinypkg; print(tinypkg.ANSWER, tinypkg.__file__.startswith(sys.prefix), sys.prefix)",
        )
    finally:
        moved.rename(project)
    answer, inside, where = out.split()
    assert (answer, inside) == ("42", "True") and where == str(tmp_path / "node")


def test_python_prefix_points_the_archive_at_another_base_interpreter(venv, tmp_path):
    prefix, _ = venv
    archive = pack(tmp_path / "env.tar.gz", prefix=str(prefix), python_prefix="/usr")
    with tarfile.open(archive) as tar:
        assert tar.getmember(f"bin/python{VERSION}").linkname == f"/usr/bin/python{VERSION}"
        cfg = tar.extractfile("pyvenv.cfg").read().decode()
    assert "home = /usr/bin" in cfg
    if os.path.exists(f"/usr/bin/python{VERSION}"):
        out = _run_unpacked(archive, tmp_path / "node", "import sys, tinypkg; print(sys.base_prefix, tinypkg.ANSWER)")
        assert out == "/usr 42"
    with pytest.raises(RxArgumentError, match="python_prefix"):
        pack(tmp_path / "bad.tar.gz", prefix=str(prefix), python_prefix="usr")


def test_the_archive_is_reused_until_an_installed_or_editable_file_changes(venv, monkeypatch, tmp_path):
    prefix, project = venv
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = packed_environment(prefix=str(prefix))
    stamp = os.stat(first).st_mtime_ns
    assert packed_environment(prefix=str(prefix)) == first and os.stat(first).st_mtime_ns == stamp
    before = fingerprint(str(prefix))
    source = project / "tinypkg" / "__init__.py"
    source.write_text("ANSWER = 43  # changed\n")
    try:
        assert fingerprint(str(prefix)) != before
        second = packed_environment(prefix=str(prefix))
        assert second != first and os.path.exists(second)
    finally:
        source.write_text("ANSWER = 42\n")


def test_rxspark_pack_prints_the_archive(venv, tmp_path, capsys):
    prefix, _ = venv
    output = tmp_path / "cli.tar.gz"
    assert cli_main(["pack", "--prefix", str(prefix), "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert tarfile.is_tarfile(output)
    assert cli_main(["pack", "--prefix", str(tmp_path), "--output", str(output)]) == 1
    assert "is not a virtual environment" in capsys.readouterr().err


def test_python_env_is_checked_up_front(tmp_path):
    for bad in (3, "", "env.whl", str(tmp_path / "missing.tar.gz")):
        with pytest.raises(RxArgumentError, match="python_env"):
            RxSpark(master="local[1]", python_env=bad)
    archive = tmp_path / "env.tar.gz"
    archive.write_bytes(b"")
    assert RxSpark(master="local[1]", python_env=archive).python_env == str(archive)
    assert check_python_env("hdfs:///envs/env.tar.gz") == "hdfs:///envs/env.tar.gz"
    assert check_python_env("pack") == "pack" and check_python_env(None) is None
