"""Detached jobs: ``rx_exec(..., detach=True)`` runs the job in a driver process of its own.

The caller freezes the job in its store entry (:mod:`rxspark.jobs.durable`),
starts the driver (:mod:`rxspark.jobs.driver`) in a session and process group
of its own, its output going to ``driver.log`` in the job's entry, writes the
job's record naming that driver as its owner, and returns at once with a
:class:`~rxspark.jobs.StoredJob`: status, progress, output, results and cancel
work from any process, through the store.

Where the driver runs:

* on this machine (``python -m rxspark.jobs.driver``), for every context but a
  Spark context whose settings ask for ``spark.submit.deployMode=cluster``;
* in the cluster, for those (YARN, Kubernetes): ``spark-submit --deploy-mode
  cluster`` of the same driver module (:func:`cluster_command`), with the
  store on a URI both sides reach (``s3://``, ``hdfs://``) and the store key
  passed to the driver's environment.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

from .. import _signing
from ..errors import RxArgumentError
from . import store as _store
from .durable import FORMAT, LOG, Checkpoints, FrozenJob, _version
from .record import JobRecord

if TYPE_CHECKING:
    from ..contexts.base import ComputeContext
    from ..spec import JobSpec
    from .stored import StoredJob

__all__ = ["DRIVER_MODULE", "cluster_command", "driver_command", "submit_detached"]

DRIVER_MODULE = "rxspark.jobs.driver"


def driver_command(share_dir: str, job_id: str, python: str | None = None) -> list[str]:
    """The command that runs a stored job's driver on this machine."""
    return [python or sys.executable, "-m", DRIVER_MODULE, "--wait-go", "--share-dir", share_dir, job_id]


def driver_script() -> str:
    """The driver module's file, the primary resource ``spark-submit`` is given."""
    from . import driver

    return os.path.abspath(driver.__file__)


def cluster_command(
    share_dir: str,
    job_id: str,
    *,
    master: str = "yarn",
    python_env: str | None = None,
    spark_conf: dict[str, Any] | None = None,
    spark_submit: str = "spark-submit",
    key_env: str = _signing.KEY_ENV,
    deploy_mode: str = "cluster",
) -> list[str]:
    """The ``spark-submit --deploy-mode cluster`` command that runs a stored job's driver in the cluster.

    The store must be a URI the cluster's driver reaches (``s3://``, ``hdfs://``).
    The store key is passed by name only (``$RXSPARK_STORE_KEY`` is expanded by
    the shell that runs the command), never written into it.

    Args:
        share_dir: The job store (a URI).
        job_id: The stored job.
        master: ``yarn``, or ``k8s://https://host:port``.
        python_env: A packed environment (``rxspark pack``) for the driver and executors.
        spark_conf: More Spark properties (the context's settings).
        spark_submit: The spark-submit executable.
        key_env: The environment variable that holds the store key on the submitting machine.
        deploy_mode: ``cluster`` (the driver runs in the cluster); ``client`` runs the same
            driver on the submitting machine (and accepts a local store).

    Raises:
        RxArgumentError: A store that is a local path (a driver in the cluster cannot read it).
    """
    if deploy_mode == "cluster" and (not _store._storage.is_uri(share_dir) or share_dir.startswith("file:")):
        raise RxArgumentError(
            f"share_dir: a driver in the cluster (deploy mode cluster) cannot reach the local job store {share_dir!r}; "
            "use a store both sides reach, like share_dir='s3://bucket/rxspark' or 'hdfs:///user/me/rxspark'"
        )
    env_conf = "spark.yarn.appMasterEnv" if master.startswith("yarn") else "spark.kubernetes.driverEnv"
    command = [spark_submit, "--master", master, "--deploy-mode", deploy_mode, "--name", f"rxspark-{job_id}"]
    conf = dict(spark_conf or {})
    conf.pop("spark.submit.deployMode", None)
    if deploy_mode == "cluster":
        conf[f"{env_conf}.{_signing.KEY_ENV}"] = f"${key_env}"
    if python_env is not None:
        command += ["--archives", f"{python_env}#environment"]
        conf["spark.pyspark.python"] = "./environment/bin/python"
        if deploy_mode == "cluster":
            conf[f"{env_conf}.PYSPARK_PYTHON"] = "./environment/bin/python"
    for name in sorted(conf):
        command += ["--conf", f"{name}={conf[name]}"]
    command += [driver_script(), "--share-dir", share_dir, job_id]
    return command


