"""Packing a virtual environment into an archive the executors of a cluster run (``python_env``, ``rxspark pack``).

The archive holds the environment's ``site-packages`` and a ``bin/python``
link to the *base* interpreter the venv was made from (a venv never holds the
interpreter itself): unpacked on a node as ``./environment``,
``./environment/bin/python`` runs that base interpreter with the archive's
packages. So the nodes need a CPython of the same minor version at the path
the link names: by default the driver's own base (``sys.base_prefix``), or
``python_prefix`` (e.g. ``/usr`` for the distribution's ``/usr/bin/python3.11``).

Packages installed in editable mode (``pip install -e``, rxspark's own
checkout included) are copied into the archive from their source directories,
and their import hooks (``__editable__*`` files, ``.pth`` lines naming
directories outside the environment) are left out. PySpark is left out too:
Spark puts its own ``pyspark.zip`` on the executors' ``PYTHONPATH``, the one
that matches the cluster's Spark.

venv-pack was evaluated for this and does not fit: it keeps setuptools'
editable finder (the archive would import rxspark from the driver's checkout
path), refuses ``.pth`` editable installs, and its ``--python-prefix`` rewrite
turns a ``python3`` link into ``python3.113``. Archives made by venv-pack or
conda-pack are accepted as ``python_env`` all the same.

``python_env="pack"`` calls :func:`packed_environment`, which packs once per
environment: the archive's name carries a fingerprint of the interpreter,
the installed distributions and the files of the editable ones, so it is
reused until one of them changes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import sys
import tarfile
import tempfile
from collections.abc import Iterator

from .errors import RxArgumentError

# Left out of every archive: Spark supplies pyspark (and py4j) to its executors, activation scripts
# name the driver's paths, caches are rebuilt on the nodes.
EXCLUDED_DISTRIBUTIONS = frozenset({"pyspark", "pyspark-client", "pyspark-connect", "py4j"})
_SKIPPED_DIRS = frozenset({"__pycache__"})
_INTERPRETER = re.compile(r"python(\d+(\.\d+)?)?")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def _environment_prefix(prefix: str | None) -> str:
    prefix = os.path.abspath(prefix or sys.prefix)
    if not os.path.exists(os.path.join(prefix, "pyvenv.cfg")):
        where = "the current Python" if prefix == os.path.abspath(sys.prefix) else prefix
        raise RxArgumentError(
            f"rxspark pack: {where} is not a virtual environment (no pyvenv.cfg in {prefix}); pack a venv "
            "(python -m venv ENV; ENV/bin/pip install rxspark and your packages), or make a conda archive "
            "with conda-pack and pass its path as python_env"
        )
    return prefix


def _site_packages(prefix: str) -> str:
    lib = os.path.join(prefix, "lib")
    versions = [d for d in os.listdir(lib) if d.startswith("python")] if os.path.isdir(lib) else []
    if len(versions) != 1:
        raise RxArgumentError(f"rxspark pack: expected one lib/pythonX.Y in {prefix}, found {versions}")
    return os.path.join(lib, versions[0], "site-packages")


def _pyvenv_cfg(prefix: str) -> dict[str, str]:
    values = {}
    with open(os.path.join(prefix, "pyvenv.cfg")) as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    return values


def _python_version(prefix: str) -> str:
    """``X.Y`` of the environment's interpreter (from its lib/pythonX.Y directory)."""
    return os.path.basename(os.path.dirname(_site_packages(prefix)))[len("python"):]


# ---------------------------------------------------------------- what goes in


def _distributions(site_packages: str) -> list[importlib.metadata.Distribution]:
    return sorted(
        importlib.metadata.distributions(path=[site_packages]),
        key=lambda d: (d.metadata["Name"] or "").lower(),
    )


def _editable_names(dist: importlib.metadata.Distribution) -> list[str]:
    """The top-level modules of an editable distribution, else [] (not editable)."""
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except (OSError, ValueError):
        return []
    if not direct.get("dir_info", {}).get("editable"):
        return []
    names = (dist.read_text("top_level.txt") or "").split()
    if not names:
        raise RxArgumentError(
            f"rxspark pack: cannot tell the modules of the editable install {dist.metadata['Name']!r} "
            "(no top_level.txt); install it without -e before packing"
        )
    return names


_LOCATE = (
    "import importlib.util, json, sys\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    spec = importlib.util.find_spec(name)\n"
    "    locations = list(spec.submodule_search_locations or []) if spec else []\n"
    "    out[name] = locations[0] if locations else (spec.origin if spec else None)\n"
    "print(json.dumps(out))\n"
)


