"""rx_exec and the active compute context.

``rx_exec`` validates its arguments into a :class:`~rxspark.spec.JobSpec`
(nothing runs before that succeeds), creates an :class:`~rxspark.jobs.RxJob`
for it and runs it on the compute context: in this thread when waiting, in a
background thread otherwise (where the job is laid out for the context, so a
context that must start its engine first does not hold up the caller). A context named by a string (``"localpar"``) is
made by the backend that registered the name (``contexts/registry.py``).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from . import _active as _slot
from .contexts import registry
from .contexts.base import ComputeContext
from .contexts.local import RxLocalSeq
from .errors import RxError
from .jobs import RxJob
from .spec import JobSpec, rx_elem_arg

__all__ = ["rx_exec", "rx_elem_arg", "rx_set_compute_context", "rx_get_compute_context"]

_slot.set_default(RxLocalSeq())


def _context_from(value: Any, argument: str) -> ComputeContext:
    context = registry.resolve(value, argument)  # each backend registered its names (contexts/registry.py)
    assert context is not None
    return context


def rx_set_compute_context(compute_context: ComputeContext | str) -> ComputeContext:
    """Make ``compute_context`` the active context.

    Args:
        compute_context: A context object or a name: ``"local"``/``"RxLocalSeq"``,
            ``"localpar"``/``"RxLocalParallel"``, ``"spark"``/``"RxSpark"``
            (``"dopar"`` needs an executor, so pass an ``RxForeachDoPar`` object).

    Returns:
        The previously active context.
    """
    return _slot.swap(_context_from(compute_context, "compute_context"))


def rx_get_compute_context() -> ComputeContext:
    """Return the active compute context (``RxLocalSeq`` unless set)."""
    return _slot.current()


def rx_exec(
    function: Callable[..., Any],
    *call_args: Any,
    elem_args: Sequence[Any] | dict[str, Any] | None = None,
    elem_type: str = "nodes",
    once_per_elem: bool = False,
    times_to_run: int = -1,
    packages_to_load: Sequence[str] | None = None,
    exec_objects: dict[str, Any] | Sequence[str] | None = None,
    task_chunk_size: int | None = None,
    console_output: bool | None = None,
    auto_cleanup: bool | None = None,
    continue_on_failure: bool = True,
    rng_seed: int | str | None = None,
    rng_kind: str | None = None,
    rng_scope: str = "chunk",
    compute_context: ComputeContext | str | None = None,
    wait: bool | None = None,
    callback: Callable[[Any], Any] | None = None,
    args: dict[str, Any] | list[dict[str, Any]] | None = None,
    local_state: dict[str, Any] | None = None,
    durable: bool | None = None,
    detach: bool = False,
    **kwargs: Any,
) -> Any:
    """Run ``function`` once per task, in parallel on a compute context.

    Args:
        function: The function to run.
        *call_args: Positional arguments for every call; wrap one in ``rx_elem_arg``
            to give call *i* its *i*-th value.
        elem_args: One entry per call (dict -> keyword arguments, tuple ->
            positional arguments, anything else -> the first positional
            argument), or a dict name -> entry for named results.
        elem_type: ``"nodes"`` or ``"cores"``: what one task per compute element means.
        once_per_elem: Run exactly once on each node (``elem_type="nodes"`` only).
        times_to_run: Number of tasks; -1 takes it from the per-call arguments.
        packages_to_load: Modules imported on each worker and bound as globals of ``function``.
        exec_objects: Objects visible as globals of ``function`` on the workers:
            a dict, or names looked up in the caller's frame.
        task_chunk_size: Tasks per chunk; None spreads the tasks over the context's parallelism.
        console_output: Print each task's output when results are collected (None: context's setting).
        auto_cleanup: Delete job artifacts once results are returned (None: context's setting).
        continue_on_failure: Keep going when a task raises (its slot holds an ``RxTaskError``).
        rng_seed: None, a non-negative int, or ``"auto"``: seeds reproducible parallel streams.
        rng_kind: Generator kind (``"PCG64"`` default, see ``rxspark.rng.ALL_KINDS``).
        rng_scope: ``"chunk"`` (one stream per chunk) or ``"task"`` (one per task).
        compute_context: A context object or name for this call only.
        wait: Block for the results (None: the context's setting) or return an ``RxJob``.
        callback: Called on the driver with each task's result as chunks complete.
        args: revoscalepy form: a dict of keyword arguments for every call, or a list of dicts, one call each.
        local_state: revoscalepy form of ``exec_objects`` (a dict).
        durable: Checkpoint every finished chunk in the job store, so ``rx_resume_job`` can finish
            the job if its driver dies. None: a job that does not wait is durable from its start, a
            waiting call once it has run longer than the record delay; True: from the start; False: never.
        detach: Run the job in a driver process of its own that outlives this one (needs
            ``wait=False``; implies ``durable``); returns its ``RxJob`` at once.
        **kwargs: Keyword arguments for every call (``rx_elem_arg`` for per-call values).

    Returns:
        A list of results in task order (a dict for named ``elem_args`` or
        ``once_per_elem``), or an ``RxJob`` when not waiting.

    Raises:
        RxArgumentError: A bad argument value, before anything runs.
        RxArgumentTypeError: A bad argument type, or arguments that do not fit ``function``.
        RxTaskError: ``continue_on_failure=False`` and a task failed.
    """
    # Every parameter but these is an option of the job spec, under its own name: the argument
    # list is written here once, and checked by JobSpec.create.
    options = {name: value for name, value in locals().items() if name not in _NOT_OPTIONS}
    try:
        return run(function, call_args, kwargs, compute_context, frame=sys._getframe(1), **options)
    except (RxError, KeyboardInterrupt) as exc:
        # The traceback starts at the user's call: rxspark's own frames say nothing to them
        # (a failed task's remote traceback stays in the exception and its __cause__).
        exc.with_traceback(None)
        raise


# rx_exec's parameters that are not options of the job spec.
_NOT_OPTIONS = frozenset({"function", "call_args", "kwargs", "compute_context"})


def run(
    function: Any,
    call_args: tuple[Any, ...],
    kwargs: dict[str, Any],
    compute_context: ComputeContext | str | None,
    *,
    frame: types.FrameType | None = None,
    **options: Any,
) -> Any:
    """Validate one job, then run it on its compute context (the body of ``rx_exec`` and its compat forms).

    Args:
        function: The function to run.
        call_args: Positional arguments of every call.
        kwargs: Keyword arguments of every call.
        compute_context: A context object or name, or None for the active one.
        frame: The caller's frame (``exec_objects`` given by name).
        **options: :meth:`rxspark.spec.JobSpec.create`'s options.

    Returns:
        The results (waiting) or the ``RxJob``.
    """
    context = _slot.current() if compute_context is None else _context_from(compute_context, "compute_context")
    spec = JobSpec.create(function, call_args, kwargs, frame=frame, context_packages=context.packages_to_load, **options)
    if spec.detach:
        from .jobs.detach import submit_detached

        return submit_detached(spec, context)
    job = RxJob(spec, context)
    if not (context.wait if spec.wait is None else spec.wait):
        job.start_background()
        return job
    job.run()
    return job.result()
