"""rxspark: RevoScaleR's rxExec for Python, on local processes and Apache Spark.

Run any Python function many times in parallel, with per-call arguments,
chunking, exported objects, reproducible parallel random numbers, partial
failure and non-blocking jobs::

    from rxspark import rx_exec, rx_elem_arg
    rx_exec(pow, rx_elem_arg(range(10)), 2)

Importing this package does not import pyspark; only using ``RxSpark`` does.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__ as __version__
from .api import rx_exec, rx_get_compute_context, rx_set_compute_context
from .contexts.base import ComputeContext
from .contexts.dopar import RxForeachDoPar
from .contexts.local import RxLocalParallel, RxLocalSeq
from .errors import (
    RxArgumentError,
    RxArgumentTypeError,
    RxError,
    RxJobCanceledError,
    RxJobError,
    RxLargeObjectWarning,
    RxMissingExtraError,
    RxPayloadError,
    RxShareError,
    RxSparkUnavailableError,
    RxTaskError,
    RxTaskFailureWarning,
    RxWorkerLostError,
)
from .executor import RxExecutor
from .jobs import (
    RxJob,
    StoredJob,
    rx_cancel_job,
    rx_cleanup_jobs,
    rx_get_job_output,
    rx_get_job_results,
    rx_get_job_status,
    rx_get_jobs,
    rx_resume_job,
    rx_wait_for_job,
)
from .options import rx_options
from .rng import rng
from .share import RxShared, rx_share
from .spec import rx_elem_arg

# Names whose modules import pyspark (lazily, on use): resolved on first access.
_LAZY = {
    "RxSpark": "rxspark.contexts.spark.context",
    "rx_spark_connect": "rxspark.contexts.spark.context",
    "rx_spark_disconnect": "rxspark.contexts.spark.context",
    "rx_get_pyspark_connection": "rxspark.contexts.spark.context",
    "rx_get_spark_session": "rxspark.contexts.spark.context",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rxspark' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ComputeContext",
    "RxArgumentError",
    "RxArgumentTypeError",
    "RxError",
    "RxExecutor",
    "RxForeachDoPar",
    "RxJob",
    "RxJobCanceledError",
    "RxJobError",
    "RxLargeObjectWarning",
    "RxLocalParallel",
    "RxLocalSeq",
    "RxMissingExtraError",
    "RxPayloadError",
    "RxSparkUnavailableError",
    "RxTaskError",
    "RxTaskFailureWarning",
    "RxWorkerLostError",
    "RxShareError",
    "RxShared",
    "StoredJob",
    "rng",
    "rx_cancel_job",
    "rx_cleanup_jobs",
    "rx_elem_arg",
    "rx_exec",
    "rx_get_compute_context",
    "rx_get_job_output",
    "rx_get_job_results",
    "rx_get_job_status",
    "rx_get_jobs",
    "rx_options",
    "rx_resume_job",
    "rx_set_compute_context",
    "rx_wait_for_job",
    "rx_share",
    *_LAZY,
]
