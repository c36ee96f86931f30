#!/usr/bin/env python3
"""slimline's builder against a two-stage Dockerfile with a builder stage, for compiled packages.

``examples/compiled-app`` depends on python-ldap, psycopg2 and mysqlclient, which the package
index has only as sdists for Linux: each must be compiled against Debian's ``-dev`` packages.
This measures, in one run and with the real tools:

1. slimline: the cold build for linux/amd64, from a cache holding only the pinned base
   ``debian:SUITE`` (the builder is assembled from Debian packages, the three sdists are compiled
   in it, the libraries they link are added to the base); rebuilds after a one-line change,
   after a lock edit that changes no package and with no change, each of which must build
   nothing (no ``in the builder`` line in its ``-v`` output); the cold build for linux/arm64 (the
   builder's compiler under qemu-user); image sizes; where the cold builds spent their time,
   from the step times ``-v`` prints (:mod:`steps`);
2. ``bench/Dockerfile.compiled`` (a builder stage with build-essential, python3-dev and the same
   ``-dev`` packages; a runtime stage with the libraries slimline reported adding) built with
   ``buildah bud --layers`` on the same mmdebstrap base as ``bench/compare.py``: the same figures
   for linux/amd64 (:func:`sides.measure_dockerfile`).

Timings are medians of ``--runs`` runs (cold builds: ``--cold-runs``; arm64: ``--arm64-runs``)
with min and max.  Needs root, the tools ``scripts/setup.sh --system --test`` installs, and
qemu-user-static with binfmt_misc for arm64 (``--arm64-runs 0`` leaves it out).

Usage: ``.venv/bin/python bench/compiled.py [--runs 3] [--cold-runs 2] [--arm64-runs N]
[--readme] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import registry
import sides
import steps
from _common import ROOT, Timing, interpreter, measure, mib, settle, sh, write_readme
from apps import COMPILED, App, lock_edit, one_line_change, slimline_copy
from engine import Engine, check_tools
from packaging.utils import parse_wheel_filename
from tests.oci.registry_helpers import registry as local_registry

from slimline.artifacts import sandbox
from slimline.artifacts.sources import default_index_url
from slimline.errors import SlimlineError
from slimline.project import lockfile

DOCKERFILE = ROOT / "bench" / "Dockerfile.compiled"
COLD_TARGET = 3.0
BUILT = re.compile(r"\] building (\S+) \S+ for \S+ in the builder")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per rebuild timing (default 3)")
    ap.add_argument("--cold-runs", type=int, default=2, help="runs per amd64 cold build (default 2)")
    ap.add_argument("--arm64-runs", type=int, help="runs of the arm64 cold build (default: --cold-runs)")
    ap.add_argument("--suite", default="bookworm", help="Debian suite of both bases (default bookworm)")
    ap.add_argument("--state", type=Path, default=Path("/var/tmp/slimline-bench"), help="kept across runs")
    ap.add_argument("--readme", action="store_true", help="write the tables into README.md")
    ap.add_argument("--json", type=Path, help="write every figure and sample here")
    args = ap.parse_args()
    arm64_runs = args.cold_runs if args.arm64_runs is None else args.arm64_runs
    started = time.perf_counter()
    check_tools()
    sides.clean_env()
    _no_host_pip_config()
    if arm64_runs:
        try:
            sandbox.check("arm64")
        except SlimlineError as err:
            raise SystemExit(f"bench: {err} (or run with --arm64-runs 0)") from err
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    engine = Engine(state)
    work = Path(tempfile.mkdtemp(prefix="slimline-compiled-", dir=state))
    result: dict[str, Any] = {"runs": args.runs, "cold_runs": args.cold_runs, "arm64_runs": arm64_runs}
    result["suite"] = args.suite
    result["load_at_start"] = os.getloadavg()[0]  # other work on the machine skews every figure
    try:
        pybase, result["mmdebstrap_seconds"] = engine.base_image(args.suite)
        engine.prune(keep=[pybase])
        with local_registry(work / "registry") as reg:
            pybase_repo = f"bases/pybase-{args.suite}"
            engine.push(pybase, f"{reg.host}/{pybase_repo}:latest")
            setup = sides.Setup(
                work=work, engine=engine, registry_host=reg.host, registry_log=reg.log, suite=args.suite,
                pybase=pybase, pybase_repo=pybase_repo, index_url=default_index_url(), runs=args.runs,
                cold_runs=args.cold_runs,
            )  # fmt: skip
            print("bench: compiled: cold builds, slimline's and the Dockerfile's in turn", file=sys.stderr)
            project = slimline_copy(COMPILED, work / COMPILED.key / "slimline" / "project")
            amd64 = _ColdRuns(COMPILED, project, setup, "linux/amd64")
            amd64.once()  # the libraries it adds to the base are the Dockerfile's runtime packages
            packages = {"BUILD_PACKAGES": " ".join(COMPILED.build_packages())}
            packages["RUNTIME_PACKAGES"] = " ".join(amd64.added)
            docker = sides.DockerfileSide(COMPILED, setup, dockerfile=DOCKERFILE, extra_args=packages)
            docker_cold = []
            for i in range(args.cold_runs):
                docker_cold.append(docker.cold())
                if i + 1 < args.cold_runs:
                    amd64.once()
            print("bench: compiled: slimline", file=sys.stderr)
            result["slimline"] = measure_slimline(COMPILED, setup, amd64, arm64_runs=arm64_runs)
            print("bench: compiled: Dockerfile with buildah", file=sys.stderr)
            cold = Timing("cold build", tuple(docker_cold))
            result["dockerfile"] = sides.measure_dockerfile(COMPILED, setup, side=docker, cold=cold)
        engine.prune(keep=[pybase])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result |= {"total_seconds": time.perf_counter() - started, "cores": os.cpu_count()}
    result["load_at_end"] = os.getloadavg()[0]
    result["interpreter"] = interpreter()
    text = render(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.readme:
        write_readme("compiled", text)


def _no_host_pip_config() -> None:
    """The pip that installs a builder's build requirements reads the index only, as the pip in
    the Dockerfile's build does (not this machine's pip configuration and wheel directories)."""
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    os.environ.pop("PIP_FIND_LINKS", None)
    os.environ.pop("PIP_EXTRA_INDEX_URL", None)


def sdist_only(project: Path) -> list[str]:
    """The locked packages with no wheel that installs on Linux: what a build must compile."""

    def linux(filename: str) -> bool:
        tags = parse_wheel_filename(filename)[3]
        return any(t.platform == "any" or "linux" in t.platform for t in tags)

    lock = lockfile.load(project / "poetry.lock")
    return sorted(
        p.name for p in lock.packages if not any(f.kind == "wheel" and linux(f.filename) for f in p.files)
    )


# --- slimline ------------------------------------------------------------------------------------


def measure_slimline(app: App, s: sides.Setup, amd64: _ColdRuns, *, arm64_runs: int) -> dict[str, Any]:
    """The cold builds (``amd64``'s, made already; arm64's), the three rebuilds, sizes and the cold
    builds' phases.

    * cold: see :class:`_ColdRuns`;
    * code change, lock edit, no change: in the warm amd64 cache, as in ``bench/compare.py``;
      none may build anything in the builder (counted, and shown in the table).
    """
    project = amd64.project
    here = project.parent
    base = f"debian:{s.suite}"
    out: dict[str, Any] = {"compiled": amd64.expected, "timings": {}, "phases": {}, "added": amd64.added}
    runs = [amd64]
    if arm64_runs:
        runs.append(_ColdRuns(app, project, s, "linux/arm64"))
        for _ in range(arm64_runs):
            runs[-1].once()
    for cold in runs:
        out["timings"][f"cold build {cold.platform}"] = sides.timing_json(cold.timing())
        out["phases"][cold.platform] = cold.phases()
    warm = here / "cache-amd64"
    rebuilt: dict[str, int] = {}

    def rebuild(name: str) -> Callable[[int], None]:
        def action(_i: int) -> None:
            err = sides.run_stderr(
                sides.slimline_build(project, base, warm, f"oci:{here}/out:w", verbose=True)
            )
            rebuilt[name] = rebuilt.get(name, 0) + (" in the builder" in err)

        return action

    change = rebuild("code change")
    timings = (
        measure("code change", s.runs, change, before=lambda i: one_line_change(project, app, i)),
        measure("lock edit", s.runs, rebuild("lock edit"), before=lambda i: lock_edit(project, app, 500 + i)),
        measure("no change", s.runs, rebuild("no change")),
    )
    out["timings"] |= {t.name: sides.timing_json(t) for t in timings}
    out["rebuilds_that_built"] = rebuilt
    for platform, cache in (("linux/amd64", warm), ("linux/arm64", here / "cache-arm64")):
        if cache.is_dir():
            out.setdefault("size", {})[platform] = _size(app, s, project, cache, platform, out["added"])
    return out


class _ColdRuns:
    """Cold builds of ``project`` for ``platform``, one per :meth:`once`: each from a fresh copy of
    a cache in which ``slimline base`` made and pinned ``debian:SUITE`` (with the app's
    ``[tool.slimline.debian] packages``; its layers, what it holds, its file system for the
    bytecode compiler) and nothing else: no builder, no download, no built wheel, not the
    libraries the built wheels link (the Dockerfile installs those in its cold build too).  Each
    must compile exactly the locked sdist-only packages."""

    def __init__(self, app: App, project: Path, s: sides.Setup, platform: str) -> None:
        self.app, self.project, self.s, self.platform = app, project, s, platform
        self.expected = sdist_only(project)
        arch, self.base = platform.rpartition("/")[2], f"debian:{s.suite}"
        here = project.parent
        self.template, self.cache = here / f"base-{arch}", here / f"cache-{arch}"
        self.dest = f"oci:{here}/out:{arch}"
        packages = app.debian_packages()
        to = f"oci:{here / 'bases'}:{arch}"
        sh(sides.slimline_base(self.base, packages, self.template, to, platform=platform), timeout=900)
        self.samples: list[float] = []
        self.runs_phases: list[dict[str, tuple[float, int]]] = []
        self.added: list[str] = []

    def once(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)
        shutil.copytree(self.template, self.cache)
        settle()  # nothing the run before wrote is still being written
        t0 = time.perf_counter()
        build = sides.slimline_build(
            self.project, self.base, self.cache, self.dest, verbose=True, platform=self.platform
        )
        err = sides.run_stderr(build)
        self.samples.append(time.perf_counter() - t0)
        built = sorted(BUILT.findall(err))
        if built != self.expected:
            raise SystemExit(
                f"bench: the cold {self.platform} build compiled {built or 'nothing'}, not {self.expected}"
            )
        pinned = rf"\]\s+base {re.escape(self.base)} \({re.escape(self.platform)}[^)]*\): pinned "
        if not re.search(pinned, err):
            raise SystemExit(
                f"bench: the cold {self.platform} build did not use the base pinned in its cache"
            )
        self.runs_phases.append(steps.phases(err, self.samples[-1]))
        named = " ".join(self.runs_phases[-1])
        if "builder: " not in named or "compiling in the builder" not in named:
            raise SystemExit(
                f"bench: bench/steps.py's rules no longer match slimline's -v output:\n{err[-3000:]}"
            )
        self.added = sides.added_packages(err)

    def timing(self) -> Timing:
        return Timing(f"cold build {self.platform}", tuple(self.samples))

    def phases(self) -> dict[str, dict[str, float]]:
        """Each phase's median (seconds) and in how many steps it occurred at most."""
        runs = self.runs_phases
        return {
            n: {
                "median": statistics.median(r.get(n, (0.0, 0))[0] for r in runs),
                "steps": max(r.get(n, (0.0, 0))[1] for r in runs),
            }
            for n in runs[0]
        }


