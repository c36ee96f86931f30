#!/usr/bin/env python3
"""slimline against the Poetry tutorial's two-stage Dockerfile (built with buildah), and uv.

For three example apps (``examples/fastapi-app``, ``examples/cli-app``, ``examples/pandas-job``)
this measures, in one run and with the real tools:

1. slimline: cold build, warm full build, rebuild after a one-line change, rebuild with no
   change; image size (compressed and unpacked, whole and without the base), layer count, and
   the blobs uploaded to a local registry by the second push;
2. ``bench/Dockerfile.poetry`` built with ``buildah bud --layers`` on a Python base made with
   ``mmdebstrap`` from the same Debian suite (so the same Python): the same figures;
3. uv as the install-speed anchor: ``uv pip install`` of the same locked set (exported with
   hashes) into an empty venv with a warm cache, beside slimline's warm dependency layers.

Timings are medians of ``--runs`` runs (cold builds: ``--cold-runs``) with min and max; every
ratio compares figures measured in the same run.  Needs root and the tools that
``scripts/setup.sh --system --test`` installs; installs uv into the state directory if missing.

Usage: ``.venv/bin/python bench/compare.py [--runs 3] [--cold-runs 2] [--readme] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sides
from _common import interpreter, write_readme
from apps import APPS, App
from engine import Engine, check_tools
from tests.oci.registry_helpers import registry

from slimline.artifacts.sources import default_index_url

TARGETS = {"warm full build": 5.0, "code change": 10.0}
SIZE_TARGET = 3.0
UV_TARGET = 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per timing (default 3)")
    ap.add_argument("--cold-runs", type=int, default=2, help="runs per cold build (default 2)")
    ap.add_argument("--suite", default="bookworm", help="Debian suite of both bases (default bookworm)")
    ap.add_argument("--apps", default=",".join(a.key for a in APPS), help="which apps (default all)")
    ap.add_argument("--state", type=Path, default=Path("/var/tmp/slimline-bench"), help="kept across runs")
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    ap.add_argument("--json", type=Path, help="write every figure and sample here")
    args = ap.parse_args()
    started = time.perf_counter()
    check_tools()
    sides.clean_env()
    apps = [a for a in APPS if a.key in args.apps.split(",")]
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    engine = Engine(state)
    uv = sides.ensure_uv(state)
    work = Path(tempfile.mkdtemp(prefix="slimline-compare-", dir=state))
    result: dict[str, Any] = {"runs": args.runs, "cold_runs": args.cold_runs, "suite": args.suite, "apps": {}}
    try:
        pybase, mmdebstrap_seconds = engine.base_image(args.suite)
        engine.prune(keep=[pybase])
        result["mmdebstrap_seconds"] = mmdebstrap_seconds
        with registry(work / "registry") as reg:
            pybase_repo = f"bases/pybase-{args.suite}"
            engine.push(pybase, f"{reg.host}/{pybase_repo}:latest")
            setup = sides.Setup(
                work=work,
                engine=engine,
                registry_host=reg.host,
                registry_log=reg.log,
                suite=args.suite,
                pybase=pybase,
                pybase_repo=pybase_repo,
                index_url=default_index_url(),
                uv=uv,
                runs=args.runs,
                cold_runs=args.cold_runs,
            )
            for app in apps:
                print(f"bench: {app.key}: slimline", file=sys.stderr)
                sl = sides.measure_slimline(app, setup)
                print(f"bench: {app.key}: Dockerfile with buildah", file=sys.stderr)
                df = sides.measure_dockerfile(app, setup)
                print(f"bench: {app.key}: uv", file=sys.stderr)
                python = sides.host_python(sl["python"])
                result["apps"][app.key] = {
                    "label": app.label,
                    "slimline": sl,
                    "dockerfile": df,
                    "uv": {**sides.measure_uv(app, setup, python), "python": str(python)},
                }
        engine.prune(keep=[pybase])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["total_seconds"] = time.perf_counter() - started
    result["cores"] = os.cpu_count()
    result["interpreter"] = interpreter()
    text = render(result, apps)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.readme:
        write_readme("compare", text)


# --- the table -----------------------------------------------------------------------------------


def _t(d: dict[str, Any]) -> str:
    return f"{d['median']:.2f} s ({d['min']:.2f}–{d['max']:.2f})"


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "n/a"


def _verdict(value: float, target: float, *, at_least: bool = True) -> str:
    ok = value >= target if at_least else value <= target
    sign = "≥" if at_least else "≤"
    return f"{sign} {target:g}x: " + ("met" if ok else "**missed**")


def render(r: dict[str, Any], apps: list[App]) -> str:
    rows = []
    uv_rows = []
    pythons = set()
    for app in apps:
        d = r["apps"][app.key]
        sl, df, uv = d["slimline"], d["dockerfile"], d["uv"]
        pythons |= {sl["python"], df["python"]}
        name = f"{app.key} ({app.label})"
        for key, label in (
            ("cold build", "cold build"),
            ("warm full build", "warm full build"),
            ("code change", "rebuild after a one-line change"),
            ("no change", "rebuild with no change"),
        ):
            a, b = sl["timings"][key], df["timings"][key]
            ratio = b["median"] / a["median"]
            target = TARGETS.get(key)
            rows.append(
                f"| {name} | {label} | {_t(a)} | {_t(b)} | {ratio:.1f}x faster | "
                f"{_verdict(ratio, target) if target else ''} |"
            )
            name = ""
        a, b = sl["timings"]["lock edit"], df["timings"]["warm full build"]
        rows.append(
            f"| | rebuild after a lock edit that changes no package, and a line (the Dockerfile's "
            f"warm full build) | {_t(a)} | {_t(b)} | {b['median'] / a['median']:.1f}x faster | |"
        )
        ss, ds, so, sm = sl["size"], df["size"], sl["size_on_dockerfile_base"], sl["size_slim"]
        rows += [
            f"| | image, unpacked (compressed) | {_mib(ss['unpacked'])} ({_mib(ss['compressed'])}) | "
            f"{_mib(ds['unpacked'])} ({_mib(ds['compressed'])}) | "
            f"{_ratio(ds['unpacked'], ss['unpacked'])} smaller "
            f"({_ratio(ds['compressed'], ss['compressed'])}) | "
            f"{_verdict(ds['unpacked'] / ss['unpacked'], SIZE_TARGET)} |",
            f"| | image with `--slim`, unpacked (compressed) | {_mib(sm['unpacked'])} "
            f"({_mib(sm['compressed'])}) | "
            f"{_mib(ds['unpacked'])} ({_mib(ds['compressed'])}) | "
            f"{_ratio(ds['unpacked'], sm['unpacked'])} smaller "
            f"({_ratio(ds['compressed'], sm['compressed'])}) | "
            f"{_verdict(ds['unpacked'] / sm['unpacked'], SIZE_TARGET)} |",
            f"| | app part = image minus its base, unpacked (compressed) | {_mib(ss['app_unpacked'])} "
            f"({_mib(ss['app_compressed'])}) | {_mib(ds['app_unpacked'])} ({_mib(ds['app_compressed'])}) | "
            f"{_ratio(ds['app_unpacked'], ss['app_unpacked'])} smaller | |",
            f"| | image on the *same* base (slimline built on the Dockerfile's base), unpacked "
            f"(compressed) | {_mib(so['unpacked'])} ({_mib(so['compressed'])}) | {_mib(ds['unpacked'])} "
            f"({_mib(ds['compressed'])}) | {_ratio(ds['unpacked'], so['unpacked'])} smaller | "
            f"(for reference) |",
            f"| | layers | {ss['layers']} | {ds['layers']} | | |",
            f"| | blobs uploaded by the second push (after a one-line change) | "
            f"{sl['second_push_blob_uploads']} | {df['second_push_blob_uploads']} | | |",
        ]
        hard = uv["timings"]["uv pip install (warm, default link mode)"]
        copy = uv["timings"]["uv pip install (warm, --link-mode=copy)"]
        full = sl["timings"]["warm full build"]
        made = sl["timings"]["layers in a warm full build"]
        cached = sl["timings"]["lock edit"]
        uv_rows.append(
            f"| {app.key} | {uv['packages']} | {_t(hard)} | {_t(cached)} | "
            f"{_ratio(cached['median'], hard['median'])} | "
            f"{_verdict(cached['median'] / hard['median'], UV_TARGET, at_least=False)} | "
            f"{_t(copy)} | {_t(made)} | {_ratio(made['median'], copy['median'])} | "
            f"{_verdict(made['median'] / copy['median'], UV_TARGET, at_least=False)} | "
            f"{_t(full)} |"
        )
    base_note = (
        f"made by mmdebstrap in {r['mmdebstrap_seconds']:.0f} s in this run"
        if r.get("mmdebstrap_seconds")
        else "cached from an earlier run"
    )
    lines = [
        "### slimline vs the Poetry tutorial's Dockerfile, and uv",
        "",
        "Benchmarks: after `scripts/setup.sh --system --test`, run `.venv/bin/python bench/compare.py "
        "[--runs N] [--cold-runs N] [--readme] [--json out.json]` as root. It starts a local registry, "
        "makes the Dockerfile's base with mmdebstrap on first use and installs uv if missing "
        "(kept in `/var/tmp/slimline-bench`), and prints the tables below.",
        "",
        f"Written by `.venv/bin/python bench/compare.py --runs {r['runs']} --cold-runs {r['cold_runs']} "
        f"--readme` on {r['cores']} cores, slimline running on {r['interpreter']} (the whole run took "
        f"{r['total_seconds'] / 60:.1f} min). "
        f"Both images run Python {', '.join(sorted(pythons))} from Debian {r['suite']}: slimline on its "
        f"own base assembled from Debian packages, the Dockerfile ([`bench/Dockerfile.poetry`]"
        f"(bench/Dockerfile.poetry)) with `buildah bud --layers` on `debian {r['suite']}` minbase + "
        f"python3 + python3-venv + ca-certificates ({base_note}). Times: median (min–max) of "
        f"{r['runs']} runs, cold builds of {r['cold_runs']}; ratios = Dockerfile / slimline.",
        "",
        "| app | measurement | slimline | Dockerfile + buildah | ratio | target |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "uv as the install-speed anchor: `uv pip install` of the same locked set (exported from "
        "poetry.lock with hashes by `bench/export.py`) into an empty venv, warm uv cache. Two "
        "pairs, each doing the same kind of work: uv's default hard-links files from its cache of "
        "unpacked wheels, as slimline takes finished layers from its layer cache (measured as the "
        "whole `slimline build` after a lock edit that changes no package: lock read, wheels "
        "chosen, every dependency layer found in the cache, image written); with "
        "`--link-mode=copy` uv writes every byte, as slimline does when it makes every layer from "
        "cached wheels (the time its warm full build spends making layers, which slimline measures "
        "and reports with `-v`; it also tars, hashes and gzips them). The last column is the whole "
        "warm full build, start to written layout.",
        "",
        "| app | packages | uv, hard links (default) | slimline, from its layer cache | ratio | "
        "target | uv, `--link-mode=copy` | slimline, making every layer | ratio | target | "
        "slimline, whole warm full build |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *uv_rows,
        "",
        *NOTES,
    ]
    return "\n".join(lines)


NOTES = [
    "What each figure means:",
    "",
    "- **cold build**: slimline with an empty cache except the pinned base (made beforehand, as the "
    "Dockerfile's base is): every wheel downloaded and hash-checked, the project's build "
    "environment made, every layer written. buildah with `--no-cache` after removing every image "
    "but the base and emptying the cache mounts: Poetry and the locked wheels downloaded.",
    "- **warm full build**: a line of the app changed and, for slimline, `SLIMLINE_NO_LAYER_CACHE=1` "
    "(downloads cached, the project rebuilt, every slimline-made layer rebuilt and recompressed but the "
    "standard library's bytecode, made once per base as the base is); "
    "for buildah, a comment appended to poetry.lock as well: `poetry install` and every later step "
    "rerun, with Poetry's download cache warm (`RUN --mount=type=cache`) and the layer that "
    "installs Poetry reused.",
    "- **one-line change / no change**: a line appended to the app's source, or nothing changed. "
    "slimline serves both from its build memo: with the command line, pyproject.toml, poetry.lock "
    "and the base pin unchanged it remakes only the project layer, and a poetry-core project's "
    "wheel is derived from its last build when only module contents changed (byte-for-byte what "
    "the backend writes). "
    "Docker's layer cache is keyed by the Dockerfile's steps in order, so any change to the lock "
    "reinstalls every dependency; slimline's is keyed by what goes into each layer (the wheels' "
    "hashes), so dependency layers survive lock edits that do not change them, and are shared "
    "between projects.",
    "- **sizes** are read back from the local registry: compressed = the layer blobs a pull "
    "downloads, unpacked = the layer tars. *App part* subtracts each image's own base layers. "
    "The Dockerfile's venv is Poetry's (with pip); slimline's holds only the locked "
    "distributions. Most of the whole-image difference is the base: slimline's has no shell, "
    "apt, dpkg or perl.",
    "- **the size target** is checked on the whole image, both built on Python from the same "
    "Debian release (the issue's like-for-like set-up: the Dockerfile's base is that Python made "
    "from Debian packages). The row *on the same base* builds slimline's image on the "
    "Dockerfile's own base image: then both images hold the same base bytes and the same "
    "unpacked wheels, so it is about 1x by construction and no tool could make it 3x; it shows "
    "that slimline's venv adds nothing the Dockerfile's lacks.",
    "- slimline's outputs are compressed, push-ready layers; buildah keeps layers uncompressed in "
    "its store and compresses when pushing, so its build times do not include compression.",
    "- **second push**: blobs the registry received when the image was pushed again after a "
    "one-line change (layers and config; blobs already there are skipped by both).",
]


if __name__ == "__main__":
    main()
