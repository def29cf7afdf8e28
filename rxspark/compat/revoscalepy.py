"""revoscalepy-style ``rx_exec`` for porting code.

revoscalepy broadcasts list-valued keyword arguments: ``x=[1, 2, 3]`` means
three calls, and a list meant literally is wrapped once more
(``the_list=[[0, 1, 2]]``: one value, recycled to every call)::

    from rxspark.compat import revoscalepy
    revoscalepy.rx_exec(f, x=[1, 2, 3], y=10)   # f(x=1, y=10), f(x=2, y=10), f(x=3, y=10)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..api import run
from ..errors import RxError
from ..spec import rx_elem_arg

__all__ = ["rx_exec"]


def _broadcast(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: rx_elem_arg(v) if isinstance(v, list) else v for k, v in values.items()}


def rx_exec(
    function: Callable[..., Any],
    args: dict[str, Any] | list[dict[str, Any]] | None = None,
    times_to_run: int = -1,
    task_chunk_size: int | None = None,
    compute_context: Any = None,
    local_state: dict[str, Any] | None = None,
    callback: Callable[[Any], Any] | None = None,
    continue_on_failure: bool = True,
    **kwargs: Any,
) -> Any:
    """Run ``function`` in parallel with revoscalepy's argument conventions.

    Args:
        function: The function to run.
        args: A dict of keyword arguments (list values broadcast, one call per
            element) or a list of dicts, one call per dict.
        times_to_run: Number of calls; -1 takes it from the broadcast lists.
        task_chunk_size: Tasks per chunk.
        compute_context: A context object or name for this call.
        local_state: Objects visible as globals of ``function`` on the workers.
        callback: Called with each task's result as chunks complete.
        continue_on_failure: Keep going when a task raises.
        **kwargs: Keyword arguments of ``function``; list values are broadcast.

    Returns:
        A list with one result per call (or an ``RxJob`` for a non-waiting context).
    """
    if isinstance(args, Mapping):
        args = _broadcast(args)
    try:
        return run(
            function, (), _broadcast(kwargs), compute_context, frame=sys._getframe(1),
            args=args, times_to_run=times_to_run, task_chunk_size=task_chunk_size,
            local_state=local_state or None, callback=callback, continue_on_failure=continue_on_failure,
        )
    except (RxError, KeyboardInterrupt) as exc:
        exc.with_traceback(None)  # the traceback starts at the user's call
        raise
