"""Plain scripts without ``if __name__ == "__main__":`` (the shape of every script in the rxExec guide).

RxLocalParallel's workers must not re-run the user's script: it runs once,
prints the right results, and exits. A path that still cannot run such a
script (a caller's process pool that spawns workers by re-running
``__main__``) fails at once with an error that says so and how to fix it.
Each script runs in its own interpreter; the module-level code appends one
line to a file every time it runs, so a re-run is counted.
"""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

from .conftest import child_env, run_child

HEADER = """\
import json, os, sys
import rxspark
from rxspark import rx_exec, rx_elem_arg

rxspark.rx_options(share_dir=os.environ["RX_STORE"])
with open(os.environ["RUNS_FILE"], "a") as f:  # every top-level run of this script leaves a line
    f.write(f"{os.getpid()}\\n")

def square(x):
    return x * x, rxspark.rng().integers(0, 1000)

"""

SCRIPTS = {
    "RxLocalParallel(2)": """\
cc = rxspark.RxLocalParallel(2)
results = rx_exec(square, rx_elem_arg(range(8)), task_chunk_size=2, rng_seed=11, compute_context=cc)
print("RESULTS " + json.dumps([[int(a), int(b)] for a, b in results]))
""",
    'rx_set_compute_context("localpar")': """\
rxspark.rx_set_compute_context("localpar")
results = rx_exec(square, rx_elem_arg(range(8)), task_chunk_size=2, rng_seed=11)
print("RESULTS " + json.dumps([[int(a), int(b)] for a, b in results]))
""",
}


def run_script(tmp_path, body: str, timeout: float = 120, **env: str):
    script = tmp_path / "guide_script.py"
    script.write_text(HEADER + textwrap.dedent(body))
    runs = tmp_path / "runs.txt"
    env_extra = {"RUNS_FILE": str(runs), "RX_STORE": str(tmp_path / "store"), **env}
    began = time.monotonic()
    proc = run_child([str(script)], timeout=timeout, env=child_env(**env_extra), cwd=str(tmp_path))
    elapsed = time.monotonic() - began
    top_level_runs = runs.read_text().splitlines() if runs.exists() else []
    return proc, top_level_runs, elapsed


def reference() -> list[list[int]]:
    from rxspark import rng, rx_elem_arg, rx_exec

    def square(x):
        return x * x, rng().integers(0, 1000)

    return [[int(a), int(b)] for a, b in rx_exec(square, rx_elem_arg(range(8)), task_chunk_size=2, rng_seed=11)]


@pytest.mark.parametrize("body", list(SCRIPTS.values()), ids=list(SCRIPTS))
def test_an_unguarded_script_runs_once_with_the_right_results(tmp_path, body):
    proc, top_level_runs, _ = run_script(tmp_path, body)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert len(lines) == 1, proc.stdout
    assert json.loads(lines[0][len("RESULTS ") :]) == reference()
    assert len(top_level_runs) == 1, (
        f"the script's module-level code ran {len(top_level_runs)} times (workers re-ran it)\n{proc.stderr[-3000:]}"
    )


def test_a_spawning_pool_of_the_caller_fails_at_once_saying_why_and_how_to_fix_it(tmp_path):
    """A stdlib ProcessPoolExecutor with the spawn start method re-runs ``__main__`` in its workers:
    rxspark cannot change that, but it says so at the first loss (no retries) instead of only 'a worker died'."""
    body = """\
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
try:
    rx_exec(square, rx_elem_arg(range(4)), task_chunk_size=1, compute_context=rxspark.RxForeachDoPar(pool))
except Exception as exc:  # what each process that ran this line got, then the usual traceback
    with open(os.path.join(os.environ["ERRORS"], str(os.getpid())), "w") as f:
        json.dump({"type": type(exc).__name__, "message": str(exc)}, f)
    raise
"""
    errors_dir = tmp_path / "errors"
    errors_dir.mkdir()
    proc, top_level_runs, elapsed = run_script(tmp_path, body, ERRORS=str(errors_dir))
    assert proc.returncode != 0 and top_level_runs, proc.stdout + proc.stderr[-3000:]
    script_pid = top_level_runs[0]  # the user's own run comes first; the workers' re-runs after it
    assert os.path.exists(errors_dir / script_pid), proc.stderr[-3000:]
    error = json.loads((errors_dir / script_pid).read_text())
    assert error["type"] == "RxWorkerLostError", error
    message = error["message"]
    assert 'if __name__ == "__main__":' in message, message
    assert "RxLocalParallel" in message, message  # the fix: guard the script, or use a pool that needs no guard
    assert elapsed < 60
