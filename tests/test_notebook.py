"""rxspark in a real Jupyter kernel: notebooks executed by nbclient in an ipykernel running this interpreter.

Each test builds its notebook cell by cell (nbformat) and runs it in one
kernel, as a notebook user would: a classic ``local[2]`` session started in
the notebook, or a Spark Connect session of the test suite's local server.
Interrupts are sent the way a Jupyter server sends them (the kernel manager's
``interrupt_kernel``: SIGINT to the kernel's process group). What is checked
is what the user sees: the cells' outputs (progress widgets, tracebacks,
images) and the session's state after an interrupt.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import sys
import textwrap
import threading
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = "rxspark-test"
WIDGET = "application/vnd.jupyter.widget-view+json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Notebook:
    """One kernel running this interpreter; cells are added and executed one at a time."""

    def __init__(self, tmp_path, monkeypatch) -> None:
        spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
        spec_dir.mkdir(parents=True)
        env = {
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "IPYTHONDIR": str(tmp_path / "ipython"),
            "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "examples")]),
        }
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "rxspark test", "language": "python", "env": env}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
        monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in Jupyter
        self.tmp = tmp_path
        self.nb = nbformat.v4.new_notebook()
        self.client = nbclient.NotebookClient(self.nb, kernel_name=KERNEL, timeout=180, store_widget_state=True)
        self._setup = self.client.setup_kernel()

    def __enter__(self) -> Notebook:
        self._setup.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._setup.__exit__(*exc)

    def run(self, source: str, raises: bool = False, during=None):
        """Execute one cell; ``during(client)`` runs in a thread meanwhile. Returns (cell, seconds)."""
        cell = nbformat.v4.new_code_cell(textwrap.dedent(source))
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        self.nb.cells.append(cell)
        helper = threading.Thread(target=during, args=(self.client,), daemon=True) if during else None
        if helper:
            helper.start()
        started = time.monotonic()
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        elapsed = time.monotonic() - started
        if helper:
            helper.join(30)
        return cell, elapsed

    def interrupt(self) -> None:
        asyncio.run(self.client.km.interrupt_kernel())  # what a Jupyter server does: SIGINT to the process group


def text(cell, name: str | None = None) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream" and (name is None or out.name == name):
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data") and name is None:
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error" and name is None:
            parts.append(ANSI.sub("", "\n".join(out.traceback)))
    return "".join(parts)


def widgets(cell) -> list[str]:
    """Model ids of the widgets displayed in ``cell`` (a tqdm bar is one HBox)."""
    return [out.data[WIDGET]["model_id"] for out in cell.outputs
            if out.output_type == "display_data" and WIDGET in out.data]


def error(cell):
    errors = [out for out in cell.outputs if out.output_type == "error"]
    assert errors, cell.outputs
    return errors[0]


def wait_for_file(path, timeout=60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


SETUP = """
    import os, time
    import rxspark
    from rxspark import RxSpark, rx_elem_arg, rx_exec
    rxspark.rx_options(share_dir={share!r})

    def square(x):
        time.sleep(0.3)
        return x * x

    def fragile(x):
        if x == 3:
            raise ValueError("fragile failed on 3")  # THE CELL'S FAILING LINE
        return x

    def stubborn(i, marker):
        # A long task that says it runs (the test interrupts then) and beats while it runs.
        beat = f"{{marker}}.{{i}}"
        for _ in range(600):
            with open(beat, "w") as f:
                f.write(str(time.time()))
            if i == 0 and not os.path.exists(marker):
                open(marker, "w").close()
            time.sleep(0.1)
        return i
