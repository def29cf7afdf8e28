"""Sphinx configuration of rxspark's documentation site (``make docs``).

Intersphinx works offline: an inventory is read from a local file when one is
there (Debian's ``python3-doc`` ships CPython's, which ``make docs`` installs when
run as root; ``RXSPARK_DOCS_INVENTORIES=DIR`` adds ``DIR/NAME.inv`` files, e.g.
fetched on a machine online), and from the project's site only when
``RXSPARK_DOCS_ONLINE=1`` says the network may be used. A project with no
inventory is left out of ``intersphinx_mapping``, and references into it render
as code without a link (they are then the only references nitpicky mode lets go
unresolved). ``RXSPARK_DOCS_INTERSPHINX=off`` builds as a machine without any
inventory would.
"""

from __future__ import annotations

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))

import rxspark  # noqa: E402

project = "rxspark"
author = "rxspark developers"
copyright = "rxspark developers"  # noqa: A001
release = version = rxspark.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "myst_parser",
    "sphinxarg.ext",
    "rxspark_api",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_screenshots", "Thumbs.db", ".DS_Store"]
highlight_language = "none"  # transcripts and commands stay plain; ```python blocks are highlighted
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
myst_ref_domains = ["std", "py"]

# autodoc + napoleon: the public API's Google-style docstrings and type hints.
autodoc_member_order = "bysource"
autodoc_typehints = "description"  # signatures stay readable; each parameter shows its type
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # a class's "Attributes:" are fields, not a second entry beside its properties
python_use_unqualified_type_names = True
nitpicky = True

html_theme = "furo"
html_title = f"rxspark {release}"
html_theme_options = {"navigation_with_keys": True}

# ---- intersphinx, offline first ------------------------------------------------------------
_ONLINE = os.environ.get("RXSPARK_DOCS_ONLINE") == "1"
_PY = f"{sys.version_info.major}.{sys.version_info.minor}"
_SITES = {
    # name: (the site the links point to, local inventories to try, in order)
    "python": (f"https://docs.python.org/{_PY}/", [f"/usr/share/doc/python{_PY}/html/objects.inv"]),
    # Debian's python3-doc is one version (3.11 on bookworm): its inventory, linked to docs.python.org/3.
    "python3": ("https://docs.python.org/3/", ["/usr/share/doc/python3/html/objects.inv"]),
    "numpy": ("https://numpy.org/doc/stable/", []),
    "pyspark": ("https://spark.apache.org/docs/latest/api/python/", []),
    "joblib": ("https://joblib.readthedocs.io/en/stable/", []),
}
_LOCAL_DIR = os.environ.get("RXSPARK_DOCS_INVENTORIES")  # a folder of NAME.inv files, e.g. from a machine online
intersphinx_mapping = {}
for _name, (_site, _files) in _SITES.items():
    if os.environ.get("RXSPARK_DOCS_INTERSPHINX") == "off":  # build as a machine without any inventory would
        break
    if _LOCAL_DIR:
        _files = [os.path.join(_LOCAL_DIR, f"{_name}.inv"), *_files]
    _found = [f for f in _files if os.path.isfile(f)]
    if _name == "python3" and "python" in intersphinx_mapping:
        continue  # the inventory of this very Python was found
    if _found:
        intersphinx_mapping[_name] = (_site, _found[0])
    elif _ONLINE and _name != "python3":
        intersphinx_mapping[_name] = (_site, None)

