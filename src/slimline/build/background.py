"""Work begun early on a thread of the lowest priority.

A cold build on a small runner is CPU-bound: work begun early at normal priority (the standard
library's bytecode, reading the base's libraries) takes its share of the cores from the steps
it overlaps (writing the builder, compiling), and the build ends no sooner.  At the lowest
priority it runs on what those steps leave idle (waits for the network, the end of a compile
phase), and at full speed once the build waits for it.

Contract of :func:`begin`: ``work`` runs on a daemon thread started now, at ``nice`` 19 on
Linux (a per-thread attribute there; a process the thread starts inherits it; elsewhere the
priority is left as it is).  The caller joins the thread and handles what ``work`` raises.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable

__all__ = ["LOWEST", "begin"]

LOWEST = 19


def begin(work: Callable[[], None], *, name: str) -> threading.Thread:
    """Start ``work`` on a low-priority daemon thread named ``name`` (see the module contract)."""

    def run() -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):  # not allowed here: it runs at the priority it has
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)
        work()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
