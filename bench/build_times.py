#!/usr/bin/env python3
"""Build times and image size of the example app (FastAPI + uvicorn[standard] + requests).

Measures, with the real ``slimline`` command line, in one run:

* warm full build: downloads and the base are cached, every slimline-made layer is rebuilt
  (``SLIMLINE_NO_LAYER_CACHE=1``);
* rebuild after a one-line change to the app (dependency layers come from the layer cache);
* rebuild with no change;
* rebuild after a one-line change with ``--bytecode`` (the changed project compiled by the
  base's own Python, from the base unpacked once into the cache);
* the warm full build and the one-line-change rebuild again with ``--no-sbom``: what the SBOM
  and provenance (on by default) cost (issue 13: at most 10% and 20 ms).

Targets (issue 2): code-change rebuild <= 0.5 s, warm full build <= 3 s.
Usage: ``.venv/bin/python bench/build_times.py [--runs 5] [--readme] [--json out.json]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, interpreter, measure, mib, sh, write_readme

SLIMLINE = str(Path(sys.executable).parent / "slimline")


def image_sizes(layout: Path, tag: str) -> tuple[int, int, int]:
    """(compressed bytes, unpacked bytes, layer count) of the image tagged ``tag`` in an OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_text())
    compressed = unpacked = 0
    for layer in manifest["layers"]:
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":")[1]
        compressed += layer["size"]
        with gzip.open(blob, "rb") if layer["mediaType"].endswith("gzip") else blob.open("rb") as f:
            while chunk := f.read(1 << 20):
                unpacked += len(chunk)
    return compressed, unpacked, len(manifest["layers"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="slimline-bench-"))
    cache = Path(os.environ.get("SLIMLINE_CACHE_DIR") or "/tmp/slimline-bench-cache")
    env = {"SLIMLINE_CACHE_DIR": str(cache)}
    app = work / "hello"
    shutil.copytree(ROOT / "examples" / "fastapi-app", app)
    main_py = app / "src" / "hello" / "main.py"
    layout = work / "out"

    def build(tag: str, extra: dict[str, str] | None = None, *, flags: tuple[str, ...] = ()) -> None:
        sh(
            [SLIMLINE, "build", str(app), *flags, "--to", f"oci:{layout}:{tag}", "-q"],
            env={**env, **(extra or {})},
        )

    build("warmup")  # fills the download cache and pins the base
    full = measure("warm full build", args.runs, lambda i: build("full", {"SLIMLINE_NO_LAYER_CACHE": "1"}))
    original = main_py.read_text()

    nonce = time.time_ns()  # a text no earlier run has built, so no cached project wheel is reused

    def change(i: int) -> None:
        main_py.write_text(
            original.replace('GREETING = "hello from slimline"', f'GREETING = "hello #{i} {nonce}"')
        )

    code = measure("rebuild after a one-line change", args.runs, lambda i: build(f"change{i}"), before=change)
    main_py.write_text(original)
    build("same")
    same = measure("rebuild with no change", args.runs, lambda i: build("same"))
    compressed, unpacked, count = image_sizes(layout, "same")
    build("pyc-warmup", flags=("--bytecode",))  # compiles the dependencies and the standard library
    pyc = measure(
        "rebuild after a one-line change, with --bytecode",
        args.runs,
        lambda i: build(f"pyc{i}", flags=("--bytecode",)),
        before=lambda i: change(args.runs + i),
    )
    main_py.write_text(original)
    full_off = measure(
        "warm full build, --no-sbom",
        args.runs,
        lambda i: build("full-off", {"SLIMLINE_NO_LAYER_CACHE": "1"}, flags=("--no-sbom",)),
    )
    build("off-warmup", flags=("--no-sbom",))  # its own memo (the command line differs)
    code_off = measure(
        "rebuild after a one-line change, --no-sbom",
        args.runs,
        lambda i: build(f"off{i}", flags=("--no-sbom",)),
        before=lambda i: change(2 * args.runs + i),
    )
    main_py.write_text(original)
    timings = (full, code, same, pyc, full_off, code_off)

    targets = {"warm full build": 3.0, "rebuild after a one-line change": 0.5}
    rows = []
    for t in timings:
        target = targets.get(t.name)
        verdict = (
            ""
            if target is None
            else (f"target <= {target} s: " + ("met" if t.median <= target else "MISSED"))
        )
        rows.append((t, verdict))
    lines = [
        f"Example app `examples/fastapi-app` (FastAPI + uvicorn[standard] + requests) on the default base, "
        f"{os.cpu_count()} cores, slimline running on {interpreter()}, "
        f"`bench/build_times.py --runs {args.runs}`:",
        "",
        "| measurement | median (min, max) | target |",
        "|---|---|---|",
        *[f"| {t.name} | {t.row()} | {v} |" for t, v in rows],
        f"| image size | {mib(compressed)} compressed, {mib(unpacked)} unpacked, {count} layers | |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "timings": {
                        t.name: {"median": t.median, "min": t.low, "max": t.high, "samples": list(t.samples)}
                        for t in timings
                    },
                    "compressed_bytes": compressed,
                    "unpacked_bytes": unpacked,
                    "layers": count,
                },
                indent=2,
            )
        )
    if args.readme:
        write_readme("build", text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
