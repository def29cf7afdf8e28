"""Remote tracebacks name the user's real file and line and show the failing source line (API.md section 10).

Functions defined in ``__main__``, in a notebook cell or in a module registered
with ``cloudpickle.register_pickle_by_value`` travel by value: cloudpickle
3.1.3 names their code ``<dynamic-code>``, and a file that exists only on the
driver cannot be read on a worker. The driver's source table fixes both.
"""

from __future__ import annotations

import importlib
import linecache
import math
import os
import subprocess
import sys
import textwrap
import traceback
import types
import uuid
import warnings

import cloudpickle
import pytest

from rxspark import RxTaskError, rx_elem_arg, rx_exec
from rxspark._sources import build_table, format_exception

SCRIPT = '''\
import sys
import warnings

import rxspark


def check(x):
    if x == 2:
        raise ValueError(f"bad value {x}")  # THE FAILING SOURCE LINE
    return x


def task(x):
    return check(x) * 10  # THE CALLING LINE


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    make = {
        "seq": lambda: rxspark.RxLocalSeq(),
        "localpar": lambda: rxspark.RxLocalParallel(2),
        "spark": lambda: rxspark.RxSpark(master="local[2]", progress=False),
    }
    for kind in sys.argv[1:]:
        with make[kind]() as cc:
            out = rxspark.rx_exec(task, rxspark.rx_elem_arg(range(4)), compute_context=cc)
        assert isinstance(out[2], rxspark.RxTaskError), out
        print(f"=== {kind}")
        print(out[2].remote_traceback)
'''


def _run_script(tmp_path, *kinds: str) -> dict[str, str]:
    script = tmp_path / "driver_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    done = subprocess.run(
        [sys.executable, str(script), *kinds], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sections = done.stdout.split("=== ")[1:]
    found = dict(section.split("\n", 1) for section in sections)
    assert sorted(found) == sorted(kinds), done.stdout
    return found


def _assert_points_at_script(text: str, script: str) -> None:
    assert "<dynamic-code>" not in text
    assert f'File "{script}", line 14, in task\n    return check(x) * 10  # THE CALLING LINE\n' in text, text
    assert f'File "{script}", line 9, in check\n    raise ValueError(f"bad value {{x}}")  # THE FAILING SOURCE LINE\n' in text, text
    assert text.rstrip().endswith("ValueError: bad value 2")


def test_function_of_a_main_script_local_contexts(tmp_path):
    found = _run_script(tmp_path, "seq", "localpar")
    for text in found.values():
        _assert_points_at_script(text, str(tmp_path / "driver_script.py"))
    assert found["localpar"] == found["seq"]  # the standard format, as if it had failed in the driver


@pytest.mark.spark
def test_function_of_a_main_script_spark(tmp_path):
    found = _run_script(tmp_path, "seq", "spark")
    _assert_points_at_script(found["spark"], str(tmp_path / "driver_script.py"))
    assert found["spark"] == found["seq"]


# ------------------------------------------------------------------ a module registered by value

MODULE = '''\
def parse(text):
    return int(text)  # THE PARSE LINE


def convert(text):
    try:
        return parse(text)
    except ValueError as exc:
        raise RuntimeError(f"cannot convert {text!r}") from exc  # THE CONVERT LINE
'''


@pytest.fixture
def by_value_module(tmp_path, monkeypatch):
    name = f"tb_byvalue_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    cloudpickle.register_pickle_by_value(module)
    yield module
    cloudpickle.unregister_pickle_by_value(module)
    sys.modules.pop(name, None)


def _local_traceback(function, *args) -> str:
    """What Python prints for the same failure in this process, without this helper's frame."""
    try:
        function(*args)
    except BaseException as exc:  # noqa: BLE001
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))
    raise AssertionError("did not fail")


