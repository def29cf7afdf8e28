"""Security: private files, no secrets on command lines or in records, authenticated clusters.

* the job store and the local pool's private directory are 0700 / 0600 after
  real jobs, even under umask 0, and nothing rxspark creates is writable by others;
* spark-submit.sh passes every argument verbatim (spaces, quotes, ';', things
  that look like options, paths with spaces, the tool itself under a path with
  spaces), keeps the cluster secret off the command line and in a private work
  directory (checked with a stand-in spark-submit that reports what it got);
* the standalone profile turns authentication on with the secret from the
  environment: on a StandaloneCluster (authentication on) an application
  without the secret is refused, one with it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

import numpy as np
import pytest

from rxspark import RxLocalParallel, rx_elem_arg, rx_exec

from . import faults
from .conftest import ROOT, TESTS, child_env, eventually

SUBMIT = os.path.join(ROOT, "spark-submit.sh")
# spark-submit.sh checks Java first (scripts/ensure-java.sh), even in front of the stand-in spark-submit.
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="spark-submit.sh needs Java on PATH")
ODD_ARGS = ["two words", "semi;colon", "'single'", '"double"', "$HOME", "`uname`", "", "a\tb",
            "--master", "local[1]", "--conf", "spark.x=1", "-v", "--name", "x; rm -rf /"]


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def tree_modes(root, include_root=True) -> dict[str, int]:
    modes = {str(root): mode(root)} if include_root else {}
    for where, dirs, files in os.walk(root):
        for name in dirs + files:
            modes[os.path.join(where, name)] = mode(os.path.join(where, name))
    return modes


# ------------------------------------------------------------------ local files


def test_local_pool_files_and_job_store_are_private_under_umask_0(tmp_path, share_dir, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where rxspark's private directories go
    release = tmp_path / "release"
    big = np.ones(300_000)  # 2.4 MB exec object: the payload is spilled to a private file
    old = os.umask(0)
    cc = RxLocalParallel(2)
    try:
        job = rx_exec(faults.wait_for_file, rx_elem_arg(range(4)), path=str(release), task_chunk_size=1,
                      exec_objects={"BIG": big}, compute_context=cc, wait=False, auto_cleanup=False)
        # While the job runs: the spilled payload and the chunk markers sit in a 0700 directory, as 0600 files.
        running = eventually(lambda: [p for p in tree_modes(temp) if p.endswith(".running")], what="running chunks")
        modes = tree_modes(temp, include_root=False)
        assert any(p.endswith(".payload") for p in modes) and running
        for path, m in modes.items():
            assert m == (0o700 if os.path.isdir(path) else 0o600), (path, oct(m))
        release.touch()
        assert job.result(timeout=60) == [0, 1, 2, 3]
        store = tree_modes(share_dir)
        # A non-waiting job is durable: its results are its chunk checkpoints (and the frozen job beside them).
        assert any(p.endswith("record.json") for p in store) and any("/chunks/" in p and p.endswith(".pkl") for p in store)
        assert any(p.endswith("job.pkl") for p in store) and any(p.endswith("lease.json") for p in store)
        for path, m in store.items():
            assert m == (0o700 if os.path.isdir(path) else 0o600), (path, oct(m))
    finally:
        os.umask(old)
        release.touch()
        cc.close()
    assert os.listdir(temp) == []  # close() leaves nothing behind


# ------------------------------------------------------------------ spark-submit.sh with a stand-in spark-submit

STUB = """#!{python}
# Stands in for spark-submit: reports its arguments and the work directory spark-submit.sh prepared.
import json, os, stat, sys
argv = sys.argv[1:]
props = argv[argv.index("--properties-file") + 1]
work = os.path.dirname(props)
mode = lambda p: stat.S_IMODE(os.lstat(p).st_mode)
with open(os.environ["STUB_REPORT"], "w") as f:
    json.dump({{"argv": argv, "work": work, "work_mode": mode(work),
               "modes": {{n: mode(os.path.join(work, n)) for n in os.listdir(work)}},
               "properties": open(props).read(), "pyfiles": argv[argv.index("--py-files") + 1]}}, f)
