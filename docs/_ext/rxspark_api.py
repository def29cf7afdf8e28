"""The API reference, generated from the code: every name a module exports, none forgotten.

``.. rxspark-api:: MODULE`` documents the names in ``MODULE.__all__`` with autodoc
(``autofunction``, ``autoclass``, ``autoexception``, ``autodata``), so a name added to
``__all__`` appears in the reference without an edit here. For ``rxspark`` itself the
names are split over the reference pages by what they are (``:group:``), and
:func:`group_of` puts every name in exactly one group: what no rule claims lands in
``run`` (``rx_exec`` and its helpers), never nowhere.
"""

from __future__ import annotations

import importlib
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

GROUPS = ("run", "contexts", "jobs", "shared", "executor", "errors")

# Names shown first in their group, in this order; the others follow alphabetically.
_FIRST = [
    "rx_exec",
    "rx_elem_arg",
    "rng",
    "rx_options",
    "rx_set_compute_context",
    "rx_get_compute_context",
    "ComputeContext",
    "RxLocalSeq",
    "RxLocalParallel",
    "RxForeachDoPar",
    "RxSpark",
    "rx_spark_connect",
    "rx_spark_disconnect",
    "RxJob",
    "StoredJob",
    "rx_share",
    "RxShared",
    "RxError",
    "RxArgumentError",
    "RxArgumentTypeError",
    "RxTaskError",
]


def exported(module_name: str) -> list[str]:
    """The names a module exports (its ``__all__``)."""
    return list(importlib.import_module(module_name).__all__)


def group_of(name: str, obj: Any) -> str:
    """The reference page (one of :data:`GROUPS`) a public name of ``rxspark`` belongs on."""
    from rxspark import ComputeContext

    if isinstance(obj, type) and issubclass(obj, BaseException):
        return "errors"
    lowered = name.lower()
    if (
        (isinstance(obj, type) and issubclass(obj, ComputeContext))
        or "compute_context" in lowered
        or "spark" in lowered
    ):
        return "contexts"
    if "job" in lowered:
        return "jobs"
    if "share" in lowered:
        return "shared"
    if "executor" in lowered:
        return "executor"
    return "run"


def _order(name: str) -> tuple[int, str]:
    return (_FIRST.index(name) if name in _FIRST else len(_FIRST), name.lower())


# The backend contract (what a context implements for the job that runs on it): in
# developers/architecture, not in the users' reference.
_BACKEND_CONTRACT = "run_chunks, prepare, cancel"


def _directive(qualified: str, obj: Any) -> list[str]:
    from rxspark import ComputeContext

    if isinstance(obj, type) and issubclass(obj, BaseException):
        return [f".. autoexception:: {qualified}", "   :members:", "   :show-inheritance:"]
    if isinstance(obj, type) and issubclass(obj, ComputeContext):
        return [
            f".. autoclass:: {qualified}",
            "   :members:",
            "   :show-inheritance:",
            f"   :exclude-members: {_BACKEND_CONTRACT}",
        ]
    if isinstance(obj, type):
        inherits = public_bases(obj.__bases__) != [object]
        return [f".. autoclass:: {qualified}", "   :members:", *(["   :show-inheritance:"] if inherits else [])]
    if callable(obj):
        return [f".. autofunction:: {qualified}"]
    return [f".. autodata:: {qualified}"]


class RxSparkApi(SphinxDirective):
    """``.. rxspark-api:: MODULE`` with an optional ``:group:`` (for ``rxspark`` only)."""

    required_arguments = 1
    option_spec = {"group": lambda value: directives.choice(value, GROUPS)}

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        group = self.options.get("group")
        lines: list[str] = []
        for name in sorted(exported(module_name), key=_order):
            obj = getattr(module, name)
            if group is not None and group_of(name, obj) != group:
                continue
            lines += [*_directive(f"{module_name}.{name}", obj), ""]
        if not lines:
            raise self.error(f"rxspark-api: no name of {module_name}.__all__ is in group {group!r}")
        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source=self.get_source_info()[0]), container)
        return container.children


def public_bases(bases: tuple[type, ...] | list[type]) -> list[type]:
    """A class's bases as a reader should see them: public ancestors, not the internal classes in between."""

    def public(base: type) -> list[type]:
        module = getattr(base, "__module__", "")
        if not module.startswith("rxspark") or base.__name__ in importlib.import_module("rxspark").__all__:
            return [base]
        return [b for parent in base.__bases__ for b in public(parent)]

    return list(dict.fromkeys(b for base in bases for b in public(base)))


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    bases[:] = public_bases(bases)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("rxspark-api", RxSparkApi)
    app.connect("autodoc-process-bases", _public_bases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
