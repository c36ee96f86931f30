#!/usr/bin/env python3
"""A fleet of fresh CI runners, with and without the build cache shared through a registry.

A local registry (the real ``docker-registry``) and N runners (default 8), each a sequence of
real ``slimline build`` processes with an empty cache directory of its own, all running at once;
each builds the example apps and one large lock (about 125 packages, locked by Poetry at bench
time from ``bench/scale-packages.txt``) and pushes them to the registry.  Three phases:

1. cold: N runners without a shared cache;
2. seed: one runner with ``--cache-repo`` and an empty shared cache (it writes the records);
3. shared: N fresh runners with ``--cache-repo`` (the cache is warm).

Per runner and in total: wheels downloaded (``downloading`` lines of its ``-v`` report), layers
compressed (the ``N of M made`` of its layers lines: dependency layers and the app's own), base
layers assembled, bytes uploaded to the registry (request bodies counted by a recording proxy in
front of the registry, one per runner) and wall time.
Target (issue 16): a fresh runner with a warm shared cache downloads no wheel, compresses no
dependency layer and builds at least 3x faster than a cold one.
Usage: ``.venv/bin/python bench/fleet.py [--runners 8] [--large 125] [--readme]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, interpreter, mib, write_readme
from scale import names, poetry_lock, prefixes, write_project
from tests.oci.registry_helpers import Proxy, Registry, registry

SLIMLINE = str(Path(sys.executable).parent / "slimline")
EXAMPLES = ("cli-app", "fastapi-app", "pandas-job")
CACHE_REPO = "fleet/slimline-cache"
MADE = re.compile(r"layers \([^)]*\): (\d+) of (\d+) made")


@dataclass
class Figures:
    wall: float = 0.0
    wheels: int = 0  # wheels downloaded
    layers: int = 0  # layers compressed (slimline-made: venv, dependencies, the app's)
    of: int = 0  # slimline-made layers in all
    base: int = 0  # base assemblies from Debian packages
    uploaded: int = 0  # bytes sent to the registry

    def add(self, other: Figures) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


def projects(work: Path, large: int) -> list[Path]:
    """The apps every runner builds: the examples and one lock of about ``large`` packages."""
    out = []
    for name in EXAMPLES:
        dest = work / "src" / name
        shutil.copytree(ROOT / "examples" / name, dest, ignore=shutil.ignore_patterns("dist", "__pycache__"))
        out.append(dest)
    chosen = prefixes(work / "plan", [large])[large]
    big = write_project(work / "src" / f"large-{large}", chosen)
    poetry_lock(big)
    out.append(big)
    return out


def runner(name: str, apps: list[Path], reg: Registry, work: Path, *, shared: bool) -> Figures:
    """One fresh runner: an empty cache, every app built and pushed through its own proxy."""
    proxy = Proxy(reg.host)
    cache = work / "caches" / name
    fig = Figures()
    t0 = time.perf_counter()
    try:
        for app in apps:
            checkout = work / "checkouts" / name / app.name  # each runner has its own checkout
            shutil.copytree(app, checkout, dirs_exist_ok=True)
            flags = ["--cache-repo", f"{proxy.host}/{CACHE_REPO}"] if shared else []
            to = f"docker://{proxy.host}/{name}/{app.name}:ci"
            proc = subprocess.run(
                [SLIMLINE, "build", str(checkout), "--to", to, "-v", *flags],
                env={**os.environ, "SLIMLINE_CACHE_DIR": str(cache)},
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            if proc.returncode != 0:
                raise SystemExit(f"bench: runner {name} failed to build {app.name}:\n{proc.stderr[-3000:]}")
            fig.wheels += proc.stderr.count("  downloading ")
            fig.base += proc.stderr.count("assembling base ")
            for made, of in MADE.findall(proc.stderr):
                fig.layers, fig.of = fig.layers + int(made), fig.of + int(of)
        fig.wall = time.perf_counter() - t0
        fig.uploaded = sum(
            s.size for s in proxy.seen if s.method in ("PUT", "PATCH") and "/blobs/uploads/" in s.path
        )
    finally:
        proxy.close()
    return fig


def phase(
    label: str, count: int, apps: list[Path], reg: Registry, work: Path, *, shared: bool
) -> list[Figures]:
    print(f"bench: {label}: {count} runner(s)", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=count) as pool:
        jobs = [pool.submit(runner, f"{label}-{i}", apps, reg, work, shared=shared) for i in range(count)]
        return [j.result() for j in jobs]


def table(phases: dict[str, list[Figures]], apps: list[Path], args: argparse.Namespace) -> str:
    rows = []
    for label, figs in phases.items():
        total = Figures()
        for i, f in enumerate(figs):
            total.add(f)
            rows.append(_row(f"{label} #{i}", f))
        if len(figs) > 1:
            rows.append(_row(f"**{label}, all {len(figs)}**", total, wall=max(f.wall for f in figs)))
    cold = statistics.median(f.wall for f in phases["cold"])
    warm = statistics.median(f.wall for f in phases["shared"])
    fresh = phases["shared"]
    met = all(f.wheels == 0 and f.layers == 0 for f in fresh) and cold / warm >= 3
    lines = [
        f"{args.runners} runners at once on {os.cpu_count()} cores (slimline on {interpreter()}), "
        f"each with an empty cache, building and pushing {', '.join(a.name for a in apps)} "
        f"(the last: a lock of {_count(apps[-1])} packages) to a local registry; "
        f"`bench/fleet.py --runners {args.runners} --large {args.large}`. Layers compressed counts "
        "every layer slimline makes (the venv, the dependency groups and each app's own); a runner's "
        "wall time is all its builds, one after another; "
        f"load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| runner | wheels downloaded | layers compressed | bases assembled | uploaded | wall time |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Median runner: {cold:.1f} s cold, {warm:.1f} s with the shared cache warm ({cold / warm:.1f}x). "
        "Target (a fresh runner with a warm shared cache downloads no wheel, compresses no layer and is "
        f">= 3x faster): {'met' if met else 'MISSED'}.",
    ]
    return "\n".join(lines)


def _row(label: str, f: Figures, *, wall: float | None = None) -> str:
    return (
        f"| {label} | {f.wheels} | {f.layers} of {f.of} | {f.base} | {mib(f.uploaded)} | "
        f"{f.wall if wall is None else wall:.1f} s |"
    )


def _count(app: Path) -> int:
    import tomllib

    return len(tomllib.loads((app / "poetry.lock").read_text())["package"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runners", type=int, default=8)
    ap.add_argument("--large", type=int, default=125, help="packages in the large lock (about)")
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if len(names()) < 10:
        raise SystemExit("bench: bench/scale-packages.txt is missing")
    work = Path(tempfile.mkdtemp(prefix="slimline-fleet-"))
    try:
        apps = projects(work, args.large)
        with registry(work / "registry") as reg:
            phases = {
                "cold": phase("cold", args.runners, apps, reg, work, shared=False),
                "seed": phase("seed", 1, apps, reg, work, shared=True),
                "shared": phase("shared", args.runners, apps, reg, work, shared=True),
            }
        text = table(phases, apps, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({k: [asdict(f) for f in v] for k, v in phases.items()}, indent=2))
    if args.readme:
        write_readme("fleet", text)


if __name__ == "__main__":
    main()
