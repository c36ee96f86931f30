"""A value made at most once, on demand or begun early on a thread.

Contract of :class:`Once`: ``make`` runs at most once, for the first caller of :meth:`Once.get`
or on a daemon thread started by :meth:`Once.begin`, whichever comes first; callers at the same
time wait for it.  If it raised, every later :meth:`Once.get` raises that error again (nothing is
made twice: a builder written or resolved half a minute before a failure is not tried again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Once"]

T = TypeVar("T")


class Once(Generic[T]):
    def __init__(self, make: Callable[[], T], *, name: str) -> None:
        self._make, self._name = make, name  # name: of the thread begin() starts
        self._lock = threading.Lock()  # held while making
        self._begin_lock = threading.Lock()  # not the one held while making
        self._made: list[T] = []
        self._failed: list[Exception] = []
        self._begun = False

    def get(self) -> T:
        """The value, made now if no caller made it or is making it (see the module's contract)."""
        with self._lock:
            if self._failed:
                raise self._failed[0]
            if not self._made:
                try:
                    self._made.append(self._make())
                except Exception as err:
                    self._failed.append(err)
                    raise
            return self._made[0]

    def begin(self) -> None:
        """Start making the value on a daemon thread, unless that was begun already; returns at
        once.  What making it raises is kept for :meth:`get`."""
        with self._begin_lock:
            if self._begun:
                return
            self._begun = True
        threading.Thread(target=self._quietly, name=self._name, daemon=True).start()

    @property
    def made(self) -> T | None:
        """The value, if it was made."""
        return self._made[0] if self._made else None

    def _quietly(self) -> None:
        try:
            self.get()
        except Exception:  # kept: raised to whoever asks with get()
            return
