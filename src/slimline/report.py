"""Progress reporting: the library reports through this small interface, never with ``print``.

Contract: ``step`` announces a phase ("resolving base debian:bookworm"), ``detail`` adds a line
that only verbose output shows, ``done`` closes a phase with a summary.  A step that starts
with ``warning:`` is never hidden (:class:`Nested` passes it on as a step).  Messages never
contain credentials (callers pass redacted URLs).

Progress: stages that move bytes (downloads, layer compression, pushes) or wait long (source
builds) wrap the work in ``with progress(report, task, total) as bar: bar.advance(n)``.  A
reporter that shows progress (the terminal's, :mod:`slimline.cli.terminal`) has a method
``progress(task, total)`` returning such a context; the others (:class:`Quiet`, :class:`Stderr`)
have none, and :func:`progress` then costs one attribute lookup.  ``total`` is in bytes, None
when unknown; ``advance`` may be called from any thread.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import AbstractContextManager
from typing import Any, Protocol, TextIO

__all__ = ["Collect", "Counted", "Nested", "Quiet", "Reporter", "Stderr", "Ticker", "progress"]


class Reporter(Protocol):
    def step(self, text: str) -> None: ...
    def detail(self, text: str) -> None: ...
    def done(self, text: str) -> None: ...


class Ticker(Protocol):
    def advance(self, n: int) -> None: ...


class _Still:
    """The progress of a reporter that shows none."""

    def advance(self, n: int) -> None:
        pass

    def __enter__(self) -> _Still:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_STILL = _Still()


def progress(report: Reporter | None, task: str, total: int | None = None) -> AbstractContextManager[Ticker]:
    """A progress task on ``report`` (a bar on a terminal), else one that does nothing."""
    show: Any = getattr(report, "progress", None)
    if show is None:
        return _STILL
    shown: AbstractContextManager[Ticker] = show(task, total)
    return shown


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Counted:
    """``stream``, each read advancing ``bar`` by the bytes it returned; closing closes ``stream``."""

    def __init__(self, stream: _Readable, bar: Ticker) -> None:
        self._stream, self._bar = stream, bar

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._bar.advance(len(data))
        return data

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Quiet:
    def step(self, text: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    def done(self, text: str) -> None:
        pass


class Stderr:
    """Lines on stderr, prefixed with the seconds since the reporter was made."""

    def __init__(self, *, verbose: bool = False, stream: TextIO | None = None) -> None:
        self._t0 = time.monotonic()
        self._verbose = verbose
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()

    def _stamped(self, text: str) -> str:
        return f"[{time.monotonic() - self._t0:6.2f}s] {text}"

    def _line(self, text: str) -> None:
        with self._lock:
            print(self._stamped(text), file=self._stream, flush=True)

    def step(self, text: str) -> None:
        self._line(text)

    def detail(self, text: str) -> None:
        if self._verbose:
            self._line("  " + text)

    def done(self, text: str) -> None:
        self._line(text)


class Nested:
    """Every line of an inner step as a detail of ``outer`` (shown only when verbose), but warnings."""

    def __init__(self, outer: Reporter) -> None:
        self._outer = outer

    def step(self, text: str) -> None:
        if text.startswith("warning:"):
            self._outer.step(text)
        else:
            self._outer.detail(text)

    def detail(self, text: str) -> None:
        self._outer.detail(text)

    def done(self, text: str) -> None:
        self._outer.detail(text)

    def progress(self, task: str, total: int | None = None) -> AbstractContextManager[Ticker]:
        return progress(self._outer, task, total)


class Collect:
    """Everything passed on to ``outer``; the steps that are warnings also kept in :attr:`warnings`
    (without the ``warning:`` prefix), for a machine-readable result."""

    def __init__(self, outer: Reporter) -> None:
        self._outer = outer
        self._lock = threading.Lock()
        self.warnings: list[str] = []

    def step(self, text: str) -> None:
        if text.startswith("warning:"):
            with self._lock:
                self.warnings.append(text.removeprefix("warning:").strip())
        self._outer.step(text)

    def detail(self, text: str) -> None:
        self._outer.detail(text)

    def done(self, text: str) -> None:
        self._outer.done(text)

    def progress(self, task: str, total: int | None = None) -> AbstractContextManager[Ticker]:
        return progress(self._outer, task, total)
