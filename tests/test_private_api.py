"""Only ``rxspark/_compat.py`` reads private attributes of pyspark and joblib.

Their private names change between releases without notice; rxspark reads the
ones it needs in one module, so a new release breaks one named function with a
documented fallback. Every module of the package is read with ``ast``; a
finding is a place, outside ``_compat.py``, that:

* imports a private module or name of pyspark or joblib: ``from joblib._x import
  y``, ``import pyspark._x``, ``from pyspark import _x``, ``import_module("pyspark._x")``;
* reads (or sets) ``X._name`` (not a dunder) where ``X`` is a pyspark or joblib
  object, spelled as an attribute or with ``getattr`` / ``hasattr`` /
  ``setattr`` and a literal name. ``X`` is such an object when it is a name
  bound by an import from pyspark, joblib or ``rxspark._compat`` (what
  ``_compat`` returns is theirs; its own private helpers are not for others),
  an attribute, item or call result of one, a Spark handle (an expression
  ending in ``.sparkContext``, ``._jsc``, ``._jvm`` or ``.sc()``), or a variable
  of the same function (or module) assigned one of those;
* reads, on any object but ``self`` / ``cls``, one of the private names of
  pyspark and joblib rxspark has read before (:data:`KNOWN`): a guard where
  the object cannot be told from the source (a function's parameter).

rxspark's own private names (``self._x``, a module's ``_helper``, ``job._recorder``)
are not pyspark's or joblib's and are not findings.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "rxspark"
COMPAT = PACKAGE / "_compat.py"
FOREIGN = ("pyspark", "joblib")
# Attribute names (and ``.sc()``) whose objects are always Spark's.
SPARK_HANDLES = {"sparkContext", "_jsc", "_jvm"}
# Private names of pyspark and joblib that rxspark has read (today only in _compat.py).
KNOWN = {
    "_jsc",
    "_jvm",
    "_gateway",
    "_active_spark_context",
    "_instantiatedSession",
    "_accumulatorRegistry",
    "_ensure_initialized",
    "_default_session",
    "_builder",
    "_parallel_backends",
    "_multiprocessing_helpers",
}
ATTRIBUTE_FUNCTIONS = {"getattr", "hasattr", "setattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_module(dotted: str) -> bool:
    """Whether ``dotted`` names a private module of pyspark or joblib (``joblib._parallel_backends``)."""
    parts = dotted.split(".")
    return parts[0] in FOREIGN and any(_private(part) for part in parts[1:])


def _is_compat(module: str | None, level: int) -> bool:
    return module is not None and (module == "rxspark._compat" or (level > 0 and module == "_compat"))


class _Checker:
    """Finds the private reads of one module's source (see the module docstring)."""

    def __init__(self, source: str, filename: str) -> None:
        self.tree = ast.parse(source, filename)
        self.filename = filename
        self.findings: list[str] = []

    def run(self) -> list[str]:
        self._scope(self.tree, set())
        return self.findings

    def _report(self, node: ast.AST, what: str) -> None:
        self.findings.append(f"{self.filename}:{node.lineno}: {what}")

    # -------------------------------------------------------- scopes

    def _own_nodes(self, scope: ast.AST) -> Iterator[ast.AST]:
        """The nodes of ``scope`` outside its nested functions and classes (those are scopes of their own)."""
        for child in ast.iter_child_nodes(scope):
            yield child
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                yield from self._own_nodes(child)

    def _scope(self, scope: ast.AST, inherited: set[str]) -> None:
        own = list(self._own_nodes(scope))
        names = set(inherited)
        for node in own:
            names |= self._imported(node)
        # Assignments, until nothing changes (``sc = session.sparkContext``; ``jsc = sc._jsc``).
        changed = True
        while changed:
            changed = False
            for node in own:
                for target in self._assigned_from_foreign(node, names):
                    if target not in names:
                        names.add(target)
                        changed = True
        for node in own:
            self._check(node, names)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                self._scope(node, names)

    def _imported(self, node: ast.AST) -> set[str]:
        """Names ``node`` binds to pyspark, joblib or rxspark._compat objects; reports private imports."""
        bound: set[str] = set()
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FOREIGN or alias.name == "rxspark._compat":
                    bound.add(alias.asname or root)
                if _private_module(alias.name):
                    self._report(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            foreign = node.level == 0 and module.split(".")[0] in FOREIGN
            if foreign and _private_module(module):
                self._report(node, f"from {module} import ...")
            for alias in node.names:
                if foreign and _private(alias.name):
                    self._report(node, f"from {module} import {alias.name}")
                if foreign or _is_compat(module, node.level) or (alias.name == "_compat" and module in ("", "rxspark")):
                    bound.add(alias.asname or alias.name)
        return bound

    def _assigned_from_foreign(self, node: ast.AST, names: set[str]) -> list[str]:
        if isinstance(node, ast.Assign) and self._foreign(node.value, names):
            targets: list[ast.expr] = []
            for target in node.targets:
                targets.extend(target.elts if isinstance(target, ast.Tuple) else [target])
            return [t.id for t in targets if isinstance(t, ast.Name)]
        if isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            if isinstance(node.target, ast.Name) and self._foreign(node.value, names):
                return [node.target.id]
        if isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            if self._foreign(node.context_expr, names):
                return [node.optional_vars.id]
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and self._foreign(node.iter, names):
            return [node.target.id]
        return []

    # -------------------------------------------------------- what is pyspark's or joblib's

    def _foreign(self, expr: ast.AST, names: set[str]) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in names
        if isinstance(expr, ast.Attribute):
            return expr.attr in SPARK_HANDLES or self._foreign(expr.value, names)
        if isinstance(expr, ast.Call):
            func = expr.func
            if isinstance(func, ast.Attribute) and func.attr == "sc" and not expr.args:
                return True  # JavaSparkContext.sc(): the Scala SparkContext
            return self._foreign(func, names)
        if isinstance(expr, ast.Subscript):
            return self._foreign(expr.value, names)
        return False

    @staticmethod
    def _own_object(expr: ast.AST) -> bool:
        return isinstance(expr, ast.Name) and expr.id in ("self", "cls")

    def _check(self, node: ast.AST, names: set[str]) -> None:
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if self._foreign(node.value, names):
                self._report(node, f"{ast.unparse(node)}")
            elif node.attr in KNOWN and not self._own_object(node.value):
                self._report(node, f"{ast.unparse(node)} (a private name of pyspark or joblib)")
        if not isinstance(node, ast.Call) or not node.args:
            return
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        literal = node.args[1] if len(node.args) > 1 else None
        if name in ATTRIBUTE_FUNCTIONS and isinstance(literal, ast.Constant) and isinstance(literal.value, str):
            attr = literal.value
            if _private(attr) and (
                self._foreign(node.args[0], names) or (attr in KNOWN and not self._own_object(node.args[0]))
            ):
                self._report(node, ast.unparse(node))
        first = node.args[0]
        if name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            if _private_module(first.value):
                self._report(node, ast.unparse(node))


def private_reads(source: str, filename: str = "<source>") -> list[str]:
    """The private pyspark / joblib reads in ``source``, as ``file:line: expression``."""
    return _Checker(source, filename).run()


# ---------------------------------------------------------------- the rule, on samples


@pytest.mark.parametrize(
    "source",
    [
        "from joblib._parallel_backends import ParallelBackendBase",
        "from joblib._multiprocessing_helpers import mp",
        "import pyspark._globals",
        "import joblib._utils as u",
        "from pyspark import _NoValue",
        "import importlib\nimportlib.import_module('joblib._parallel_backends')",
        "from pyspark import SparkContext\nSparkContext._gateway",
        "from pyspark import SparkContext\nx = SparkContext._active_spark_context",
        "def f():\n    from pyspark import SparkContext\n    SparkContext._ensure_initialized()",
        "from pyspark.sql import SparkSession\ngetattr(SparkSession, '_instantiatedSession', None)",
        "import pyspark.accumulators\npyspark.accumulators._accumulatorRegistry.clear()",
        "def f():\n    from pyspark import accumulators\n    accumulators._accumulatorRegistry.pop(1)",
        "import pyspark as ps\nps.SparkContext.getOrCreate()._jsc",
        "def f(self):\n    return self.session.sparkContext._jsc",
        "def f(self):\n    sc = self.session.sparkContext\n    return sc._conf",
        "def f(self):\n    jsc = self.session.sparkContext.getOrCreate()\n    return jsc._temp",
        "def f(spark):\n    return spark.sparkContext.defaultParallelism + spark._jvm.x",
        "def f(x):\n    return x.sc()._private",
        "def f(session):\n    return session.client._builder.endpoint",
        "def f(sc):\n    return sc._jsc is None",
        "def f(sc):\n    return getattr(sc, '_jsc', None)",
        "from rxspark import _compat\n_compat._scala_context(None)",
        "from ... import _compat\njsc = _compat.java_spark_context(None)\njsc._x",
        "from rxspark._compat import joblib_backend_bases\nbases = joblib_backend_bases()\nbases._y",
        "from pyspark.sql.connect.session import SparkSession as C\nsetattr(C, '_default_session', None)",
    ],
)
def test_the_rule_finds_each_kind_of_private_read(source):
    assert private_reads(source), source


@pytest.mark.parametrize(
    "source",
    [
        "class A:\n    def f(self):\n        return self._jsc, self._x, cls._y",
        "def _helper():\n    pass\n_helper()",
        "def f(job):\n    return getattr(job, '_recorder', None), job._chunks",
        "from pyspark import SparkContext\nSparkContext.getOrCreate().defaultParallelism",
        "from pyspark import SparkContext\nSparkContext.__name__",
        "from joblib.parallel import BACKENDS\nBACKENDS['x'] = 1",
        "from . import _active\n_active.swap(None)",
        "def f(self):\n    sc = self.session.sparkContext\n\ndef g(sc):\n    return sc._own_thing",
        "def f(executor):\n    return getattr(executor, '_max_workers', None)",
    ],
)
def test_the_rule_leaves_rxsparks_own_private_names_alone(source):
    assert private_reads(source) == [], source


def test_the_rule_finds_the_reads_that_compat_makes():
    """_compat.py is where the reads are: the rule sees them there (so it would anywhere)."""
    found = private_reads(COMPAT.read_text(), "_compat.py")
    for name in ("_active_spark_context", "_gateway", "_instantiatedSession", "_accumulatorRegistry", "_builder"):
        assert any(name in finding for finding in found), (name, found)


# ---------------------------------------------------------------- the rule, on rxspark


def test_only_compat_reads_private_pyspark_or_joblib_attributes():
    modules = sorted(p for p in PACKAGE.rglob("*.py") if p != COMPAT)
    assert len(modules) > 20 and PACKAGE / "contexts" / "spark" / "classic.py" in modules
    findings = [f for p in modules for f in private_reads(p.read_text(), str(p.relative_to(PACKAGE.parent)))]
    assert findings == [], "private pyspark/joblib reads outside rxspark/_compat.py:\n" + "\n".join(findings)
