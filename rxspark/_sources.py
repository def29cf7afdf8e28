"""Source table: remote tracebacks that point at the user's own file and line.

cloudpickle ships functions defined in ``__main__``, a notebook cell, a local
scope, or a module registered with ``cloudpickle.register_pickle_by_value``
*by value*. Since cloudpickle 3.1.3 every such code object arrives named
``<dynamic-code>``, and even before that its file may not exist on the worker
(a notebook cell, a script on the driver machine only), so a failed task's
traceback lost the file, or the failing source line, or both.

The driver has the code and its source. :func:`build_table` collects, once per
job on the driver, the code objects reachable from the job's function, a map
from a code identity that survives pickling to the real file name, and the
source lines of those functions (bounded). The table travels inside the
payload. On the worker, :func:`format_exception` formats a failure exactly
like :func:`traceback.format_exception`, except that frames whose file cannot
be read there are pointed back at the real file and get their source lines
from the table; it runs only when a task fails.
"""

from __future__ import annotations

import builtins
import functools
import linecache
import sys
import threading
import traceback
import types
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cloudpickle import cloudpickle as _cloudpickle

# Bounds on what one job's table holds: it travels in every job's payload.
MAX_CODES = 2000
MAX_LINES = 20_000
MAX_LINE_CHARS = 2000

CodeKey = tuple[str, str, int, int]


def code_key(code: types.CodeType) -> CodeKey:
    """A code object's identity that survives pickling by value.

    cloudpickle rebuilds code objects from all their fields but the file name,
    so name, qualified name, first line and bytecode identify one on both sides.

    Args:
        code: A code object.

    Returns:
        ``(co_name, co_qualname, co_firstlineno, crc32 of co_code)``.
    """
    qualname = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
    return (code.co_name, qualname, code.co_firstlineno, zlib.crc32(code.co_code))


@dataclass
class SourceTable:
    """Where a job's by-value code came from, and the source lines of that code.

    Attributes:
        files: Code identity (see :func:`code_key`) -> real file name on the
            driver. Identities that two files share are left out.
        lines: File name -> {line number: source line}, only the lines of the
            collected functions.
    """

    files: dict[CodeKey, str] = field(default_factory=dict)
    lines: dict[str, dict[int, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.files)


# ------------------------------------------------------------------ driver side


def _registered_by_value(module_name: str) -> bool:
    registry = _cloudpickle.list_registry_pickle_by_value()
    parts = module_name.split(".")
    return any(".".join(parts[:i]) in registry for i in range(1, len(parts) + 1))


def _travels_by_value(obj: Any) -> bool:
    """Whether cloudpickle ships a function or class by value (mirrors its own rule)."""
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str) or module_name == "__main__":
        return True
    if _registered_by_value(module_name):
        return True
    module = sys.modules.get(module_name)
    if module is None:
        return True
    try:
        found = functools.reduce(getattr, obj.__qualname__.split("."), module)
    except Exception:  # noqa: BLE001 - not reachable by name: by value
        return True
    return found is not obj


def _nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested_codes(const)


def _reachable_codes(roots: Iterable[Any]) -> list[tuple[types.CodeType, dict[str, Any] | None]]:
    """The code objects that travel by value with ``roots``, each with its function's globals."""
    found: list[tuple[types.CodeType, dict[str, Any] | None]] = []
    seen: set[int] = set()
    todo: list[Any] = list(roots)
    while todo and len(found) < MAX_CODES:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            if not _travels_by_value(obj):
                continue
            codes = list(_nested_codes(obj.__code__))
            found.extend((code, obj.__globals__) for code in codes)
            names = {name for code in codes for name in code.co_names}
            for name in names:  # the globals cloudpickle ships along (a superset of them)
                value = obj.__globals__.get(name)
                if isinstance(value, types.ModuleType):
                    if _registered_by_value(value.__name__):
                        todo.extend(getattr(value, attr, None) for attr in names)
                elif value is not None:
                    todo.append(value)
            for cell in obj.__closure__ or ():
                try:
                    todo.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    pass
            todo.extend(obj.__defaults__ or ())
            todo.extend((obj.__kwdefaults__ or {}).values())
            todo.append(getattr(obj, "__wrapped__", None))
        elif isinstance(obj, types.MethodType):
            todo.extend((obj.__func__, type(obj.__self__)))
        elif isinstance(obj, functools.partial):
            todo.append(obj.func)
            todo.extend(obj.args)
            todo.extend(obj.keywords.values())
        elif isinstance(obj, (staticmethod, classmethod)):
            todo.append(obj.__func__)
        elif isinstance(obj, property):
            todo.extend((obj.fget, obj.fset, obj.fdel))
        elif isinstance(obj, type):
            if _travels_by_value(obj):
                todo.extend(vars(obj).values())
        elif obj is not None and not isinstance(obj, (str, bytes, int, float, complex, bool)):
            cls = type(obj)  # an instance: its class may travel by value (a callable object, say)
            if cls.__module__ != "builtins":
                todo.append(cls)
    return found


def _line_span(code: types.CodeType) -> tuple[int, int]:
    last = max((line for _, _, line in code.co_lines() if line is not None), default=code.co_firstlineno)
    return code.co_firstlineno, max(last, code.co_firstlineno)


