"""How a failure on a worker is reported: a task's error and traceback, a chunk none of whose tasks could run,
and what cannot be unpickled there (with the fix: the missing module, ``register_pickle_by_value``, ``python_env``)."""

from __future__ import annotations

import re
import traceback
import types
from typing import Any

import cloudpickle

from .._sources import SourceTable, format_exception
from ..errors import RxTaskError
from ..plan import Chunk
from .payload import PayloadLoadError
from .result import ChunkResult, safe_str


def format_traceback(exc: BaseException, tb: types.TracebackType | None, sources: SourceTable | None) -> str:
    """The standard traceback text, with by-value frames pointed back at the driver's files (see _sources)."""
    try:
        return format_exception(exc, tb, sources)
    except Exception:  # noqa: BLE001 - never lose the error over its formatting
        return "".join(traceback.format_exception(type(exc), exc, tb))


def task_error(
    task: int, chunk: int, exc: BaseException, node: str, skip_frames: int = 1, sources: SourceTable | None = None
) -> tuple[RxTaskError, bytes | None]:
    tb = exc.__traceback__
    for _ in range(skip_frames):  # drop rxspark's own frames
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = format_traceback(exc, tb, sources)
    error = RxTaskError(task, chunk, type(exc).__qualname__, safe_str(exc), text, node)
    try:
        exc.__traceback__ = None
        cause = cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 - the record alone still says everything
        cause = None
    return error, cause


def failed_chunk(result: ChunkResult, chunk: Chunk, exc_type: str, message: str, serialize_results: bool) -> ChunkResult:
    """The chunk's report when none of its tasks could run."""
    values: list[Any] = [None] * (chunk.stop - chunk.start)
    for task in range(chunk.start, chunk.stop):
        result.errors[task] = RxTaskError(task, chunk.index, exc_type, message, "", result.node)
    result.values_blob = cloudpickle.dumps(values) if serialize_results else None
    result.values = None if serialize_results else values
    return result


def missing_module(exc: BaseException | None) -> str | None:
    """The module whose import failed while unpickling (``exc`` or what caused it), or None."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


def unloadable(what: str, node: str, exc: BaseException) -> tuple[str, str | None]:
    """(message, missing module) for ``what`` that cannot be unpickled on ``node``: what is wrong, and the fix.

    Functions and classes of an imported module travel by reference (only
    the module's name and the object's name); those of ``__main__`` or a
    notebook cell, or of a module registered with
    ``cloudpickle.register_pickle_by_value``, travel by value.
    """
    root = exc.__cause__ if isinstance(exc, PayloadLoadError) and exc.__cause__ is not None else exc
    message = f"{what} cannot be loaded on node {node}: {type(root).__name__}: {safe_str(root)}"
    module = missing_module(root)
    if module is not None:
        top = module.split(".")[0]
        return (
            f"{message}. They refer to the module {module!r} by name (it was imported on the driver, not defined "
            f"in __main__ or a notebook cell), and the workers cannot import it. Either send it with the job: "
            f"run `import cloudpickle, {top}; cloudpickle.register_pickle_by_value({top})` on the driver before "
            f"rx_exec; or install it on the workers (pip install it there, or ship it with spark-submit --py-files, "
            f"spark.submit.pyFiles or SparkContext.addPyFile)",
            module,
        )
    return (
        f"{message} (does it need a module that is missing on the workers, or a different version of it? Modules of "
        f"your own can travel with the job: cloudpickle.register_pickle_by_value(module) on the driver)",
        None,
    )


_NO_MODULE = re.compile(r"(?:ModuleNotFoundError|ImportError): No module named '([\w.]+)'")
_NO_PROGRAM = re.compile(r'Cannot run program "([^"]+)"')
_FIX = (
    "Fix: ship this environment with the job, RxSpark(python_env='pack') (or python_env=PATH of an archive made by "
    "`rxspark pack`; spark-submit.sh --python-env PATH), or install it on every node"
)


def worker_environment(text: str) -> str | None:
    """What Spark's failure ``text`` says is wrong with the executors' Python, with the fix, or None.

    Two failures come before any rxspark code runs on a node: its Python cannot
    import a module the task needs (rxspark itself, cloudpickle, numpy ... when
    the nodes lack them), or the Python named for the executors does not exist
    there (the driver's own interpreter path, on a cluster that does not share
    the driver's filesystem).
    """
    missing = _NO_MODULE.search(text)
    if missing:
        module = missing.group(1)
        return (
            f"the executors' Python cannot import the module {module!r} (No module named {module!r}): the cluster's "
            f"nodes do not have {module.split('.')[0]} installed in the Python the executors run. {_FIX}."
        )
    program = _NO_PROGRAM.search(text)
    if program:
        return (
            f"the executors cannot start the Python {program.group(1)!r}: it does not exist on the cluster's nodes "
            f"(it is the driver's interpreter path unless PYSPARK_PYTHON names the nodes' own). {_FIX}, and set "
            "PYSPARK_PYTHON to a Python every node has."
        )
    return None
