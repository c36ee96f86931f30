"""Shared by the bench scripts: timing, medians, and writing figures into the README.

Figures in the README come only from these scripts: each writes its table between
``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` when run with ``--readme``.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    name: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def row(self) -> str:
        return f"{self.median:.2f} s (min {self.low:.2f}, max {self.high:.2f}, n={len(self.samples)})"


SETTLE = 5.0  # seconds a cold run waits after sync(): the disk beneath may still be writing


def settle() -> None:
    """Before a cold run: what earlier runs wrote is written back (os.sync), and the disk is given
    a few seconds more, so that no run pays for the one before it.  Runs of the two sides
    alternate in ``bench/compiled.py``; without the wait, the Dockerfile's cold build (dpkg and
    buildah sync their writes) measured 6% slower right after a slimline build than right after
    another Dockerfile build."""
    os.sync()
    time.sleep(SETTLE)


def measure(
    name: str, runs: int, action: Callable[[int], None], *, before: Callable[[int], None] | None = None
) -> Timing:
    samples = []
    for i in range(runs):
        if before is not None:
            before(i)
        t0 = time.perf_counter()
        action(i)
        samples.append(time.perf_counter() - t0)
    return Timing(name, tuple(samples))


def sh(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: command failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc.stdout


def write_readme(section: str, text: str) -> None:
    readme = ROOT / "README.md"
    body = readme.read_text()
    pattern = re.compile(rf"(<!-- bench:{section} -->\n).*?(<!-- /bench:{section} -->)", re.S)
    if not pattern.search(body):
        raise SystemExit(f"bench: README.md has no <!-- bench:{section} --> markers")
    readme.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip() + "\n" + m.group(2), body))


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def interpreter() -> str:
    """The Python the measured ``slimline`` runs on (this venv's): start-up is most of a rebuild
    served from the memo, and builds of CPython differ in how fast they start and import."""
    return f"{platform.python_implementation()} {platform.python_version()} (from {sys.base_prefix})"
