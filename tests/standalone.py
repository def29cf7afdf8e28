"""A Spark standalone cluster on 127.0.0.1 for tests: one master, N workers.

Started from the pip-installed PySpark's ``spark-class``; every process is
stopped (and its logs kept under ``workdir``) on exit. Authentication is on:
the shared secret is handed to the daemons through ``_SPARK_AUTH_SECRET``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import urllib.request

import pyspark
from helpers import free_port


class StandaloneCluster:
    kind = "standalone cluster"
    start_timeout = 90.0  # seconds until every worker is ALIVE

    def __init__(self, workdir: str, workers: int = 2, cores: int = 1, memory: str = "1g", authenticate: bool = True):
        self.workdir = workdir
        self.n_workers = workers
        self.cores = cores
        self.memory = memory
        self.spark_home = os.path.dirname(pyspark.__file__)
        self.port = free_port()
        self.web_port = free_port()
        self.secret = secrets.token_hex(16) if authenticate else None
        self.processes: list[subprocess.Popen] = []
        self.properties = os.path.join(workdir, "daemon.properties")

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, SPARK_HOME=self.spark_home, SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
        if self.secret:
            env["_SPARK_AUTH_SECRET"] = self.secret
        return env

    def _start(self, name: str, *args: str) -> None:
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        cmd = [os.path.join(self.spark_home, "bin", "spark-class"), *args, "--properties-file", self.properties]
        self.processes.append(subprocess.Popen(cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT))

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/json/", timeout=2) as r:
                import json

                return sum(1 for w in json.load(r)["workers"] if w["state"] == "ALIVE")
        except OSError:
            return 0

    def __enter__(self) -> StandaloneCluster:
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.properties, "w") as f:
            f.write("spark.authenticate true\n" if self.secret else "")
            f.write("spark.worker.cleanup.enabled false\n")
        self._start(
            "master", "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.web_port),
        )
        for i in range(self.n_workers):
            self._start_worker(i)
        deadline = time.monotonic() + self.start_timeout
        while self.alive_workers() < self.n_workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.__exit__()
                raise RuntimeError(f"{self.kind} did not start; logs in {self.workdir}")
            time.sleep(0.3)
        return self

    def _start_worker(self, i: int) -> None:
        self._start(
            f"worker{i}", "org.apache.spark.deploy.worker.Worker", self.master,
            "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
            "--webui-port", str(free_port()), "--work-dir", os.path.join(self.workdir, f"work{i}"),
        )

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.processes.clear()