def _editable_roots(prefix: str, site_packages: str) -> list[str]:
    """Source files or package directories of the environment's editable installs (found by its own Python)."""
    import subprocess

    owners = {name: dist.metadata["Name"] for dist in _distributions(site_packages) for name in _editable_names(dist)}
    if not owners:
        return []
    python = os.path.join(prefix, "bin", "python")
    found = subprocess.run([python, "-I", "-c", _LOCATE, *owners], capture_output=True, text=True, cwd="/")
    if found.returncode != 0:
        raise RxArgumentError(f"rxspark pack: {python} cannot run to locate the editable installs: {found.stderr.strip()[-300:]}")
    roots = json.loads(found.stdout)
    missing = [f"{owners[name]!r} (module {name!r})" for name, root in roots.items() if not root]
    if missing:
        raise RxArgumentError(
            f"rxspark pack: the editable install {', '.join(missing)} cannot be imported by {python}; reinstall it "
            "(pip install -e PATH) or install it without -e"
        )
    return sorted(roots.values())


def _walk(root: str) -> Iterator[str]:
    if os.path.isfile(root):
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                yield os.path.join(dirpath, name)


def _excluded_dist_files(site_packages: str) -> set[str]:
    """Files of the distributions Spark supplies itself (pyspark, py4j), relative to site-packages."""
    excluded: set[str] = set()
    for dist in _distributions(site_packages):
        if (dist.metadata["Name"] or "").lower() in EXCLUDED_DISTRIBUTIONS:
            excluded.update(os.path.normpath(str(f)) for f in dist.files or ())
    return excluded


def _is_editable_hook(path: str, site_packages: str) -> bool:
    """An editable install's import hook: setuptools' ``__editable__`` files, or a .pth naming outside paths."""
    name = os.path.basename(path)
    if name.startswith("__editable__"):
        return True
    if not name.endswith(".pth"):
        return False
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(site_packages)))
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")):
                location = os.path.normpath(os.path.join(site_packages, line))
                if not location.startswith(prefix + os.sep):
                    return True
    return False


def _members(prefix: str) -> Iterator[tuple[str, str]]:
    """(source path, name in the archive) of every file packed from ``prefix``, editable sources included."""
    site_packages = _site_packages(prefix)
    excluded = {os.path.join(site_packages, p) for p in _excluded_dist_files(site_packages)}
    for dirpath, dirnames, filenames in os.walk(prefix):
        rel_dir = os.path.relpath(dirpath, prefix)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in _SKIPPED_DIRS and not (dirpath == site_packages and d in ("pyspark", "py4j"))
        )
        for name in sorted(filenames):
            source = os.path.join(dirpath, name)
            if rel_dir == "bin" and (name.startswith("activate") or _INTERPRETER.fullmatch(name)):
                continue  # the interpreter links are written anew by pack(); activation scripts name driver paths
            if rel_dir == "." and name == "pyvenv.cfg":
                continue
            if name.endswith((".pyc", ".pyo")) or source in excluded:
                continue
            if dirpath == site_packages and _is_editable_hook(source, site_packages):
                continue
            yield source, os.path.relpath(source, prefix)
    rel_site = os.path.relpath(site_packages, prefix)
    for root in _editable_roots(prefix, site_packages):
        base = os.path.dirname(root)
        for source in _walk(root):
            yield source, os.path.join(rel_site, os.path.relpath(source, base))


# ---------------------------------------------------------------- fingerprint, pack


def fingerprint(prefix: str | None = None, python_prefix: str | None = None) -> str:
    """A hash of what an archive of the environment would hold: interpreter, distributions, editable sources.

    Args:
        prefix: The virtual environment (default: the current one).
        python_prefix: The base interpreter's prefix on the nodes (default: the environment's own base).
    """
    prefix = _environment_prefix(prefix)
    site_packages = _site_packages(prefix)
    digest = hashlib.sha256()
    cfg = _pyvenv_cfg(prefix)
    for part in (prefix, cfg.get("home", ""), cfg.get("version", ""), python_prefix or "", sys.platform):
        digest.update(part.encode() + b"\0")
    for dist in _distributions(site_packages):
        digest.update(f"{dist.metadata['Name']}=={dist.version}\0".encode())
    for root in _editable_roots(prefix, site_packages):
        for path in _walk(root):
            st = os.stat(path)
            digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:20]


