"""The one Java probe: which ``java`` Spark would start, and its major version.

Spark runs ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set, else the
``java`` on ``PATH``. ``RxSpark`` asks before starting a JVM (so a missing or
old Java is a clear error within seconds) and ``rxspark doctor`` reports it;
each words its own message from the :class:`JavaProbe` this module returns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

# Spark 4 needs Java 17 or newer.
MIN_JAVA = 17


@dataclass(frozen=True)
class JavaProbe:
    """What ``java -version`` said, or why it could not be asked.

    Attributes:
        java: The executable that was (or would have been) run; None when there is none.
        where: How it was found, for messages: ``"JAVA_HOME=/path"`` or the path on ``PATH``.
        from_java_home: Whether ``JAVA_HOME`` chose it.
        major: The major version (8 for ``1.8.0_292``, 17 for ``17.0.15``); None when unknown.
        problem: Why ``major`` is None, in words (empty when it is known).
    """

    java: str | None
    where: str
    from_java_home: bool
    major: int | None
    problem: str = ""


def java_major(text: str) -> int | None:
    """The major version in ``java -version`` output (``"1.8.0_292"`` -> 8, ``"17.0.15"`` -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?[^"]*"', text)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def probe(java: str | None = None, timeout: float = 60.0) -> JavaProbe:
    """Run ``java -version`` (``java``, else the one Spark would use) and read its major version.

    Args:
        java: The executable to ask; None finds it as Spark does.
        timeout: Seconds ``java -version`` may take.
    """
    home = os.environ.get("JAVA_HOME") if java is None else None
    if java is not None:
        where = java
    elif home:
        java, where = os.path.join(home, "bin", "java"), f"JAVA_HOME={home}"
    else:
        java = shutil.which("java")
        if java is None:
            return JavaProbe(None, "PATH", False, None, "no `java` on PATH and JAVA_HOME is not set")
        where = java
    if not os.access(java, os.X_OK):
        problem = f"JAVA_HOME={home} has no bin/java" if home else f"{java} is not an executable"
        return JavaProbe(None, where, bool(home), None, problem)
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return JavaProbe(java, where, bool(home), None, f"`{java} -version` failed: {exc}")
    text = proc.stderr + proc.stdout
    major = java_major(text)
    if major is None:
        first = text.strip().splitlines()[0] if text.strip() else f"exit code {proc.returncode}"
        return JavaProbe(java, where, bool(home), None, f"cannot read the version from `{java} -version`: {first}")
    return JavaProbe(java, where, bool(home), major)


def java_version(java: str | None = None, timeout: float = 20.0) -> int | None:
    """Major version of the Java that Spark would use (or of ``java``), or None if there is none."""
    return probe(java, timeout).major