# Top-level names each project answers for. Without its inventory, references into a project
# stay plain code. NumPy's, PySpark's and joblib's inventories (online, or given as files) link
# what they list; names they do not list (a class under its defining module's path, as
# pyspark.sql.session.SparkSession) stay plain too, where a warning could not be fixed here.
# fmt: off
_MODULES = {
    "python": [
        "builtins", "concurrent", "collections", "typing", "os", "pathlib", "random", "threading",
        "argparse", "types", "io", "multiprocessing", "abc", "datetime", "enum", "warnings",
        "None", "int", "float", "str", "bytes", "bool", "list", "dict", "tuple", "set", "object",
        "type", "callable", "Callable", "Any", "Iterable", "Iterator", "Mapping", "Sequence",
        "Exception", "BaseException", "ValueError", "TypeError", "RuntimeError", "UserWarning",
        "Future", "Executor", "TimeoutError", "KeyError",
    ],
    "numpy": ["numpy", "np"],
    "pyspark": ["pyspark", "SparkSession", "SparkContext"],
    "joblib": ["joblib"],
}
# fmt: on
_HAVE_PYTHON = "python" in intersphinx_mapping or "python3" in intersphinx_mapping
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(mods)})(\..*)?") for name, mods in _MODULES.items() if name != "python" or not _HAVE_PYTHON
]
# The reference documents the public names; the internal modules are listed in developers/layout.
nitpick_ignore_regex.append(("py:mod", r"rxspark\..*"))


# ---- the benchmark reports, included from benchmarks/ ------------------------------------------
_RUN_LINK = re.compile(r"\[([^\]]*)\]\((runs/[^)\s]+)\)")
_PAGES = {"RESULTS.md": "/benchmarks/results", "PROFILES.md": "/benchmarks/profiles"}


def _benchmark_links(app, relative_path, parent_docname, content):
    """Links of benchmarks/*.md, written for the repository, made right on the site.

    A run's raw table (``runs/...``) is not a page of the site: it is named by its
    path in the repository; RESULTS.md and PROFILES.md are pages of the site.
    """
    if relative_path.parts[:1] != ("benchmarks",) and "benchmarks" not in relative_path.parts:
        return
    text = _RUN_LINK.sub(lambda m: f"`benchmarks/{m.group(2)}`", content[0])
    for name, doc in _PAGES.items():
        text = text.replace(f"]({name})", f"]({doc}.md)")
    content[0] = text


# ---- references the docstrings make, resolved the way a reader means them ----------------------
def _internal_names():
    """Every name defined in rxspark's modules and on their classes (what a docstring may cite)."""
    import importlib
    import inspect
    import pkgutil

    names = set()
    for info in pkgutil.walk_packages(rxspark.__path__, "rxspark."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        names.add(info.name)
        names.add(info.name.rsplit(".", 1)[-1])
        for attr, value in vars(module).items():
            names.add(attr)
            if inspect.isclass(value) and value.__module__.startswith("rxspark"):
                names.update(vars(value))
    return names


_INTERNAL = None


def _resolve(app, env, node, contnode):
    """``rxspark.<module>.Name`` is ``rxspark.Name`` when the package exports ``Name``;
    ``concurrent.futures._base.X`` is ``concurrent.futures.X``; a name internal to rxspark
    (``JobSpec``, ``deliver`` ...: the developers' pages describe them) stays code, unlinked.
    """
    global _INTERNAL
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    domain = env.get_domain("py")
    name = target.rsplit(".", 1)[-1]
    if target.startswith("rxspark.") and name in rxspark.__all__ and target != f"rxspark.{name}":
        return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], f"rxspark.{name}", node, contnode)
    if target.startswith("concurrent.futures._base."):
        node["reftarget"] = "concurrent.futures." + name
        return None  # intersphinx (a later handler) resolves the public name
    if _INTERNAL is None:
        _INTERNAL = _internal_names()
    if target.split(".")[0] in ("rxspark", *_INTERNAL) and name not in rxspark.__all__:
        return contnode
    return None


# RxExecutor.submit carries concurrent.futures.Executor.submit's own docstring, plain text
# where reST would read the stars of fn(*args, **kwargs) as emphasis.
_CALL = re.compile(r"(?<!`)\bfn\(\*args, \*\*kwargs\)")


def _stdlib_docstring(app, what, name, obj, options, lines):
    lines[:] = [_CALL.sub("``fn(*args, **kwargs)``", line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _stdlib_docstring)
    app.connect("include-read", _benchmark_links)
    app.connect("missing-reference", _resolve, priority=400)