def build_table(roots: Iterable[Any]) -> SourceTable | None:
    """Collect, on the driver, where the by-value code reachable from ``roots`` came from.

    Follows functions, their nested code, the globals and closure cells they
    use, methods, partials and classes that cloudpickle ships by value. Reads
    the source lines through :mod:`linecache` (files, notebook cells). Bounded
    by :data:`MAX_CODES` and :data:`MAX_LINES`; never raises.

    Args:
        roots: The job's function, shared arguments and exec objects.

    Returns:
        The table, or ``None`` when nothing travels by value.
    """
    try:
        return _build_table(roots)
    except Exception:  # noqa: BLE001 - a table is a nicety; never fail a job for it
        return None


def _build_table(roots: Iterable[Any]) -> SourceTable | None:
    files: dict[CodeKey, str] = {}
    ambiguous: set[CodeKey] = set()
    spans: dict[str, list[tuple[int, int]]] = {}
    module_globals: dict[str, dict[str, Any] | None] = {}
    for code, globals_ in _reachable_codes(roots):
        filename = code.co_filename
        if not filename or filename == "<dynamic-code>":
            continue
        key = code_key(code)
        if files.setdefault(key, filename) != filename:
            ambiguous.add(key)
        spans.setdefault(filename, []).append(_line_span(code))
        module_globals.setdefault(filename, globals_)
    for key in ambiguous:
        del files[key]
    if not files:
        return None
    table = SourceTable(files=files)
    budget = MAX_LINES
    for filename, file_spans in spans.items():
        linecache.checkcache(filename)  # a file edited since it was cached
        source = linecache.getlines(filename, module_globals[filename])
        if not source:
            continue
        wanted = sorted({n for first, last in file_spans for n in range(first, last + 1) if n <= len(source)})
        wanted = wanted[:budget]
        budget -= len(wanted)
        table.lines[filename] = {n: _clip(source[n - 1]) for n in wanted}
        if budget <= 0:
            break
    return table


def _clip(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line if line.endswith("\n") else line + "\n"
    return line[:MAX_LINE_CHARS] + "\n"


# ------------------------------------------------------------------ worker side

_lend_lock = threading.Lock()
_ExceptionGroup = getattr(builtins, "BaseExceptionGroup", ())  # Python 3.11+


def _tracebacks(exc: BaseException, tb: types.TracebackType | None) -> Iterator[types.TracebackType | None]:
    """The tracebacks of ``exc`` and of every exception chained to it or grouped in it."""
    seen: set[int] = set()
    todo = [(exc, tb)]
    while todo:
        e, t = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield t
        linked = [e.__cause__, e.__context__]
        if isinstance(e, _ExceptionGroup):
            linked.extend(e.exceptions)
        todo.extend((x, x.__traceback__) for x in linked if isinstance(x, BaseException))


def _summaries(te: traceback.TracebackException) -> Iterator[traceback.FrameSummary]:
    seen: set[int] = set()
    todo = [te]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield from node.stack
        todo.extend((node.__cause__, node.__context__))
        todo.extend(getattr(node, "exceptions", None) or ())


def _readable(filename: str, lineno: int | None) -> bool:
    return bool(lineno) and bool(linecache.getline(filename, lineno))


def _origin(candidates: Iterable[types.CodeType], lineno: int | None, table: SourceTable) -> str | None:
    """The driver's file of the frame running one of ``candidates`` at ``lineno``, if the table knows exactly one."""
    if lineno is None:
        return None
    found = set()
    for code in candidates:
        filename = table.files.get(code_key(code))
        first, last = _line_span(code)
        if filename is not None and first <= lineno <= last:
            found.add(filename)
    return found.pop() if len(found) == 1 else None


def format_exception(exc: BaseException, tb: types.TracebackType | None, table: SourceTable | None) -> str:
    """Format ``exc`` like :func:`traceback.format_exception`, with by-value frames traced back to their source.

    A frame whose file cannot be read in this process (``<dynamic-code>``, or
    a file that exists only on the driver) is matched by its code object to
    the job's table: it gets the driver's file name and, when that file is not
    here either, the driver's source lines (lent to :mod:`linecache` only
    while formatting). Every other frame, and the layout, are Python's own.

    Args:
        exc: The exception.
        tb: Its traceback (possibly with leading frames skipped).
        table: The job's source table, if any.

    Returns:
        The formatted traceback, chained and grouped exceptions included.
    """
    te = traceback.TracebackException(type(exc), exc, tb, compact=True, lookup_lines=False)
    if not table:
        return "".join(te.format())
    codes: dict[tuple[str, str], list[types.CodeType]] = {}
    for t in _tracebacks(exc, tb):
        while t is not None:
            code = t.tb_frame.f_code
            codes.setdefault((code.co_filename, code.co_name), []).append(code)
            t = t.tb_next
    # One lock for resolving, lending and formatting: no other formatting in this
    # process sees lines lent to it, or misses lines it relies on.
    with _lend_lock:
        lend: set[str] = set()
        for frame in _summaries(te):
            if frame.filename in lend or _readable(frame.filename, frame.lineno):
                continue
            origin = _origin(codes.get((frame.filename, frame.name), ()), frame.lineno, table)
            if origin is None:
                continue
            frame.filename = origin
            if not _readable(origin, frame.lineno) and origin in table.lines:
                lend.add(origin)
        lent = {}
        for filename in lend:
            if filename in linecache.cache:
                continue
            source = table.lines[filename]
            lines = [source.get(n, "\n") for n in range(1, max(source) + 1)]
            # mtime None: linecache.checkcache() keeps the entry (as for sources from a loader).
            lent[filename] = linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
        try:
            return "".join(te.format())
        finally:
            for filename, entry in lent.items():
                if linecache.cache.get(filename) is entry:
                    del linecache.cache[filename]
