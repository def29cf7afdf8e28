"""The tested dependency set (constraints.txt): write it, or compare this environment with it.

    python scripts/drift.py constraints.txt          # list what differs from the lock
    python scripts/drift.py --write constraints.txt  # record this environment as the lock

The lock is ``pip freeze --all`` of an environment with every extra installed,
so ``pip install -c constraints.txt ...`` reproduces the versions the suite
passed with; ``make test-latest`` prints this comparison before it runs the
suite against the newest releases.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
from importlib import metadata


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: str) -> dict[str, str]:
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[_normalize(name)] = version.strip()
    return pins


def installed() -> dict[str, str]:
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalize(name) != "rxspark":
            found[_normalize(name)] = dist.version
    return found


def write(path: str) -> None:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    header = (
        "# The versions rxspark's suite passed with (make test installs with -c constraints.txt).\n"
        f"# Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
        "regenerate with `make lock` after `make test-latest` passes.\n"
    )
    lines = sorted(line for line in frozen.splitlines() if line and not line.startswith("#"))
    with open(path, "w") as f:
        f.write(header + "\n".join(lines) + "\n")
    print(f"{path}: {len(lines)} pins")


def compare(path: str) -> int:
    lock, now = read_lock(path), installed()
    changed = sorted((n, lock[n], now[n]) for n in lock.keys() & now.keys() if lock[n] != now[n])
    added = sorted(set(now) - set(lock) - {"pip", "setuptools", "wheel"})
    for name, old, new in changed:
        print(f"drift: {name} {old} -> {new}")
    for name in added:
        print(f"drift: {name} {now[name]} (not in {path})")
    if not changed and not added:
        print(f"no drift: every installed distribution is at its {path} version")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", help="the constraints file")
    parser.add_argument("--write", action="store_true", help="record this environment as the lock")
    args = parser.parse_args()
    if args.write:
        write(args.lock)
        return 0
    return compare(args.lock)


if __name__ == "__main__":
    sys.exit(main())