def _size(
    app: App, s: sides.Setup, project: Path, cache: Path, platform: str, added: list[str]
) -> dict[str, Any]:
    """The image (pushed from the warm cache) and its base read back from the local registry;
    the image is run (under qemu-user for arm64) and must import the app's compiled modules."""
    arch = platform.rpartition("/")[2]
    repo, base_repo = f"{app.key}/slimline-{arch}", f"bases/slimline-{s.suite}-compiled-{arch}"
    image = f"{s.registry_host}/{repo}:1"
    sides.run_stderr(
        sides.slimline_build(project, f"debian:{s.suite}", cache, f"docker://{image}", platform=platform)
    )
    packages = [*app.debian_packages(), *added]
    to = f"docker://{s.registry_host}/{base_repo}:1"
    sh(sides.slimline_base(f"debian:{s.suite}", packages, cache, to, platform=platform), timeout=900)
    check = sides.CHECK.format(module=app.module)
    python = s.engine.run(image, "-c", check, entrypoint="/app/.venv/bin/python", platform=platform).strip()
    return {
        **sides.size_json(
            registry.image_size(s.registry_host, repo, "1"),
            registry.image_size(s.registry_host, base_repo, "1"),
        ),
        "python": python,
    }


# --- the tables ----------------------------------------------------------------------------------


