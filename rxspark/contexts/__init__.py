"""Compute contexts: where the chunks of a job run.

- ``base.py``: the backend interface (``ComputeContext``) and the view of a job it gets (``JobSink``).
- ``registry.py``: context names; every backend module registers its own.
- ``local.py``: ``RxLocalSeq`` (in this process) and ``RxLocalParallel`` (rxspark's loky pool).
- ``executor.py``: the run loop on a ``ChunkPool``, and ``RxForeachDoPar`` (any caller's executor).
- ``spark/``: ``RxSpark``: the session, and one engine per kind of session.
"""