"""

BAR_FINAL_LINE = """
right = job._bar.bar.container.children[2].value  # the widget's text: count, time, rate
print("FINAL", right, job._bar.bar.container.children[1].bar_style)
"""


def _blocking_and_failing(nb: Notebook, times: dict[str, float]) -> None:
    first, elapsed = nb.run("""
        t = time.perf_counter()
        out = rx_exec(square, rx_elem_arg(range(6)), task_chunk_size=1)
        print("RESULT", out, "first job", round(time.perf_counter() - t, 2))
    """)
    assert "RESULT [0, 1, 4, 9, 16, 25]" in text(first, "stdout")
    assert len(widgets(first)) == 1, first.outputs  # the blocking job's bar, in its own cell
    times["first job (cell)"] = elapsed
    later, elapsed = nb.run("""
        t = time.perf_counter()
        out = rx_exec(square, rx_elem_arg(range(6)), task_chunk_size=1)
        print("RESULT", out, "later job", round(time.perf_counter() - t, 2))
    """)
    assert "RESULT [0, 1, 4, 9, 16, 25]" in text(later, "stdout") and len(widgets(later)) == 1
    times["later job (cell)"] = elapsed

    failing, _ = nb.run("rx_exec(fragile, rx_elem_arg(range(5)), continue_on_failure=False)", raises=True)
    err = error(failing)
    shown = ANSI.sub("", "\n".join(err.traceback))
    assert err.ename == "RxTaskError", shown
    assert 'raise ValueError("fragile failed on 3")  # THE CELL\'S FAILING LINE' in shown, shown
    assert "ValueError: fragile failed on 3" in shown, shown
    # The traceback starts at the user's call; no frames of the job's thread or of concurrent.futures.
    assert "concurrent/futures" not in shown and "rxspark/contexts" not in shown and "jobs/job.py" not in shown, shown


def _non_blocking(nb: Notebook) -> None:
    submit, elapsed = nb.run("""
        t = time.perf_counter()
        job = rx_exec(square, rx_elem_arg(range(8)), task_chunk_size=1, wait=False)
        print("SUBMITTED", job.status(), round(time.perf_counter() - t, 2))
    """)
    assert "SUBMITTED" in text(submit, "stdout")
    assert len(widgets(submit)) == 1, submit.outputs  # the job's bar is in the cell that started it
    live, _ = nb.run("display(job)")  # a live view of the running job, here
    assert len(widgets(live)) == 1 or "finished" in text(live), live.outputs
    later, _ = nb.run("print('RESULT', job.result())" + BAR_FINAL_LINE)
    out = text(later, "stdout")
    assert "RESULT [0, 1, 4, 9, 16, 25, 36, 49]" in out
    assert widgets(later) == [], later.outputs  # and not in a later cell
    final = html.unescape(re.search(r"FINAL (.*)", out).group(1)).replace("\u2007", " ")
    assert re.search(r"8/8 \[\d\d:\d\d<00:00, +[\d.]+(task/s|s/task)\] success", final), final


def _interrupt(nb: Notebook, check_spark_jobs: bool) -> None:
    marker = str(nb.tmp / "running")
    interrupted: dict[str, float] = {}

    def interrupt_when_running(client) -> None:
        if wait_for_file(marker):
            interrupted["at"] = time.time()
            nb.interrupt()

    cell, elapsed = nb.run(
        f"rx_exec(stubborn, rx_elem_arg(range(4)), marker={marker!r}, task_chunk_size=1)",
        raises=True, during=interrupt_when_running,
    )
    assert "at" in interrupted, "the long job never started"
    err = error(cell)
    shown = ANSI.sub("", "\n".join(err.traceback))
    assert err.ename == "KeyboardInterrupt", shown
    assert "threading.py" not in shown and "queue.py" not in shown and "rxspark/contexts" not in shown, shown
    lines = ["import glob", f"deadline = {interrupted['at']} + 10"]
    if check_spark_jobs:
        lines += [
            "tracker = rxspark.rx_get_pyspark_connection().statusTracker()",
            "while tracker.getActiveJobsIds() and time.time() < deadline:",
            "    time.sleep(0.1)",
            "print('ACTIVE SPARK JOBS', list(tracker.getActiveJobsIds()))",
        ]
    lines += [
        "def beating():  # tasks that still run write their beat file every 0.1 s",
        f"    return [p for p in glob.glob({marker!r} + '.*') if time.time() - os.path.getmtime(p) < 1.0]",
        "while beating() and time.time() < deadline:",
        "    time.sleep(0.1)",
        f"print('BEATING', beating(), 'stopped after', round(time.time() - {interrupted['at']}, 1), 's')",
        "print('AFTER', rx_exec(square, rx_elem_arg(range(4)), task_chunk_size=1))",
    ]
    after, _ = nb.run("\n".join(lines))
    out = text(after, "stdout")
    assert "BEATING []" in out, out
    if check_spark_jobs:
        assert "ACTIVE SPARK JOBS []" in out, out
    assert "AFTER [0, 1, 4, 9]" in out, out
    assert "Failed to cancel job group" not in text(after), text(after)


def test_classic_session_started_in_the_notebook(tmp_path, monkeypatch):
    times: dict[str, float] = {}
    with Notebook(tmp_path, monkeypatch) as nb:
        nb.run(SETUP.format(share=str(tmp_path / "jobs")))
        start, times["session start (cell)"] = nb.run("""
            from pyspark.sql import SparkSession
            spark = SparkSession.builder.master("local[2]").config("spark.driver.host", "127.0.0.1").getOrCreate()
            print("CONSOLE PROGRESS", spark.sparkContext._jsc.sc().progressBar().isDefined())
        """)
        console_progress = "CONSOLE PROGRESS True" in text(start, "stdout")
        attach, times["attach (cell)"] = nb.run("""
            cc = RxSpark()
            rxspark.rx_set_compute_context(cc)
            print("REPR", repr(cc), cc.parallelism())
            cc
        """)
        assert "REPR RxSpark(master='local[2]', attached, wait=True) 2" in text(attach, "stdout")
        html = next(out.data["text/html"] for out in attach.outputs if out.output_type == "execute_result")
        assert "Spark UI" in html and "http://" in html and "local[2]" in html
        # Spark's own console bar is on in a session the user started: a one-line hint says how to turn it off.
        hint = "spark.ui.showConsoleProgress', 'false'"
        assert (hint in text(attach, "stderr")) == console_progress, (console_progress, attach.outputs)

        _blocking_and_failing(nb, times)
        _non_blocking(nb)
        _interrupt(nb, check_spark_jobs=True)

        jobs, _ = nb.run("rxspark.rx_get_jobs()")
        assert any(out.output_type == "execute_result" for out in jobs.outputs)

        example, _ = nb.run(f"""
            import cloudpickle, birthday
            cloudpickle.register_pickle_by_value(birthday)  # examples/README.md: an imported module travels by value
            result = birthday.main(["--ntests", "200", "--max-size", "24", "--output", {str(tmp_path / "b.png")!r}])
        """)
        assert os.path.exists(tmp_path / "b.png"), example.outputs
        plot, _ = nb.run("""
            import matplotlib.pyplot as plt
            plt.plot(result["party_size"], result["estimate"])
            plt.show()
        """)
        assert any("image/png" in out.get("data", {}) for out in plot.outputs), plot.outputs
    print("notebook timings (s):", {k: round(v, 2) for k, v in times.items()})


def test_connect_session_in_the_notebook(tmp_path, monkeypatch, connect_url):
    times: dict[str, float] = {}
    with Notebook(tmp_path, monkeypatch) as nb:
        nb.run(SETUP.format(share=str(tmp_path / "jobs")))
        nb.run(f"""
            from pyspark.sql.connect.session import SparkSession
            spark = SparkSession.builder.remote({connect_url!r}).create()
            spark.range(1).collect()
        """)
        attach, _ = nb.run("""
            cc = RxSpark()
            rxspark.rx_set_compute_context(cc)
            print("REPR", repr(cc))
        """)
        assert f"REPR RxSpark(master='{connect_url}', attached, wait=True)" in text(attach, "stdout"), attach.outputs
        _blocking_and_failing(nb, times)
        _non_blocking(nb)
        _interrupt(nb, check_spark_jobs=False)
    print("notebook timings on Connect (s):", {k: round(v, 2) for k, v in times.items()})
