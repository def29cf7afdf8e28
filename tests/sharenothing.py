"""A Spark standalone cluster whose workers share nothing with the driver but the network (issue 25).

Each worker runs in a mount namespace of its own (``unshare -m``, needs
root) where private tmpfs mounts hide ``/tmp``, ``/root`` (HOME, pyenv's
interpreters) and ``/work`` (this checkout, its ``.venv``, every worktree),
and this checkout, its venv and HOME wherever else they are.
What a worker still sees is what a cluster node has: the OS, Java, Debian's
bare ``/usr/bin/python3`` (no numpy, cloudpickle, pyarrow, rxspark) and a
Spark installation, here the pip-installed PySpark bind-mounted read-only at
``/mnt/spark`` before ``/work`` is hidden. Its work directory (where executors
unpack ``spark.archives`` and write their logs) is in its private ``/tmp``.

:class:`NodeEnvironment` makes the small virtual environment the tests ship
with ``python_env``: rxspark (editable, so packing an editable install is
exercised), its runtime needs and pyspark (left out of the archive), at the
versions of ``constraints.txt``, made from Debian's ``python3.X`` (the nodes'
Python), so it also runs a driver that packs itself (``python_env="pack"``).
It is kept under ``~/.cache/rxspark-tests`` per constraints hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from helpers import free_port
from standalone import StandaloneCluster

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
# What the executors' Python needs for the conformance suite (tasks pass pandas objects), and pyspark, so the
# environment also serves as a driver's (python_env="pack"); packing leaves pyspark out.
NODE_PACKAGES = ("numpy", "cloudpickle", "pyarrow", "loky", "pandas", "pyspark")
HIDDEN = ("/tmp", "/root", "/work")


def hidden_dirs() -> list[str]:
    """What the nodes must not see: HIDDEN, and wherever this checkout, its venv and HOME are (a CI clone may be elsewhere).

    Nested directories are left out (their parent hides them; a tmpfs cannot
    be mounted on a path its parent's tmpfs has already hidden).
    """
    wanted = [*HIDDEN, REPO, sys.prefix, os.path.expanduser("~")]
    dirs: list[str] = []
    for path in sorted({os.path.realpath(p) for p in wanted if os.path.isdir(p)}, key=len):
        if path in ("/", "/usr", "/etc", "/mnt") or any(path == d or path.startswith(d + "/") for d in dirs):
            continue
        dirs.append(path)
    return dirs


def unavailable() -> str | None:
    """Why the share-nothing cluster cannot run here (None: it can)."""
    if sys.platform != "linux":
        return "the share-nothing cluster needs Linux mount namespaces"
    if shutil.which("unshare") is None:
        return "the share-nothing cluster needs unshare (util-linux)"
    if os.geteuid() != 0:
        return "the share-nothing cluster needs root (unshare -m and tmpfs mounts)"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -m does not work here: {probe.stderr.strip()[:200]}"
    if not os.path.exists(NODE_PYTHON):
        return f"the share-nothing cluster's nodes run {NODE_PYTHON} (Debian's python3 of the driver's minor version), which is missing"
    probe = subprocess.run([NODE_PYTHON, "-c", "import numpy"], capture_output=True)
    if probe.returncode == 0:
        return f"{NODE_PYTHON} has numpy: the nodes would not be bare"
    probe = subprocess.run([NODE_PYTHON, "-c", "import ensurepip, venv"], capture_output=True)
    if probe.returncode != 0:
        return f"{NODE_PYTHON} cannot make virtual environments (Debian: apt-get install python3-venv)"
    return None


class NodeEnvironment:
    """A small venv of rxspark's runtime needs, cached per constraints.txt, and its archive for python_env."""

    def __init__(self) -> None:
        with open(os.path.join(REPO, "constraints.txt"), "rb") as f:
            key = hashlib.sha256(f.read() + sys.version.encode() + ",".join(NODE_PACKAGES).encode()).hexdigest()[:12]
        cache = os.path.join(os.path.expanduser("~"), ".cache", "rxspark-tests")
        self.prefix = os.path.join(cache, f"nodeenv-{key}")
        self.python = os.path.join(self.prefix, "bin", "python")

    def ensure(self) -> NodeEnvironment:
        stamp = os.path.join(self.prefix, ".complete")
        if os.path.exists(stamp):
            return self
        shutil.rmtree(self.prefix, ignore_errors=True)
        subprocess.run([NODE_PYTHON, "-m", "venv", self.prefix], check=True)  # the nodes' Python is its base
        pip = [self.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        constraints = os.path.join(REPO, "constraints.txt")
        subprocess.run([*pip, "-c", constraints, *NODE_PACKAGES], check=True)
        subprocess.run([*pip, "--no-deps", "-e", REPO], check=True)
        open(stamp, "w").close()
        return self

    def pack(self, output: str) -> str:
        from rxspark.pack import pack

        return pack(output, prefix=self.prefix, python_prefix="/usr")


_WORKER = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o size=64m tmpfs /mnt
mkdir -p /mnt/spark
mount --bind "$NODE_SPARK_SOURCE" /mnt/spark
mount -o remount,bind,ro /mnt/spark
printf '%s\n' "$NODE_HIDDEN" | while IFS= read -r d; do mount -t tmpfs -o size=6g,mode=1777 tmpfs "$d"; done
mkdir -p /tmp/home /tmp/work
printf '%s' "$NODE_PROPERTIES" > /mnt/worker.properties
unset NODE_SPARK_SOURCE NODE_HIDDEN NODE_PROPERTIES
export HOME=/tmp/home SPARK_HOME=/mnt/spark TMPDIR=/tmp
exec /mnt/spark/bin/spark-class "$@" --properties-file /mnt/worker.properties
"""


class ShareNothingCluster(StandaloneCluster):
    """A standalone master (an ordinary process) and workers in private mount namespaces."""

    kind = "share-nothing cluster"
    start_timeout = 120.0

    def __init__(self, workdir: str, workers: int = 2, cores: int = 1, memory: str = "1g") -> None:
        super().__init__(workdir, workers=workers, cores=cores, memory=memory, authenticate=True)

    def auth_config(self) -> dict[str, str]:
        """What an application started in this process needs to join (its JVM may predate ``_SPARK_AUTH_SECRET``)."""
        return {"spark.authenticate": "true", "spark.authenticate.secret": self.secret or ""}

    def env(self) -> dict[str, str]:
        env = super().env()
        # The nodes' PATH: nothing of the driver's venv or pyenv.
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYENV_VERSION"):
            env.pop(name, None)
        return env

    def _start_worker(self, i: int) -> None:
        with open(self.properties) as f:  # the driver's files are hidden from the node: its properties go inline
            properties = f.read()
        env = dict(self.env(), NODE_SPARK_SOURCE=self.spark_home, NODE_HIDDEN="\n".join(hidden_dirs()), NODE_PROPERTIES=properties)
        log = open(os.path.join(self.workdir, f"worker{i}.log"), "wb")
        cmd = [
            "unshare", "-m", "--propagation", "private", "sh", "-c", _WORKER, "node",
            "org.apache.spark.deploy.worker.Worker", self.master,
            "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
            "--webui-port", str(free_port()), "--work-dir", "/tmp/work",
        ]
        self.processes.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))


def make_workdir() -> str:
    return tempfile.mkdtemp(prefix="rxspark-sharenothing-")
