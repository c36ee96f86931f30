#!/usr/bin/env python3
"""Container start-up: time to import the example app's stack, by how much bytecode ships.

Builds ``examples/fastapi-app`` on ``debian:bookworm`` (CPython 3.11, the version slimline runs
on here, which ``--bytecode`` needs) three times: with no ``.pyc`` at all
(``--no-stdlib-bytecode``), as by default (the base's standard library compiled, in a layer
above the base), and with ``--bytecode`` (the dependencies and the app too).  Each image runs
with podman + runc and times, inside the container, ``import asyncio, json, ssl, ...; import
fastapi, uvicorn``: what has no ``.pyc`` is compiled at every start (user 65532 cannot write
one).  Runs of the three images are interleaved, so a busy machine slows all of them alike.
Also prints each image's compressed size.

Usage: ``.venv/bin/python bench/startup.py [--runs 5] [--readme]`` (needs podman and runc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Timing, mib, sh, write_readme

SLIMLINE = str(Path(sys.executable).parent / "slimline")
PROBE = (
    "import time; t = time.perf_counter(); "
    "import asyncio, json, email.message, http.client, ssl, decimal, logging, typing; "
    "import fastapi, uvicorn; print(time.perf_counter() - t)"
)
RUN = [
    "podman",
    "--runtime",
    "runc",
    "--cgroup-manager=cgroupfs",
    "run",
    "--rm",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--entrypoint",
    "/app/.venv/bin/python",
]


def compressed_size(layout: Path, tag: str) -> int:
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    return sum(int(layer["size"]) for layer in manifest["layers"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--readme", action="store_true")
    args = ap.parse_args()
    if shutil.which("podman") is None:
        raise SystemExit("bench: podman is required (scripts/setup.sh --system)")
    env = {"SLIMLINE_CACHE_DIR": os.environ.get("SLIMLINE_CACHE_DIR") or "/tmp/slimline-bench-cache"}
    work = Path(tempfile.mkdtemp(prefix="slimline-startup-"))
    layout = work / "out"
    variants: tuple[tuple[str, list[str]], ...] = (
        ("none", ["--no-stdlib-bytecode"]),
        ("default", []),
        ("bytecode", ["--bytecode"]),
    )
    for tag, extra in variants:
        app = str(ROOT / "examples" / "fastapi-app")
        build = [SLIMLINE, "build", app, "--base", "debian:bookworm", *extra]
        sh([*build, "--to", f"oci:{layout}:{tag}", "-q"], env=env)
        sh([*RUN, f"oci:{layout}:{tag}", "-c", "pass"])  # the first run unpacks the image into podman's store
    samples: dict[str, list[float]] = {tag: [] for tag, _ in variants}
    for _ in range(args.runs):
        for tag in samples:
            samples[tag].append(float(sh([*RUN, f"oci:{layout}:{tag}", "-c", PROBE]).strip()))
    rows = [(tag, Timing(tag, tuple(samples[tag])), compressed_size(layout, tag)) for tag, _ in variants]
    (_, none, none_size), (_, default, default_size), (_, pyc, pyc_size) = rows
    names = {"none": "`--no-stdlib-bytecode` (no .pyc)", "default": "default", "bytecode": "`--bytecode`"}
    lines = [
        f"Importing the example app's stack inside the container (`bench/startup.py --runs {args.runs}`, "
        "bookworm base, podman + runc, runs interleaved):",
        "",
        "| image | import time, median (min, max) | compressed size |",
        "|---|---|---|",
        *[f"| {names[tag]} | {t.row()} | {mib(size)} |" for tag, t, size in rows],
        "",
        f"The default image takes {default.median / pyc.median:.1f}x as long as `--bytecode` to import "
        f"(no .pyc: {none.median / pyc.median:.1f}x), for {mib(default_size - none_size)} "
        f"({(default_size - none_size) / none_size:.0%}) more than no .pyc; `--bytecode` costs "
        f"{mib(pyc_size - none_size)} ({(pyc_size - none_size) / none_size:.0%}) more.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        write_readme("startup", text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
