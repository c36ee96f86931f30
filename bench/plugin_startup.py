#!/usr/bin/env python3
"""What the Poetry plugin costs every other Poetry command: ``poetry --version`` with and without it.

Poetry imports and activates every installed plugin at the start of every command, so a slow
plugin slows ``poetry install`` and ``poetry run`` too.  Two fresh venvs side by side hold the
same Poetry (this venv's version, from the package index); one also holds slimline's wheel,
built from this tree, as ``poetry self add`` or ``pipx inject`` would put it.  Each runs
``poetry --version`` (which loads the plugins) in an empty directory with an empty Poetry
config, after two warm-up runs, alternating between the two so that drift in the machine's load
falls on both.  Target: the median with the plugin within 50 ms of the median without.
Wall-clock times on a busy machine scatter far more than 50 ms, so CPU times are given too, and
the plugin's own share measured inside Poetry's process (importing it and activating it).

Usage: ``.venv/bin/python bench/plugin_startup.py [--runs 20] [--readme]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Timing, sh, write_readme

TARGET = 0.050  # seconds the plugin may add to `poetry --version`


ALONE = {"PYTHONPATH": ""}  # the venvs' own packages, not this tree's sources


def venv(dest: Path, *packages: str) -> Path:
    sh([sys.executable, "-m", "venv", dest], env=ALONE)
    sh([dest / "bin" / "python", "-m", "pip", "install", "-q", *packages], env=ALONE)
    return dest / "bin" / "poetry"


def ms(t: Timing) -> str:
    return f"{t.median * 1000:.0f} ms (min {t.low * 1000:.0f}, max {t.high * 1000:.0f}, n={len(t.samples)})"


def once(poetry: Path, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one ``poetry --version``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([str(poetry), "--version"], env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


ACTIVATE = """
import time
from poetry.console.application import Application
from poetry.plugins.application_plugin import ApplicationPlugin
app = Application()
c0, t0 = time.process_time(), time.perf_counter()
from slimline.cli.poetry_plugin import ImagePlugin
ImagePlugin().activate(app)
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def setup(work: Path) -> dict[str, Path]:
    """The two venvs: Poetry alone, and Poetry with slimline's wheel from this tree."""
    sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", ROOT], env=ALONE)
    wheel = str(next((work / "dist").glob("slimline-*.whl")))
    poetry_req = f"poetry=={version('poetry')}"
    sides = {"without": venv(work / "without", poetry_req), "with": venv(work / "with", poetry_req, wheel)}
    listed = sh([sides["with"], "list"], env={**ALONE, "POETRY_CONFIG_DIR": str(work / "config")})
    if "image build" not in listed:
        raise SystemExit("bench: the plugin did not register `poetry image build`")
    return sides


def sample(sides: dict[str, Path], work: Path, runs: int) -> dict[tuple[str, str], Timing]:
    """(side, "wall"|"cpu") -> timings of ``poetry --version``; ("with", "activate"|"activate-cpu")
    -> importing and activating the plugin inside Poetry's process, alone."""
    env = {**os.environ, **ALONE, "POETRY_CONFIG_DIR": str(work / "config")}
    empty = work / "empty"
    empty.mkdir()
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(2):  # warm-up: the page cache, and any bytecode not yet written
        for poetry in sides.values():
            once(poetry, env, empty)
    python = sides["with"].parent / "python"
    for _ in range(runs):
        for side, poetry in sides.items():
            for kind, value in zip(("wall", "cpu"), once(poetry, env, empty), strict=True):
                samples.setdefault((side, kind), []).append(value)
        wall, cpu = map(float, sh([python, "-c", ACTIVATE], env=ALONE, cwd=empty).split())
        samples.setdefault(("with", "activate"), []).append(wall)
        samples.setdefault(("with", "activate-cpu"), []).append(cpu)
    return {key: Timing(key[0], tuple(values)) for key, values in samples.items()}


def report(t: dict[tuple[str, str], Timing], runs: int) -> str:
    rows = []
    for kind, what in (("wall", "`poetry --version`, wall clock"), ("cpu", "`poetry --version`, CPU time")):
        without, with_ = t["without", kind], t["with", kind]
        delta, ratio = (with_.median - without.median) * 1000, with_.median / without.median
        rows.append(f"| {what} | {ms(without)} | {ms(with_)} | {delta:+.0f} ms ({ratio:.2f}x) |")
    act, act_cpu = t["with", "activate"], t["with", "activate-cpu"]
    rows.append(f"| importing and activating the plugin in Poetry, wall clock | | {ms(act)} | |")
    rows.append(f"| the same, CPU time | | {ms(act_cpu)} | |")
    delta = t["with", "wall"].median - t["without", "wall"].median
    return "\n".join(
        [
            f"Every Poetry command's start with and without slimline's plugin installed (Poetry "
            f"{version('poetry')}, `bench/plugin_startup.py --runs {runs}`, two fresh venvs, "
            "runs alternated):",
            "",
            "| median (min, max) | without slimline | with slimline | difference |",
            "|---|---|---|---|",
            *rows,
            "",
            f"`poetry --version` medians differ by {delta * 1000:+.0f} ms; target: within "
            f"{TARGET * 1000:.0f} ms: {'met' if delta <= TARGET else 'NOT met'}.",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slimline-plugin-bench-"))
    sides = setup(work)
    load = os.getloadavg()[0]
    text = report(sample(sides, work, args.runs), args.runs)
    text += (
        f"\n\nLoad average while measuring: {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
        f"on {os.cpu_count()} cores (wall-clock times scatter with it; CPU times much less)."
    )
    print(text)
    if args.readme:
        write_readme("plugin", text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