"""


@pytest.fixture
def tools(tmp_path):
    """A copy of spark-submit.sh (with conf/, scripts/ and rxspark/) under a path with spaces, and a
    stand-in spark-submit (also under a path with spaces)."""
    home = tmp_path / "my tools" / "rx spark"
    home.mkdir(parents=True)
    shutil.copy2(SUBMIT, home / "spark-submit.sh")
    for name in ("conf", "scripts", "rxspark"):
        shutil.copytree(os.path.join(ROOT, name), home / name, ignore=shutil.ignore_patterns("__pycache__"))
    spark_home = tmp_path / "fake spark home"
    (spark_home / "bin").mkdir(parents=True)
    stub = spark_home / "bin" / "spark-submit"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = tmp_path / "my jobs" / "the job.py"
    script.parent.mkdir()
    script.write_text("print('the job')\n")
    return {"submit": str(home / "spark-submit.sh"), "spark_home": str(spark_home), "temp": temp,
            "script": str(script), "report": tmp_path / "report.json"}


def run_submit(tools, *args, secret=None):
    env = child_env(SPARK_HOME=tools["spark_home"], PYSPARK_PYTHON=sys.executable, TMPDIR=str(tools["temp"]),
                    STUB_REPORT=str(tools["report"]))
    env.pop("_SPARK_AUTH_SECRET", None)
    if secret is not None:
        env["_SPARK_AUTH_SECRET"] = secret
    proc = subprocess.run([tools["submit"], *args], capture_output=True, text=True, timeout=120, env=env)
    report = json.loads(tools["report"].read_text()) if tools["report"].exists() else None
    return proc, report


@needs_java
def test_spark_submit_sh_passes_every_argument_verbatim_from_paths_with_spaces(tools):
    proc, report = run_submit(tools, "--profile", "standalone", "--master", "spark://127.0.0.1:7077", tools["script"], *ODD_ARGS)
    assert proc.returncode == 0, proc.stderr
    argv = report["argv"]
    assert argv[-len(ODD_ARGS) - 1 :] == [tools["script"], *ODD_ARGS]  # the script and its arguments, verbatim
    before = argv[: -len(ODD_ARGS) - 1]
    assert before[before.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert f"spark.pyspark.python={sys.executable}" in before
    assert os.path.basename(report["pyfiles"]) == "rxspark.zip" and os.path.dirname(report["pyfiles"]) == report["work"]


@needs_java
def test_spark_submit_sh_keeps_the_secret_off_the_command_line_in_a_private_work_dir(tools):
    secret = "s3cr3t-" + os.urandom(6).hex()
    proc, report = run_submit(tools, "--profile", "standalone", tools["script"], secret=secret)
    assert proc.returncode == 0, proc.stderr
    assert not [a for a in report["argv"] if secret in a]  # command lines are visible to every user (ps)
    assert f"spark.authenticate.secret {secret}" in report["properties"]
    assert report["work"].startswith(str(tools["temp"]))
    assert report["work_mode"] == 0o700
    assert report["modes"] and all(m == 0o600 for m in report["modes"].values()), report["modes"]
    assert secret not in proc.stdout + proc.stderr


@needs_java
def test_spark_submit_sh_removes_its_work_dir(tools):
    proc, _ = run_submit(tools, "--profile", "standalone", tools["script"], secret="s3cr3t")
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tools["temp"]) == []


@needs_java
@pytest.mark.parametrize("option", [["--profile", "yarn"], ["--python", "/bin/false"], ["--help"]])
def test_spark_submit_sh_leaves_the_scripts_own_options_alone(tools, option):
    proc, report = run_submit(tools, tools["script"], *option)
    assert proc.returncode == 0, proc.stderr
    assert report is not None and report["argv"][-len(option) - 1 :] == [tools["script"], *option]


def test_spark_submit_sh_refuses_a_python_without_pyspark_in_one_line(tools, tmp_path):
    """No SPARK_HOME and a python that cannot import pyspark: one line that says what to do, no traceback."""
    python = tmp_path / "bare python"
    python.write_text("#!/bin/sh\nexit 1\n")  # a python whose `import pyspark` fails
    python.chmod(0o755)
    env = child_env(PYSPARK_PYTHON=str(python), TMPDIR=str(tools["temp"]))
    env.pop("SPARK_HOME", None)
    proc = subprocess.run([tools["submit"], tools["script"]], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot import pyspark" in proc.stderr and "--python" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_standalone_profile_turns_authentication_on_with_the_secret_from_the_environment():
    with open(os.path.join(ROOT, "conf", "spark-defaults.standalone.conf")) as f:
        text = f.read()
    settings = dict(line.split(None, 1) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    assert settings["spark.authenticate"].strip() == "true"
    assert "spark.authenticate.secret" not in settings  # never in a file that is checked in
    assert "_SPARK_AUTH_SECRET" in text  # where the secret comes from


@pytest.mark.spark
def test_spark_submit_sh_runs_from_a_checkout_whose_path_has_spaces(tools):
    """The real spark-submit, embedded Spark: the driver's Java options hold the checkout's path."""
    env = child_env(PYSPARK_PYTHON=sys.executable, TMPDIR=str(tools["temp"]))
    proc = subprocess.run([tools["submit"], tools["script"]], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the job" in proc.stdout


# ------------------------------------------------------------------ a standalone cluster with authentication

WHERE = """
import json, sys
import rxspark
from rxspark import RxSpark, rx_elem_arg, rx_exec

