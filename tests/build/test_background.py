"""build.background: early work on a thread of the lowest priority, which its processes inherit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from slimline.build import background


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_work_begun_early_runs_at_the_lowest_priority_and_so_do_its_processes() -> None:
    before = _nice()
    seen: dict[str, int] = {}

    def work() -> None:
        seen["thread"] = _nice()
        out = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        seen["process"] = int(out.stdout)

    thread = background.begin(work, name="slimline-test")
    thread.join(timeout=30)
    assert not thread.is_alive() and thread.daemon and thread.name == "slimline-test"
    assert seen == {"thread": background.LOWEST, "process": background.LOWEST}
    assert _nice() == before  # the caller's thread keeps its own