def _base_python(prefix: str, python_prefix: str | None) -> str:
    """The interpreter ``bin/python`` links to in the archive."""
    version = _python_version(prefix)
    if python_prefix is None:
        home = _pyvenv_cfg(prefix).get("home")
        if not home:
            raise RxArgumentError(f"rxspark pack: {prefix}/pyvenv.cfg names no home (base interpreter directory)")
        return os.path.join(home, f"python{version}")
    if not os.path.isabs(python_prefix):
        raise RxArgumentError(f"rxspark pack: python_prefix must be an absolute path like '/usr', got {python_prefix!r}")
    return os.path.join(python_prefix, "bin", f"python{version}")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
    tar.addfile(info)


def default_output(prefix: str | None = None, python_prefix: str | None = None) -> str:
    """Where :func:`packed_environment` keeps the archive of an environment (per fingerprint)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "rxspark", "envs", f"env-{fingerprint(prefix, python_prefix)}.tar.gz")


def pack(
    output: str | os.PathLike[str] | None = None,
    *,
    prefix: str | None = None,
    python_prefix: str | None = None,
    compress_level: int = 1,
) -> str:
    """Pack a virtual environment (default: the current one) into a ``.tar.gz`` for ``python_env``.

    Args:
        output: The archive's path (``.tar.gz``); default: the cache path of :func:`default_output`.
        prefix: The virtual environment to pack (default: the current one, ``sys.prefix``).
        python_prefix: The prefix of the base CPython on the nodes (``/usr`` for ``/usr/bin/python3.X``);
            default: the environment's own base interpreter, at the same path on every node.
        compress_level: gzip level, 1 (fast, the default) to 9 (small).

    Returns:
        The archive's absolute path.

    Raises:
        RxArgumentError: ``prefix`` is not a virtual environment, an editable install cannot be
            resolved, or a bad ``output`` / ``python_prefix``.
    """
    prefix = _environment_prefix(prefix)
    target = os.path.abspath(os.fspath(output)) if output is not None else default_output(prefix, python_prefix)
    if not target.endswith((".tar.gz", ".tgz")):
        raise RxArgumentError(f"rxspark pack: output must end with .tar.gz or .tgz, got {target!r}")
    base = _base_python(prefix, python_prefix)
    version = _python_version(prefix)
    cfg = _pyvenv_cfg(prefix)
    cfg_text = f"home = {os.path.dirname(base)}\ninclude-system-site-packages = false\nversion = {cfg.get('version', version)}\n"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".pack-", suffix=".tar.gz")
    os.close(fd)
    try:
        with tarfile.open(partial, "w:gz", compresslevel=compress_level) as tar:
            _add_bytes(tar, "pyvenv.cfg", cfg_text.encode())
            _add_link(tar, f"bin/python{version}", base)
            _add_link(tar, "bin/python3", f"python{version}")
            _add_link(tar, "bin/python", f"python{version}")
            seen: set[str] = set()
            for source, name in _members(prefix):
                if name not in seen:
                    seen.add(name)
                    tar.add(source, name, recursive=False)
        os.replace(partial, target)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return target


def packed_environment(python_prefix: str | None = None, prefix: str | None = None) -> str:
    """The archive of an environment (default: the current one) for ``python_env="pack"``.

    Packed once and kept in the cache (:func:`default_output`), reused while the
    environment's fingerprint stays the same.
    """
    target = default_output(prefix, python_prefix)
    if os.path.exists(target):
        return target
    return pack(target, prefix=prefix, python_prefix=python_prefix)


def check_python_env(value: object) -> str | None:
    """``RxSpark(python_env=...)`` validated: None, ``"pack"``, or a path / URI of a packed archive.

    Raises:
        RxArgumentError: Anything else, saying what is accepted.
    """
    accepted = (
        "None (the nodes' own Python), 'pack' (pack the current environment), or the path or URI of a packed "
        "environment archive (.tar.gz, .tgz, .tar or .zip; made by `rxspark pack`, venv-pack or conda-pack)"
    )
    if value is None or value == "pack":
        return value  # type: ignore[return-value]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise RxArgumentError(f"RxSpark: python_env must be {accepted}; got {value!r}")
    location = value.split("#", 1)[0]
    if not location.lower().endswith(ARCHIVE_SUFFIXES):
        raise RxArgumentError(f"RxSpark: python_env must be {accepted}; got {value!r}")
    if "://" not in location and not os.path.isfile(os.path.expanduser(location)):
        raise RxArgumentError(f"RxSpark: python_env names no file: {location!r} does not exist; accepted: {accepted}")
    return location if "://" in location else os.path.abspath(os.path.expanduser(location))
