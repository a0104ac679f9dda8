"""A progress display on the terminal: files checked / total, then the trace.

It appears only when the run is still going after :data:`DELAY` seconds (a
quick run prints nothing extra), only on a terminal (never on a pipe, in a
file, or in a CI log: ``$CI`` set, ``TERM=dumb``), and it is erased when the
run ends.  rich is imported only once it appears.

It is the ``progress`` callback of :func:`resnetlint.api.check_paths`:
``progress("check", done, total)`` per file, ``progress("trace", done,
total)`` for the trace (``total`` 0 when the trace does not say).  While
files are checked the display is redrawn from those calls only, at most
:data:`REFRESH` times a second: no drawing thread may run while the
process pool forks its workers.  The trace runs its worker as a subprocess,
so there a thread keeps the spinner turning between calls.
"""
from __future__ import annotations

import os
import time
from typing import IO, Optional

DELAY = 1.0  # seconds before anything is shown
REFRESH = 10  # redraws per second at most while files are checked


class Progress:
    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.started = time.monotonic()
        self.phase = ""
        self.display = None  # a rich.progress.Progress once shown
        self.task = None
        self.last_draw = 0.0

    @classmethod
    def for_stream(cls, stream: IO[str]) -> Optional["Progress"]:
        """A display on ``stream``, or None where it must not appear."""
        if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
            return None
        try:
            if not stream.isatty():
                return None
        except (AttributeError, ValueError):
            return None
        return cls(stream)

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self._enter(phase, now)
        if self.display is None:
            if now - self.started < DELAY:
                return
            self._show(phase)
        self.display.update(self.task, completed=done, total=total or None)
        if phase == "check" and (now - self.last_draw >= 1 / REFRESH or done == total):
            self.display.refresh()
            self.last_draw = now

    def _enter(self, phase: str, now: float) -> None:
        if self.display is not None:
            self.display.stop()
            self.display = None
        self.phase = phase
        if phase == "trace":
            self._show(phase)  # the trace starts a torch worker: it takes seconds

    def _show(self, phase: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        label = "Checking files" if phase == "check" else "Tracing blocks"
        self.display = RichProgress(SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), console=Console(file=self.stream), transient=True,
                                    auto_refresh=phase != "check", redirect_stdout=False, redirect_stderr=False)
        self.task = self.display.add_task(label, total=None)
        self.display.start()

    def close(self) -> None:
        if self.display is not None:
            self.display.stop()
            self.display = None
