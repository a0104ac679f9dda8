"""A progress display while the trace runs: classes done / total and the
current class, with rich, on a terminal only (never on a pipe or in CI)."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, Optional


class _Silent:
    def advance(self, current: str) -> None:
        pass


class _Bar:
    def __init__(self, progress, task) -> None:
        self.progress, self.task, self.started = progress, task, False

    def advance(self, current: str) -> None:
        # Called before each class: the previous one is done.
        self.progress.update(self.task, advance=1 if self.started else 0, current=current)
        self.started = True


def wanted(setting: Optional[bool], stream=None) -> bool:
    """On when asked for; by default on a terminal outside CI."""
    if setting is not None:
        return setting
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("CI")


@contextmanager
def progress_display(total: int, setting: Optional[bool] = None) -> Iterator[object]:
    if total < 1 or not wanted(setting):
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("tracing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[current]}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = _Bar(progress, progress.add_task("trace", total=total, current=""))
        yield bar
        progress.update(bar.task, completed=total)
