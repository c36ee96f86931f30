"""The reporter for a terminal: the same lines as :class:`slimline.report.Stderr`, with progress
bars below them (bytes, rate, time left; a spinner where the size is unknown).

``rich`` costs tens of milliseconds to load: it is imported when the first task that deserves a
bar starts (a transfer or layer of at least :data:`MIN_BYTES`, or a task of unknown size such as
a source build), so a rebuild served by the memo, which moves a few kilobytes, never loads it.
Contract: one :class:`Terminal` per command; :meth:`close` ends the live display (the command
line calls it before it prints the result).  A task's bar goes when its ``with`` block ends;
the step lines stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from slimline.report import Stderr, Ticker, progress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["MIN_BYTES", "Terminal"]

MIN_BYTES = 1 << 20  # smaller transfers finish before a bar could be seen


class _Bar:
    def __init__(self, bars: Progress, task: TaskID) -> None:
        self._bars, self._task = bars, task

    def advance(self, n: int) -> None:
        self._bars.advance(self._task, n)


class Terminal(Stderr):
    """:class:`Stderr`'s lines, printed above the live bars once they exist."""

    def __init__(self, *, verbose: bool = False, stream: TextIO) -> None:
        super().__init__(verbose=verbose, stream=stream)
        self._bars: Progress | None = None  # the live display, once a bar is wanted
        self._console: Any = None

    def _line(self, text: str) -> None:
        with self._lock:
            console = self._console
        if console is None:
            super()._line(text)
        else:
            console.print(self._stamped(text), markup=False, highlight=False)

    def progress(self, task: str, total: int | None = None) -> AbstractContextManager[Ticker]:
        if total is not None and total < MIN_BYTES:
            return progress(None, task)
        return self._task(task, total)

    @contextmanager
    def _task(self, task: str, total: int | None) -> Iterator[Ticker]:
        bars = self._live()
        tid = bars.add_task(task, total=total)
        try:
            yield _Bar(bars, tid)
        finally:
            bars.remove_task(tid)

    def _live(self) -> Progress:
        with self._lock:
            if self._bars is None:
                self._bars = _progress(self._stream)
                self._bars.start()
                self._console = self._bars.console
            return self._bars

    def close(self) -> None:
        with self._lock:
            if self._bars is not None:
                self._bars.stop()
            self._bars = self._console = None


def _progress(stream: TextIO) -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(bar_width=24),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(compact=True),
        TimeElapsedColumn(),
        console=Console(file=stream, highlight=False, soft_wrap=True),
        transient=True,  # bars go when the command ends; the lines stay
        refresh_per_second=8,
    )