def shell_line(command: list[str]) -> str:
    """``command`` as one shell line, leaving ``$VARIABLE`` references for the shell to expand."""
    parts = []
    for part in command:
        quoted = shlex.quote(part)
        if "$" in part:
            quoted = '"' + part.replace('"', '\\"') + '"'
        parts.append(quoted)
    return " ".join(parts)


def _cluster_mode(context: ComputeContext) -> bool:
    config = getattr(context, "extra_spark_config", None) or {}
    return str(config.get("spark.submit.deployMode", "")).lower() == "cluster"


def submit_detached(spec: JobSpec, context: ComputeContext) -> StoredJob:
    """Freeze ``spec``, start its driver process, and return the job (API.md section 12).

    Raises:
        RxArgumentError: A context that cannot be rebuilt in another process (``RxForeachDoPar``).
        RxJobError: The store cannot be written.
    """
    from .job import new_job_id
    from .stored import StoredJob

    if not context.can_detach:
        raise RxArgumentError(
            f"detach=True: {type(context).__name__} runs on your own executor, which lives in this process; "
            "use RxLocalParallel, RxLocalSeq or RxSpark"
        )
    store, record = freeze_detached(spec, context, new_job_id())
    job_id = record.job_id
    if _cluster_mode(context):
        kwargs = context.recipe()["kwargs"]
        command = cluster_command(
            store.root, job_id, master=kwargs.get("master") or "yarn", spark_conf=kwargs.get("extra_spark_config"),
            python_env=kwargs.get("python_env"),
        )
        # The key reaches the cluster's driver through its environment (spark.yarn.appMasterEnv.*).
        command = [part.replace(f"${_signing.KEY_ENV}", _signing.key().decode()) for part in command]
    else:
        command = driver_command(store.root, job_id)
    process = _start(command, store, job_id)
    record.owner = {"pid": process.pid, "host": _store.owner()["host"], "start_time": _store._process_start_time(process.pid)}
    store.write_record(job_id, record.to_json())
    assert process.stdin is not None
    try:  # the driver waits for its record before it starts: it now names the driver as owner
        process.stdin.write(b"go\n")
        process.stdin.close()
    except OSError:
        pass  # it died already: its record will say so (undetermined), its log why
    return StoredJob(store, record)


def freeze_detached(spec: JobSpec, context: ComputeContext, job_id: str) -> tuple[_store.JobStore, JobRecord]:
    """Store a job for a driver elsewhere to run: its entry, the frozen job and a queued record (not written yet)."""
    store = _store.store_for(context.share_dir)
    store.create(job_id)
    frozen = FrozenJob(FORMAT, _version(), job_id, spec, context.recipe(), progress=False, created_at=time.time())
    Checkpoints(store, job_id).freeze(frozen)
    record = JobRecord(
        job_id=job_id,
        function=spec.function_name,
        n_tasks=spec.n_known or 0,
        rng_seed=spec.rng.seed if spec.rng is not None else None,
        rng_kind=spec.rng.kind if spec.rng is not None else None,
        rng_scope=spec.rng.scope if spec.rng is not None else None,
        context=_store.redact({**context.recipe()["kwargs"], "context": type(context).__name__, "detached": True}),
        wait=False,
        auto_cleanup=context.auto_cleanup if spec.auto_cleanup is None else spec.auto_cleanup,
        console_output=context.console_output if spec.console_output is None else spec.console_output,
        continue_on_failure=spec.continue_on_failure,
        submitted_at=time.time(),
        updated_at=time.time(),
        status="queued",
        progress=(0, spec.n_known or 0),
        durable=True,
    )
    return store, record


def _start(command: list[str], store: _store.JobStore, job_id: str) -> subprocess.Popen[bytes]:
    """Start the driver in a session of its own, its output in the job's ``driver.log``."""
    if store.local:
        log_path = os.path.join(store.job_dir(job_id), LOG)
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed here right after
        os.chmod(log_path, 0o600)
    else:  # the driver uploads it to the store when it ends
        log = tempfile.NamedTemporaryFile(prefix=f"rxspark-{job_id}-", suffix=".log", delete=False)  # noqa: SIM115
    env = dict(os.environ)
    env["RXSPARK_DRIVER_LOG"] = log.name
    # The driver unpickles the job: it must import what this process imported it from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)
    try:
        return subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group: the caller's end is not its end
            close_fds=True,
            env=env,
            cwd=os.getcwd(),
        )
    finally:
        log.close()
