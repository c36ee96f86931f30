#!/usr/bin/env python3
"""How build time, memory and image size grow with the lock: locks of about 1, 25, 125 and 250
packages, each locked by the real Poetry at bench time from ``bench/scale-packages.txt``.

The names are locked once together; the lock of size N is then Poetry's lock of the first names
whose dependency closure (as that first lock records it) has at least N packages.  Locks are
written to the bench's work directory only (their sources are stripped as in a PyPI project;
no lock naming an index host is ever committed).  For each size, with the real ``slimline``:

* cold build: an empty cache (the Debian base assembled, every wheel downloaded, every layer made);
* warm full build: downloads and base cached, every layer made again (``SLIMLINE_NO_LAYER_CACHE=1``);
* one-line change: a line appended to the app (the memo rebuilds the app layer);
* lock edit changing one package: ``six`` pinned to another version and locked again by Poetry
  (the layer group holding it is made again, the others are reused);
* peak memory: the resident peak of the ``slimline`` process (GNU ``time`` ``%M``), cold and warm;
* image size, compressed and unpacked.

Targets (issue 16): warm full build at most linear in unpacked bytes (the table shows its CPU
seconds per 100 MiB of the layers it makes, unpacked: the base is not made again), one-line
change < 0.15 s at 250 packages, peak memory < 300 MB at every size.
Usage: ``.venv/bin/python bench/scale.py [--sizes 1,25,125,250] [--runs 3] [--readme]``
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, interpreter, mib, sh, write_readme
from build_times import image_sizes
from tests.support import index_url, poetry_env, run, strip_sources, tool

SLIMLINE = str(Path(sys.executable).parent / "slimline")
NAMES = ROOT / "bench" / "scale-packages.txt"
EDITED = ("six", "1.16.0")  # the package the lock edit pins to another version (in every lock)
APP = 'import sys\n\nprint("scale app", sys.version)\n'


def poetry_lock(project: Path) -> None:
    """Lock ``project`` with the real Poetry against the configured simple index, then remove that
    source again, as ``tests.support.poetry_lock`` does.  Poetry runs with ``--no-plugins``: the
    plugins installed beside it (slimline's own among them) are not what is measured here."""
    poetry, env = tool("poetry"), poetry_env()
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text()
    add = ["source", "add", "--priority=primary", "bench-index", index_url()]
    run([poetry, "--no-plugins", *add], cwd=project, env=env)
    run([poetry, "--no-plugins", "lock"], cwd=project, env=env, timeout=1800)
    pyproject.write_text(original)
    strip_sources(project / "poetry.lock", project)


def names() -> list[str]:
    return [n.strip() for n in NAMES.read_text().splitlines() if n.strip() and not n.startswith("#")]


def write_project(root: Path, deps: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    listed = ",\n".join(f'    "{d}"' for d in deps)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "scale"\nversion = "0.1.0"\nrequires-python = ">=3.11,<3.14"\n'
        f"dependencies = [\n{listed}\n]\n\n[tool.poetry]\npackage-mode = false\n\n"
        f'[tool.slimline]\nentrypoint = ["/app/.venv/bin/python", "/app/main.py"]\n'
    )
    (root / "main.py").write_text(APP)
    return root


def closure(lock: dict[str, object], roots: list[str]) -> set[str]:
    """Canonical names of ``roots`` and everything they depend on, as the lock records it."""
    packages = {
        _canon(str(p["name"])): [_canon(d) for d in p.get("dependencies", {})]
        for p in lock["package"]  # type: ignore[attr-defined]
    }
    seen: set[str] = set()
    todo = [_canon(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen or name not in packages:
            continue
        seen.add(name)
        todo.extend(packages[name])
    return seen


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def prefixes(work: Path, sizes: list[int]) -> dict[int, list[str]]:
    """For each size, the shortest prefix of the names whose closure has at least that many packages."""
    everything = names()
    plan = write_project(work / "plan", everything)
    poetry_lock(plan)
    lock = tomllib.loads((plan / "poetry.lock").read_text())
    out: dict[int, list[str]] = {}
    for size in sizes:
        k = next(
            (k for k in range(1, len(everything) + 1) if len(closure(lock, everything[:k])) >= size), None
        )
        if k is None:
            raise SystemExit(f"bench: the names in {NAMES} lock to fewer than {size} packages; add names")
        out[size] = everything[:k]
    return out


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of slimline and its children (the machine may be shared)
    peak: int  # resident bytes: the largest of slimline's and of any child it waited for

    def text(self, digits: int = 2) -> str:
        return f"{self.wall:.{digits}f} s ({self.cpu:.{digits}f})"


@dataclasses.dataclass(frozen=True)
class Row:
    packages: int
    cold: Run
    warm: Run
    change: Run  # the run of median wall time
    lock_edit: Run
    compressed: int
    unpacked: int
    made: int  # unpacked bytes of the layers slimline makes (not the base's)


def timed_build(app: Path, out: Path, tag: str, cache: Path, *, extra: dict[str, str] | None = None) -> Run:
    """One ``slimline build``, measured by GNU ``time``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rss = out.parent / f"{out.name}-{tag}.time"
    measured = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss)]
    t0 = time.perf_counter()
    sh(
        [*measured, SLIMLINE, "build", str(app), "--to", f"oci:{out}:{tag}", "-q"],
        env={"SLIMLINE_CACHE_DIR": str(cache), **(extra or {})},
    )
    wall = time.perf_counter() - t0
    kib, user, system = rss.read_text().split()[-3:]
    return Run(wall, float(user) + float(system), int(kib) * 1024)


def one_size(work: Path, size: int, deps: list[str], runs: int) -> Row:
    app = write_project(work / f"app-{size}", deps)
    poetry_lock(app)
    count = len(tomllib.loads((app / "poetry.lock").read_text())["package"])
    cache, out = work / f"cache-{size}", work / f"out-{size}"
    print(f"bench: {count} packages ({len(deps)} names): cold build", file=sys.stderr)
    cold = timed_build(app, out, "cold", cache)
    warm = timed_build(app, out, "warm", cache, extra={"SLIMLINE_NO_LAYER_CACHE": "1"})
    timed_build(app, out, "memo", cache)  # writes the memo the one-line changes use
    main = app / "main.py"
    changes = []
    for i in range(runs):
        main.write_text(main.read_text() + f"EDIT = {i}  # {time.time_ns()}\n")
        changes.append(timed_build(app, out, f"change{i}", cache))
    change = sorted(changes, key=lambda r: r.wall)[len(changes) // 2]
    pyproject = app / "pyproject.toml"
    pin = f'    "{EDITED[0]}=={EDITED[1]}",\n'
    pyproject.write_text(pyproject.read_text().replace("dependencies = [\n", "dependencies = [\n" + pin, 1))
    poetry_lock(app)  # Poetry 2 keeps every other locked version
    lock_edit = timed_build(app, out, "lock-edit", cache)
    compressed, unpacked, _ = image_sizes(out, "lock-edit")
    return Row(count, cold, warm, change, lock_edit, compressed, unpacked, made_bytes(out, "lock-edit"))


def made_bytes(layout: Path, tag: str) -> int:
    """Unpacked bytes of the layers of the image ``tag`` that slimline made (history "slimline: ...")."""
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    blob = layout / "blobs" / "sha256"
    manifest = json.loads((blob / entry["digest"][7:]).read_text())
    config = json.loads((blob / manifest["config"]["digest"][7:]).read_text())
    made = [h for h in config["history"] if not h.get("empty_layer")]
    total = 0
    for layer, h in zip(manifest["layers"], made, strict=True):
        if h.get("created_by", "").startswith("slimline: "):
            with gzip.open(blob / layer["digest"][7:], "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
    return total


def table(rows: list[Row], args: argparse.Namespace) -> str:
    def mb(n: int) -> str:
        return f"{n / 1e6:.0f} MB"

    lines = [
        "Locks of the first names in `bench/scale-packages.txt`, locked by Poetry at bench time; "
        f"package-mode = false app on the default base, {os.cpu_count()} cores, slimline on {interpreter()}, "
        f"`bench/scale.py --sizes {args.sizes} --runs {args.runs}` (one-line change: median of {args.runs}). "
        "Wall time, and in brackets the CPU seconds of slimline and its children: other jobs shared "
        f"the cores (load average {os.getloadavg()[0]:.1f} at the end).",
        "",
        "| packages | cold build | warm full build | warm CPU s per 100 MiB made | one-line change | "
        "lock edit (one package) | peak memory cold / warm | image compressed / unpacked |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        # a few KiB made (one small package) give no meaningful rate
        per = (
            f"{r.warm.cpu / (r.made / (100 << 20)):.2f} s" if r.made >= 10 << 20 else f"({mib(r.made)} made)"
        )
        lines.append(
            f"| {r.packages} | {r.cold.text(1)} | {r.warm.text()} | {per} | {r.change.text(3)} | "
            f"{r.lock_edit.text()} | {mb(r.cold.peak)} / {mb(r.warm.peak)} | "
            f"{mib(r.compressed)} / {mib(r.unpacked)} |"
        )
    big = rows[-1].change
    peak = max(max(r.cold.peak, r.warm.peak) for r in rows)
    lines += [
        "",
        f"Targets: one-line change < 0.15 s at the largest lock ({big.wall:.3f} s wall, {big.cpu:.3f} s CPU: "
        f"{'met' if big.wall < 0.15 else 'MISSED'}); peak memory < 300 MB at every size "
        f"({mb(peak)}: {'met' if peak < 300e6 else 'MISSED'}); warm full build linear in unpacked bytes "
        "(the CPU seconds per 100 MiB column should not grow).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,25,125,250", help="lock sizes, in packages (comma-separated)")
    ap.add_argument("--runs", type=int, default=3, help="runs of the one-line change")
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="slimline-scale-"))
    try:
        chosen = prefixes(work, sizes)
        rows = [one_size(work, size, chosen[size], args.runs) for size in sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = table(rows, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    if args.readme:
        write_readme("scale", text)


if __name__ == "__main__":
    main()
