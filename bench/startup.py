#!/usr/bin/env python3
"""Container start-up: time to import the example app's stack, without and with ``--bytecode``.

Builds ``examples/fastapi-app`` on ``debian:bookworm`` (CPython 3.11, the version slimline runs
on here, which ``--bytecode`` needs) twice, then runs each image with podman + runc and times,
inside the container, ``import asyncio, json, ssl, ...; import fastapi, uvicorn``.  Without
bytecode every start compiles what it imports; with it the ``.pyc`` files ship in the image.
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
    rows = []
    for tag, extra in (("plain", []), ("bytecode", ["--bytecode"])):
        sh(
            [
                SLIMLINE,
                "build",
                ROOT / "examples" / "fastapi-app",
                "--base",
                "debian:bookworm",
                *extra,
                "--to",
                f"oci:{layout}:{tag}",
                "-q",
            ],
            env=env,
        )
        sh([*RUN, f"oci:{layout}:{tag}", "-c", "pass"])  # the first run unpacks the image into podman's store
        samples = tuple(
            float(sh([*RUN, f"oci:{layout}:{tag}", "-c", PROBE]).strip()) for _ in range(args.runs)
        )
        rows.append((tag, Timing(tag, samples), compressed_size(layout, tag)))
    plain, pyc = rows[0][1], rows[1][1]
    lines = [
        f"Importing the example app's stack inside the container (`bench/startup.py --runs {args.runs}`, "
        "bookworm base, podman + runc):",
        "",
        "| image | import time, median (min, max) | compressed size |",
        "|---|---|---|",
        *[
            f"| {'`--bytecode`' if tag == 'bytecode' else 'default'} | {t.row()} | {mib(size)} |"
            for tag, t, size in rows
        ],
        "",
        f"`--bytecode` starts {plain.median / pyc.median:.1f}x faster here, for "
        f"{mib(rows[1][2] - rows[0][2])} more to pull.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        write_readme("startup", text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