def draw(x):
    return x, float(rxspark.rng().uniform())

with RxSpark() as cc:
    sc = cc.spark_context
    out = rx_exec(draw, rx_elem_arg(range(6)), task_chunk_size=2, rng_seed=5)
    print("REPORT " + json.dumps({"argv": sys.argv[1:], "master": sc.master, "app": sc.appName, "results": out,
                                  "executors": sc._jsc.sc().getExecutorIds().size(),
                                  "authenticate": sc.getConf().get("spark.authenticate")}))
"""


def draw(x):
    import rxspark

    return x, float(rxspark.rng().uniform())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    sys.path.insert(0, TESTS)
    from standalone import StandaloneCluster

    with StandaloneCluster(str(tmp_path_factory.mktemp("standalone")), workers=2) as running:
        yield running


def master_apps(cluster) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.web_port}/json/", timeout=10) as r:
        state = json.load(r)
    return [app["name"] for app in state.get("activeapps", []) + state.get("completedapps", [])]


@pytest.mark.spark
@pytest.mark.cluster
@pytest.mark.slow
def test_without_the_secret_no_application_gets_in(cluster, tmp_path):
    env = child_env(PYSPARK_PYTHON=sys.executable)  # this suite's python, whatever the venv is called
    env.pop("_SPARK_AUTH_SECRET", None)
    # The standalone profile without the secret in the environment: refused before it connects.
    script = tmp_path / "intruder job.py"
    script.write_text("import rxspark\nrxspark.RxSpark().connect()\nprint('CONNECTED')\n")
    proc = subprocess.run([SUBMIT, "--profile", "standalone", "--master", cluster.master, "--name", "no-secret", str(script)],
                          capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    assert proc.returncode != 0 and "CONNECTED" not in proc.stdout
    assert "spark.authenticate.secret" in proc.stdout + proc.stderr  # Spark says which setting is missing
    # An application that does not authenticate at all: the master drops it; rxspark says why that may be.
    code = textwrap.dedent(f"""
        import time, rxspark
        began = time.monotonic()
        try:
            rxspark.RxSpark(master={cluster.master!r}, app_name="intruder", startup_timeout=10, progress=False).connect()
            print("CONNECTED")
        except rxspark.RxSparkUnavailableError as exc:
            print("REFUSED", round(time.monotonic() - began, 1), exc)
    """)
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "REFUSED" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert time.monotonic() - began < 90
    assert "spark.authenticate=true and the secret in _SPARK_AUTH_SECRET" in proc.stdout
    assert "no-secret" not in master_apps(cluster) and "intruder" not in master_apps(cluster)


@pytest.mark.spark
@pytest.mark.cluster
@pytest.mark.slow
def test_with_the_secret_a_job_runs_through_spark_submit_from_a_path_with_spaces(cluster, tmp_path):
    script = tmp_path / "my jobs" / "where it runs.py"
    script.parent.mkdir()
    script.write_text(WHERE)
    env = child_env(_SPARK_AUTH_SECRET=cluster.secret, PYSPARK_PYTHON=sys.executable)
    args = ["--profile", "standalone", "--master", cluster.master, "--name", "authorized", str(script), *ODD_ARGS]
    proc = subprocess.run([SUBMIT, *args], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("REPORT ")]
    report = json.loads(line[len("REPORT ") :])
    assert report["argv"] == ODD_ARGS
    assert (report["master"], report["app"], report["executors"], report["authenticate"]) == (cluster.master, "authorized", 2, "true")
    local = rx_exec(draw, rx_elem_arg(range(6)), task_chunk_size=2, rng_seed=5)
    assert [tuple(r) for r in report["results"]] == local
    assert "authorized" in master_apps(cluster)
    assert cluster.secret not in proc.stdout + proc.stderr