def _failed(cc, function, values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = rx_exec(function, rx_elem_arg(values), compute_context=cc, task_chunk_size=1)
    errors = [v for v in out if isinstance(v, RxTaskError)]
    assert len(errors) == 1, out
    return errors[0]


def test_function_of_a_module_registered_by_value(cc, by_value_module):
    error = _failed(cc, by_value_module.convert, ["1", "x", "3"])
    text = error.remote_traceback
    path = by_value_module.__file__
    assert f'File "{path}", line 2, in parse\n    return int(text)  # THE PARSE LINE\n' in text, text
    assert f'File "{path}", line 9, in convert\n' in text and "# THE CONVERT LINE" in text, text
    assert "The above exception was the direct cause of the following exception" in text
    assert text == _local_traceback(by_value_module.convert, "x")


# ------------------------------------------------------------------ a notebook cell: the file exists only on the driver

CELL = '''\
def cell_task(x):
    scale = lambda v: 100 // v  # THE CELL'S LAMBDA
    return scale(x - 1)
'''


@pytest.fixture
def notebook_cell(tmp_path):
    """A function compiled from a cell as IPython does: its file exists only in the driver's linecache."""
    filename = str(tmp_path / "no-such-dir" / f"cell-{uuid.uuid4().hex[:8]}.py")
    lines = CELL.splitlines(keepends=True)
    linecache.cache[filename] = (len(CELL), None, lines, filename)
    namespace = {"__name__": "__main__"}
    exec(compile(CELL, filename, "exec"), namespace)
    yield namespace["cell_task"], filename
    linecache.cache.pop(filename, None)


def test_function_of_a_notebook_cell(cc, notebook_cell):
    function, filename = notebook_cell
    text = _failed(cc, function, [2, 1, 3]).remote_traceback
    assert f'File "{filename}", line 3, in cell_task\n    return scale(x - 1)\n' in text, text
    assert f'File "{filename}", line 2, in <lambda>\n    scale = lambda v: 100 // v  # THE CELL\'S LAMBDA\n' in text, text
    assert text == _local_traceback(function, 1)


# ------------------------------------------------------------------ the table itself


def test_no_table_for_code_that_travels_by_reference():
    assert build_table([math.sqrt, os.path.join, 3, "text", [1, 2]]) is None


def test_formatting_without_a_table_is_the_standard_format():
    try:
        {}["missing"]
    except KeyError as exc:
        assert format_exception(exc, exc.__traceback__, None) == "".join(traceback.format_exception(exc))


def test_lent_source_lines_are_returned_to_linecache(notebook_cell):
    function, filename = notebook_cell
    table = build_table([function])
    assert table and table.lines[filename][2].strip().startswith("scale = lambda")
    remote = cloudpickle.loads(cloudpickle.dumps(function))  # as on a worker
    linecache.cache.pop(filename)  # ... where the cell's file does not exist
    try:
        remote(1)
    except ZeroDivisionError as exc:
        text = format_exception(exc, exc.__traceback__.tb_next, table)
    assert f'File "{filename}", line 2, in <lambda>\n    scale = lambda v: 100 // v' in text, text
    assert filename not in linecache.cache


def test_the_table_is_bounded(monkeypatch):
    import rxspark._sources as sources

    monkeypatch.setattr(sources, "MAX_LINES", 5)
    body = "".join(f"    y{i} = x + {i}\n" for i in range(50))
    source = f"def big(x):\n{body}    return x\n"
    filename = f"/no-such-dir/big-{uuid.uuid4().hex[:8]}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    try:
        namespace = {"__name__": "__main__"}
        exec(compile(source, filename, "exec"), namespace)
        table = build_table([namespace["big"]])
    finally:
        linecache.cache.pop(filename, None)
    assert table is not None and sum(map(len, table.lines.values())) == 5


def test_a_function_with_globals_closures_and_methods_is_covered(by_value_module):
    namespace: dict = {"__name__": "__main__", "helper": by_value_module.parse}

    class Model:
        def predict(self, x):
            return x

    def outer(x):
        def inner():
            return helper(x)  # noqa: F821 - a global of the namespace

        return inner()

    function = types.FunctionType(outer.__code__, namespace, "outer", None, None)
    table = build_table([function, Model()])
    names = {key[1] for key in table.files}
    assert {"parse", "Model.predict"} <= {n.split("<locals>.")[-1] for n in names}
    assert any(n.endswith("outer.<locals>.inner") for n in names)
    assert textwrap.dedent(table.lines[by_value_module.__file__][2]).startswith("return int(text)")
