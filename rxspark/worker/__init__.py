"""What runs on a worker: :func:`run_chunk` and the pieces a compute context ships and gets back.

Modules, one role each: ``run`` (run_chunk: the one function every backend
runs), ``payload`` (how the job's payload travels and is loaded once per
process), ``capture`` (each task's output), ``result`` (ChunkResult, what a
chunk sends back), ``failures`` (task errors, tracebacks, what cannot be
unpickled where and the fix).
"""

from .failures import unloadable
from .payload import (
    FilePayload,
    InlinePayload,
    LocalPayload,
    PackageImportError,
    PayloadLoadError,
    PayloadRef,
    forget,
    load_payload,
    stats,
)
from .result import ChunkResult
from .run import ChunkCanceled, default_node, run_chunk

__all__ = [
    "ChunkCanceled",
    "ChunkResult",
    "FilePayload",
    "InlinePayload",
    "LocalPayload",
    "PackageImportError",
    "PayloadLoadError",
    "PayloadRef",
    "default_node",
    "forget",
    "load_payload",
    "run_chunk",
    "stats",
    "unloadable",
]
