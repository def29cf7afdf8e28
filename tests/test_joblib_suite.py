"""joblib's own backend tests (``joblib/test/test_parallel.py``, shipped in joblib's wheel) on the rxspark backend.

Each context runs ``python -m pytest --pyargs joblib.test.test_parallel -p
joblib_plugin -k rxspark`` in a subprocess, from where joblib is installed, with
a blank pytest configuration (joblib's tests are not ours: our pyproject's
strict markers do not apply to them). tests/joblib_plugin.py imports
``rxspark.joblib`` before collection, so joblib parametrizes its backend tests
with ``"rxspark"``; the JUnit report gives the counts, which must be all passed
and as many as joblib's module has for a registered backend.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import joblib
import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
SITE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(joblib.__file__)))
# Tests of joblib's test_parallel.py that a registered backend named "rxspark" joins, by joblib version.
EXPECTED = {"1.6.0": 78}


def run_suite(context: str, tmp_path, timeout: float) -> dict[str, int]:
    """Run joblib's suite in a process group of its own, which is killed whole when it ends.

    Its output goes to a file, not a pipe: a process the suite left behind
    holding the pipe would keep a reader waiting after the suite ended. Past
    ``timeout`` (below the test's own hang guard), or when the wait is
    interrupted, the whole group is killed too, so nothing it started waits on.
    """
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    report = tmp_path / "report.xml"
    log = tmp_path / "suite.log"
    env = dict(os.environ, RXSPARK_JOBLIB_CONTEXT=context, SPARK_LOCAL_IP="127.0.0.1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS_DIR, env.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", SITE_DIR, "-p", "no:cacheprovider",
        "--pyargs", "joblib.test.test_parallel", "-p", "joblib_plugin", "-k", "rxspark",
        "-q", "--timeout", "240", f"--junitxml={report}",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, cwd=SITE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            with contextlib.suppress(ProcessLookupError):  # the group is empty: nothing was left
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    text = log.read_text(errors="replace")
    assert returncode is not None, f"joblib's suite did not end within {timeout} s:\n{text[-6000:]}"
    assert report.exists(), text[-8000:]
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["returncode"] = returncode
    counts["log"] = text[-8000:]  # type: ignore[assignment]
    return counts


def check(counts: dict[str, int]) -> None:
    log = counts.pop("log")
    expected = EXPECTED.get(joblib.__version__)
    if expected is not None:
        assert counts["tests"] == expected, (counts, log)
    else:
        assert counts["tests"] >= 60, (counts, log)
    assert counts["failures"] == counts["errors"] == 0, (counts, log)
    assert counts["returncode"] == 0, (counts, log)
    print(f"joblib {joblib.__version__} test_parallel on rxspark: {counts}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_joblibs_backend_suite_passes_on_rxlocalparallel(tmp_path):
    check(run_suite("localpar", tmp_path, timeout=1100))


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.timeout(2400)
def test_joblibs_backend_suite_passes_on_rxspark_local(tmp_path):
    check(run_suite("spark", tmp_path, timeout=2300))
