"""Progress displays of jobs: one bar per job, made where the job was submitted, kept when it ends.

A job's bar is created in the thread that submits the job (the notebook cell
that ran ``rx_exec``), and updated from whichever thread runs the job: in a
Jupyter kernel a tqdm widget made in the submitting cell stays in that cell
and updates in place from the job's thread; in a terminal it is a tqdm line
on stderr. When the job ends the bar keeps its last line (tasks, elapsed time,
rate) and says how the job ended when it did not finish.

:func:`watch` gives a live bar for a job that is already running (``job.progress_bar()``,
``display(job)``), fed by polling ``job.progress()``.

tqdm is imported only here and only when a bar is shown (the ``progress`` extra).
"""

from __future__ import annotations

import sys
import threading
import warnings
from typing import Any

from ._warn import user_stacklevel

# Seconds between polls of a watched job's progress.
WATCH_PERIOD = 0.25


def interactive() -> bool:
    """Whether a person is likely watching: a Jupyter/IPython kernel, or a terminal on stderr."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def wanted(setting: bool | None) -> bool:
    """A context's ``progress`` setting resolved: None means "only when interactive"."""
    return setting is True or (setting is None and interactive())


def _tqdm(explicit: bool) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm.auto's TqdmExperimentalWarning outside notebooks
            from tqdm.auto import tqdm
    except ImportError:
        if explicit:
            warnings.warn("progress=True needs tqdm: pip install 'rxspark[progress]'", stacklevel=user_stacklevel())
        return None
    return tqdm


class ProgressBar:
    """One job's bar over its tasks (thread-safe: tqdm locks its own updates).

    Args:
        total: Tasks in all.
        desc: What the bar says before the count (``rxspark <function>``).
        done: Tasks done already (a watched job that is under way).
        explicit: The user asked for a bar (warn when tqdm is missing).
    """

    def __init__(self, total: int, desc: str, done: int = 0, explicit: bool = False) -> None:
        self.desc = desc
        self.bar: Any = None
        self._lock = threading.Lock()
        self._closed = False
        tqdm = _tqdm(explicit)
        if tqdm is not None:
            # leave=True: the final line (tasks, time, rate) stays where the job started.
            self.bar = tqdm(total=total, initial=done, desc=desc, unit="task", leave=True, dynamic_ncols=True)

    def update(self, tasks: int) -> None:
        if self.bar is not None and tasks and not self._closed:
            self.bar.update(tasks)

    def set_total(self, total: int) -> None:
        """Tasks in all, once known (a job laid out after its bar was made)."""
        if self.bar is not None and not self._closed and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()

    def moveto(self, done: int) -> None:
        """Set the count of done tasks (a watched job)."""
        if self.bar is not None and done > self.bar.n and not self._closed:
            self.bar.update(done - self.bar.n)

    def start_clock(self) -> None:
        """The job starts running now: its time and rate count from here (not from the queue), no note."""
        bar = self.bar
        if bar is not None and not self._closed:
            bar.start_t = bar.last_print_t = bar._time()
            bar.set_postfix_str("", refresh=True)

    def note(self, text: str) -> None:
        """A short note after the count (e.g. what the server says)."""
        if self.bar is not None and not self._closed:
            self.bar.set_postfix_str(text, refresh=True)

    def close(self, status: str = "finished") -> None:
        """Leave the final line; a job that did not finish says how it ended. Idempotent."""
        with self._lock:
            if self._closed or self.bar is None:
                self._closed = True
                return
            self._closed = True
        self.bar.set_postfix_str("", refresh=False)  # notes were about the run; the final line is the count
        if status != "finished":
            self.bar.set_description_str(f"{self.desc} ({status})", refresh=False)
        self.bar.close()

    def text(self) -> str:
        """The bar's current line as text (what a terminal shows)."""
        return str(self.bar) if self.bar is not None else ""


def job_bar(setting: bool | None, total: int, function_name: str) -> ProgressBar | None:
    """A bar for a job about to be submitted, or None when ``setting`` (a context's ``progress``) says no."""
    if not wanted(setting):
        return None
    bar = ProgressBar(total, f"rxspark {function_name}", explicit=setting is True)
    return bar if bar.bar is not None else None


def watch(job: Any) -> ProgressBar | None:
    """A live bar for ``job`` (any job with ``progress()``, ``done()`` and ``status()``), made here and now.

    A daemon thread polls the job until it ends, then leaves the final line.
    None when tqdm is missing.
    """
    done, total = job.progress()
    bar = ProgressBar(total, f"rxspark {job.function_name}", done=done, explicit=True)
    if bar.bar is None:
        return None

    def follow() -> None:
        stop = threading.Event()
        while not job.done() and job.status() in ("queued", "running"):
            bar.moveto(job.progress()[0])
            stop.wait(WATCH_PERIOD)
        bar.moveto(job.progress()[0])
        bar.close(job.status())

    threading.Thread(target=follow, name=f"rxspark-watch-{job.job_id}", daemon=True).start()
    return bar