def _t(d: dict[str, Any]) -> str:
    return f"{d['median']:.2f} s ({d['min']:.2f}–{d['max']:.2f})"


def _size_cell(size: dict[str, Any], key: str = "") -> str:
    return f"{mib(size[key + 'unpacked'])} ({mib(size[key + 'compressed'])})"


def render(r: dict[str, Any]) -> str:
    sl, df = r["slimline"], r["dockerfile"]
    st, dt = sl["timings"], df["timings"]
    cold = st["cold build linux/amd64"]
    ratio = dt["cold build"]["median"] / cold["median"]
    verdict = f"≥ {COLD_TARGET:g}x: " + ("met" if ratio >= COLD_TARGET else "**missed**")
    rows = [
        f"| cold build, linux/amd64 | {_t(cold)} | {_t(dt['cold build'])} | {ratio:.1f}x faster | {verdict} |"
    ]
    for key, dkey, label in (
        ("code change", "code change", "rebuild after a one-line change"),
        ("lock edit", "warm full build", "rebuild after a lock edit that changes no package, and a line"),
        ("no change", "no change", "rebuild with no change"),
    ):
        built = sl["rebuilds_that_built"].get(key, 0)
        target = "builds nothing: " + (
            f"met (no `in the builder` line in {r['runs']} runs)"
            if not built
            else f"**missed** ({built} built)"
        )
        faster = dt[dkey]["median"] / st[key]["median"]
        rows.append(f"| {label} | {_t(st[key])} | {_t(dt[dkey])} | {faster:.1f}x faster | {target} |")
    arm = st.get("cold build linux/arm64")
    if arm:
        rows.append(
            f"| cold build, linux/arm64 (compiled under qemu-user) | {_t(arm)} | not measured (see below) | "
            f"{arm['median'] / cold['median']:.1f}x the amd64 build | reported |"
        )
    amd, ds = sl["size"]["linux/amd64"], df["size"]
    rows += [
        f"| image, unpacked (compressed) | {_size_cell(amd)} | {_size_cell(ds)} | "
        f"{ds['unpacked'] / amd['unpacked']:.1f}x smaller | |",
        f"| app part = image minus its base, unpacked (compressed) | {_size_cell(amd, 'app_')} | "
        f"{_size_cell(ds, 'app_')} | | |",
        f"| layers | {amd['layers']} | {ds['layers']} | | |",
    ]
    if "linux/arm64" in sl["size"]:
        arm_size = _size_cell(sl["size"]["linux/arm64"])
        rows.append(f"| image for linux/arm64, unpacked (compressed) | {arm_size} | | | |")
    return "\n".join([*_head(r), *rows, "", *_phase_table(sl), "", *NOTES])


