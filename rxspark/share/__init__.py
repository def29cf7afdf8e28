"""Shared data: store a large object once, hand every task a tiny handle.

``rx_share(obj)`` writes ``obj`` once to shared storage (a local directory or
any filesystem ``pyarrow.fs.FileSystem.from_uri`` accepts: ``file://``,
``hdfs://``, ``s3://``, ``gs://`` ...) and returns an :class:`RxShared`
handle. The handle pickles to a few hundred bytes (location, content hash,
kind, size), so passing it as an argument or exec object costs nothing; on a
worker ``handle.value`` loads the object once per process and caches it.

Integrity: the blake2b hash of the file's bytes is computed while writing and
recorded in the handle and in a ``.meta.json`` sidecar. Every load checks the
file's size; the first load in each process also re-hashes the whole file
(``verify=False`` skips it). A missing, truncated or altered file raises
:class:`RxShareError` naming the path: never a wrong result.

The modules, each with one role:

* ``storage``: locations, and the one storage interface with its local
  (private files, memory-mappable) and pyarrow-filesystem implementations;
* ``formats``: file names, the encoding of each kind, the metadata sidecar;
* ``write``: ``rx_share``;
* ``handle``: ``RxShared``;
* ``load``: the per-process cache and checked loading;
* ``listing``: ``list_shares``, ``cleanup_job_shares``, ``on_job_cleanup``.

This package sits below the jobs layer and the contexts: it reads the active
context only through :mod:`rxspark._active`. It imports pyarrow, NumPy and
pandas only when it needs them.
"""

from __future__ import annotations

from .._warn import exec_object_sizes, warn_if_large
from ..errors import RxLargeObjectWarning, RxShareError
from .handle import RxShared, _restore  # noqa: F401 - handles pickled before share/ was a package name rxspark.share._restore
from .listing import ShareInfo, cleanup_job_shares, list_shares, on_job_cleanup
from .load import clear_cache, load_counts, stats
from .storage import default_share_dir, shares_dir
from .write import rx_share

__all__ = [
    "RxShareError",
    "RxLargeObjectWarning",
    "RxShared",
    "ShareInfo",
    "rx_share",
    "list_shares",
    "cleanup_job_shares",
    "on_job_cleanup",
    "default_share_dir",
    "shares_dir",
    "exec_object_sizes",
    "warn_if_large",
    "load_counts",
    "clear_cache",
    "stats",
]
