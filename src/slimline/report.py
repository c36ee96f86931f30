"""Progress reporting: the library reports through this small interface, never with ``print``.

Contract: ``step`` announces a phase ("resolving base debian:bookworm"), ``detail`` adds a line
that only verbose output shows, ``done`` closes a phase with a summary.  A step that starts
with ``warning:`` is never hidden (:class:`Nested` passes it on as a step).  Messages never
contain credentials (callers pass redacted URLs).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Protocol, TextIO

__all__ = ["Collect", "Nested", "Quiet", "Reporter", "Stderr"]


class Reporter(Protocol):
    def step(self, text: str) -> None: ...
    def detail(self, text: str) -> None: ...
    def done(self, text: str) -> None: ...


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

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"[{time.monotonic() - self._t0:6.2f}s] {text}", file=self._stream, flush=True)

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