def _head(r: dict[str, Any]) -> list[str]:
    sl, df = r["slimline"], r["dockerfile"]
    base_note = (
        f"made by mmdebstrap in {r['mmdebstrap_seconds']:.0f} s in this run"
        if r.get("mmdebstrap_seconds")
        else "cached from an earlier run"
    )
    runs = f"{r['runs']} runs, amd64 cold builds of {r['cold_runs']}, arm64 cold builds of {r['arm64_runs']}"
    return [
        "### Compiled dependencies: slimline's builder vs a Dockerfile's builder stage",
        "",
        "Run `.venv/bin/python bench/compiled.py [--runs N] [--cold-runs N] [--arm64-runs N] [--readme] "
        "[--json out.json]` as root (state kept in `/var/tmp/slimline-bench`, as for `bench/compare.py`).",
        "",
        f"Written by `.venv/bin/python bench/compiled.py --runs {r['runs']} --cold-runs {r['cold_runs']} "
        f"--arm64-runs {r['arm64_runs']} --readme` on {r['cores']} cores, slimline running on "
        f"{r['interpreter']} (the whole run took {r['total_seconds'] / 60:.1f} min; load average "
        f"{r['load_at_start']:.1f} at its start, {r['load_at_end']:.1f} at its end). The app, "
        "[`examples/compiled-app`](examples/compiled-app), depends on "
        f"{', '.join(sl['compiled'])}, which the index has only as sdists for Linux. Both images run "
        f"Python {sl['size']['linux/amd64']['python']} from Debian {r['suite']}: slimline's on its own base, "
        "with the builder it assembles from the same suite; the Dockerfile "
        "([`bench/Dockerfile.compiled`](bench/Dockerfile.compiled): a builder stage with build-essential, "
        "python3-dev and the same `-dev` packages, a runtime stage with the libraries slimline added: "
        f"{', '.join(sl['added'])}) with `buildah bud --layers` on `debian {r['suite']}` minbase + python3 + "
        f"python3-venv + ca-certificates ({base_note}), Python {df['python']}. Times: median (min–max) of "
        f"{runs}; ratios = Dockerfile / slimline.",
        "",
        "| measurement | slimline | Dockerfile + buildah | ratio | target |",
        "|---|---|---|---|---|",
    ]


