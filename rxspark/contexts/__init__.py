"""Compute contexts: where the chunks of a job run.

- ``base.py``: the backend interface (``ComputeContext``) and the view of a job it gets (``JobSink``).
- ``registry.py``: context names; every backend module registers its own.
- ``local.py``: ``RxLocalSeq`` (in this process) and ``RxLocalParallel`` (rxspark's loky pool).
- ``pool.py``: the run loop on a ``ChunkPool`` (the local process pool and any caller's executor).
- ``dopar.py``: ``RxForeachDoPar`` (any caller's ``concurrent.futures.Executor``).
- ``spark/``: ``RxSpark``: the session, and one engine per kind of session.
"""
