"""The package's layout rules (docs/developers/architecture.md, "Where things live"): every import
points down, modules stay small, and the developers' Layout page (docs/developers/layout.md) names
every module.

The import graph is built from the source with ``ast``, counting imports made
inside functions too (they are how a cycle hides); only ``if TYPE_CHECKING:``
blocks, which never run, are left out.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "rxspark"
MAX_LINES = 600


def _module_name(path: pathlib.Path) -> str:
    parts = ["rxspark", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The rxspark modules an import statement loads (a package means its ``__init__``)."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "rxspark" or alias.name.startswith("rxspark."):
                targets.add(alias.name)
        return targets & set(MODULES)
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not (source == "rxspark" or source.startswith("rxspark.")):
        return targets
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        targets.add(submodule if submodule in MODULES else source)
    return targets & set(MODULES)


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _resolve(name, path.name == "__init__.py", node)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_sees_imports_made_inside_functions():
    # contexts/spark/ imports pyspark lazily: the graph must still see its rxspark imports.
    graph = import_graph()
    assert "rxspark.worker" in set().union(*graph.values())
    assert graph["rxspark"], "the package's __init__ imports its modules"


def test_no_import_cycle_among_rxsparks_modules():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles (every import must point down; see docs/developers/architecture.md):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_size_limit(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}): split it by role"


LAYOUT_PAGE = PACKAGE.parent / "docs" / "developers" / "layout.md"


def _layout_entries() -> dict[str, str]:
    """The Layout page's list as {entry head (e.g. ``rxspark/jobs/``): its text, continuation lines included}."""
    text = LAYOUT_PAGE.read_text()
    block = text.split("```", 2)[1]
    entries: dict[str, str] = {}
    head = None
    for line in block.splitlines():
        if line[:1] not in ("", " "):
            head = line.split()[0]
            entries[head] = line
        elif head is not None:
            entries[head] += " " + line
    return entries


def test_the_layout_page_names_every_module():
    entries = _layout_entries()
    missing = []
    for path in MODULES.values():
        relative = path.relative_to(PACKAGE)
        if relative.name == "__init__.py" and len(relative.parts) > 1:
            head = f"rxspark/{relative.parent.as_posix()}/"
            if head not in entries:
                missing.append(head)
            continue
        if len(relative.parts) == 1:  # a top-level module: named in some top-level entry
            found = any(h.count("/") == 1 and relative.name in body for h, body in entries.items())
        else:
            body = entries.get(f"rxspark/{relative.parent.as_posix()}/", "")
            found = relative.name in body
        if not found:
            missing.append(str(relative))
    assert not missing, f"{LAYOUT_PAGE.relative_to(PACKAGE.parent)} does not name: {missing}"