def _phase_table(sl: dict[str, Any]) -> list[str]:
    platforms = list(sl["phases"])
    names = list(dict.fromkeys(n for p in platforms for n in sl["phases"][p]))
    rows = []
    for name in names:
        cells = []
        for p in platforms:
            phase = sl["phases"][p].get(name)
            times = (
                f" ({phase['steps']} times)" if phase and phase["steps"] > 1 and name != steps.REST else ""
            )
            cells.append(f"{phase['median']:.1f} s{times}" if phase else "")
        rows.append(f"| {name} | {' | '.join(cells)} |")
    totals = " | ".join(f"{sl['timings'][f'cold build {p}']['median']:.1f} s" for p in platforms)
    return [
        "Where slimline's cold builds spent their time (the step times `slimline build -v` prints, "
        "grouped by `bench/steps.py`; medians over the cold runs):",
        "",
        f"| phase | {' | '.join(platforms)} |",
        "|---|" + "---|" * len(platforms),
        *rows,
        f"| **whole cold build** | {totals} |",
    ]


NOTES = [
    "What each figure means:",
    "",
    "- **cold build**: slimline from a cache in which `slimline base` made and pinned the plain "
    "`debian:` base and nothing else (made beforehand, as the Dockerfile's base is; like a base "
    "buildah pulled, it is kept unpacked too, where slimline's bytecode compiler runs it): the builder "
    "is assembled (Release files verified, its packages resolved, its .debs downloaded and unpacked straight "
    "into its root file system), the "
    "build requirements (setuptools) installed as wheels for the image, the three sdists compiled in "
    "the builder, and the base assembled again with the libraries they link; the bench checks that "
    "exactly the sdist-only packages were compiled. buildah with `--no-cache` after removing every "
    "image but the base and emptying the cache mounts: `apt-get update` and `apt-get install` in "
    "both stages, Poetry installed, `poetry install` (which builds the sdists, in parallel). The "
    "two sides' cold builds alternate (slimline's first: the libraries it adds are the Dockerfile's "
    "runtime packages), so that a machine whose speed drifts during the run slows both alike; each "
    "starts after a sync and a few seconds' wait, so that neither pays for writing back the other's files.",
    "- **rebuilds** run in the warm cache of the cold build. slimline's one-line change and no "
    "change are served from its build memo, as for the apps of `bench/compare.py`; after a lock "
    "edit the wheels built before are found by their sdists' hashes. The target column counts the "
    "rebuilds whose `-v` output had a line `building ... in the builder`. The Dockerfile's "
    "one-line change reruns its last `COPY`; its lock edit reruns `poetry install` with Poetry's "
    "cache mount warm, and the runtime stage's `COPY` of the venv.",
    "- **linux/arm64** is built by slimline from the same amd64 host: its builder holds arm64 "
    "packages, and the compiler runs under qemu-user (binfmt_misc), which is most of the figure. "
    "The Dockerfile is not built for arm64 here: under qemu, buildah would run apt, dpkg, pip and "
    "Poetry emulated as well as the compiler, on an arm64 base this bench does not make, which "
    "would add tens of minutes to each run for a figure the issue does not ask for.",
    "- **sizes** are read back from a local registry, as in `bench/compare.py`; slimline's base "
    "here includes the libraries it added for the built wheels, and the Dockerfile's base is "
    "its `FROM` image (its runtime stage's apt layer counts as app part).",
    "- slimline's pip (which fetches build requirements) reads no pip configuration of this "
    "machine, so it uses the index only, as the pip inside the Dockerfile's build does.",
]


if __name__ == "__main__":
    main()
