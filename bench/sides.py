"""The measurements of one app: slimline, the tutorial Dockerfile with buildah, and uv.

Each ``measure_*`` function runs the real tools and returns plain numbers (seconds, bytes,
counts) in a dict that :mod:`compare` turns into the table and the JSON.  What each timing
means is written next to it; the README's notes repeat it.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import registry
from _common import ROOT, Timing, measure, settle, sh
from apps import App, dockerfile_copy, lock_edit, one_line_change, repo_name, slimline_copy
from engine import CA_BUNDLE, Engine
from export import host_target, requirements

from slimline.project import lockfile

SLIMLINE = str(Path(sys.executable).parent / "slimline")
DOCKERFILE = ROOT / "bench" / "Dockerfile.poetry"
CHECK = "import platform, {module}; print(platform.python_version())"


@dataclass(frozen=True)
class Setup:
    """What every app's measurement shares."""

    work: Path  # scratch for this bench run
    engine: Engine
    registry_host: str  # 127.0.0.1:PORT
    registry_log: Path
    suite: str  # Debian suite of both bases
    pybase: str  # the Dockerfile's base in the private store
    pybase_repo: str  # the same base in the local registry (tag "latest")
    index_url: str
    runs: int
    cold_runs: int
    uv: Path | None = None  # for measure_uv only


def timing_json(t: Timing) -> dict[str, Any]:
    return {"median": t.median, "min": t.low, "max": t.high, "samples": list(t.samples)}


def size_json(size: registry.ImageSize, base: registry.ImageSize) -> dict[str, int]:
    app_compressed, app_unpacked = size.minus(base)
    return {
        "compressed": size.compressed,
        "unpacked": size.unpacked,
        "layers": len(size.layers),
        "app_compressed": app_compressed,
        "app_unpacked": app_unpacked,
        "base_compressed": base.compressed,
        "base_unpacked": base.unpacked,
    }


# --- slimline ------------------------------------------------------------------------------------


def measure_slimline(app: App, s: Setup) -> dict[str, Any]:
    """Cold, warm full, code-change and no-change builds; sizes, layers and second-push uploads.

    * cold: a fresh cache holding only the pinned base (made beforehand by ``slimline base``, as
      the Dockerfile's base is made beforehand): every wheel is downloaded and hash-checked, the
      project's build environment is made, every layer is written;
    * warm full: downloads and the base cached, every slimline-made layer rebuilt
      (``SLIMLINE_NO_LAYER_CACHE=1``) and, so that the project is rebuilt too, a line changed;
    * code change: a line appended to the app's source; no change: the same input again.
    Every build writes an OCI layout, as a user's build would.
    """
    here = s.work / app.key / "slimline"
    project = slimline_copy(app, here / "project")
    configured = app.debian_packages()
    # packages a build adds to the base for the wheels' native code (libstdc++6 for numpy), found
    # by one probe build, so that the seeded cache holds every base pin a build resolves

    def build_cmd(cache: Path, to: str, *, verbose: bool = False) -> list[str | Path]:
        return slimline_build(project, f"debian:{s.suite}", cache, to, verbose=verbose)

    added = added_packages(
        run_stderr(build_cmd(here / "probe-cache", f"oci:{here / 'probe'}:probe", verbose=True))
    )
    shutil.rmtree(here / "probe-cache", ignore_errors=True)
    base_repo = "bases/slimline-" + repo_name("-".join([s.suite, *configured, *added]))
    template = here / "base-cache"
    # the base alone, pinned in a cache that later seeds each cold build; pushed to read its size
    variants = [configured, configured + added] if added else [configured]
    for i, packages in enumerate(variants):
        last = i == len(variants) - 1
        dest = f"docker://{s.registry_host}/{base_repo}:latest" if last else f"oci:{here / 'probe'}:base"
        sh(slimline_base(f"debian:{s.suite}", packages, template, dest), timeout=900)
    base_size = registry.image_size(s.registry_host, base_repo, "latest")
    warm = here / "cache"

    def build(tag: str, cache: Path, env: dict[str, str] | None = None, to: str | None = None) -> None:
        sh(build_cmd(cache, to or f"oci:{here / 'out'}:{tag}"), env=env, timeout=900)

    colds = []
    for _i in range(s.cold_runs):
        shutil.rmtree(warm, ignore_errors=True)
        shutil.copytree(template, warm)
        settle()  # nothing the run before wrote is still being written
        t0 = time.perf_counter()
        report = run_stderr(build_cmd(warm, f"oci:{here / 'out'}:cold", verbose=True))
        colds.append(time.perf_counter() - t0)
        if "assembling base" in report:
            raise SystemExit(
                f"bench: the cold build of {app.key} assembled its base: the seeded pin was not used"
            )
    cold = Timing("cold build", tuple(colds))
    layer_seconds: list[float] = []

    def full_build(_i: int) -> None:
        # -v: slimline reports how long making its layers took (the dependency layers, from
        # cached wheels, and the small project layer), the figure set beside uv's install time
        err = run_stderr(
            build_cmd(warm, f"oci:{here / 'out'}:full", verbose=True), env={"SLIMLINE_NO_LAYER_CACHE": "1"}
        )
        found = re.search(r"layers \([^)]*\): (\d+) of (\d+) made in ([0-9.]+) s", err)
        if found is None or found[1] != found[2]:
            raise SystemExit(f"bench: the warm full build of {app.key} did not report making every layer")
        layer_seconds.append(float(found[3]))

    full = measure(
        "warm full build", s.runs, full_build, before=lambda i: one_line_change(project, app, 1000 + i)
    )
    change = measure(
        "code change",
        s.runs,
        lambda i: build(f"change{i}", warm),
        before=lambda i: one_line_change(project, app, i),
    )
    same = measure("no change", s.runs, lambda i: build("same", warm))
    # what makes the Dockerfile reinstall every dependency: slimline's layer cache keeps them
    locked = measure(
        "lock edit",
        s.runs,
        lambda i: build(f"lock{i}", warm),
        before=lambda i: lock_edit(project, app, 500 + i),
    )

    repo = f"{app.key}/slimline"
    build("push1", warm, to=f"docker://{s.registry_host}/{repo}:1")
    one_line_change(project, app, 100)
    before = registry.uploads(s.registry_log)
    build("push2", warm, to=f"docker://{s.registry_host}/{repo}:2")
    second_push = registry.uploads(s.registry_log) - before
    size = registry.image_size(s.registry_host, repo, "2")
    python = s.engine.run(
        f"{s.registry_host}/{repo}:2",
        "-c",
        CHECK.format(module=app.module),
        entrypoint="/app/.venv/bin/python",
    ).strip()

    # --slim: the same build in slim mode, its size, and the smoke check passing on it
    slim_repo = f"{app.key}/slimline-slim"
    sh([*build_cmd(warm, f"docker://{s.registry_host}/{slim_repo}:1"), "--slim"], timeout=900)
    slim_size = registry.image_size(s.registry_host, slim_repo, "1")
    s.engine.run(
        f"{s.registry_host}/{slim_repo}:1",
        "-c",
        CHECK.format(module=app.module),
        entrypoint="/app/.venv/bin/python",
    )

    # the same app on the Dockerfile's base (pulled from the local registry): the like-for-like size
    same_repo = f"{app.key}/slimline-on-pybase"
    pybase_ref = f"{s.registry_host}/{s.pybase_repo}:latest"
    sh(slimline_build(project, pybase_ref, warm, f"docker://{s.registry_host}/{same_repo}:1"), timeout=900)
    pybase_size = registry.image_size(s.registry_host, s.pybase_repo, "latest")
    on_pybase = registry.image_size(s.registry_host, same_repo, "1")
    return {
        "timings": {
            t.name: timing_json(t)
            for t in (
                cold,
                full,
                change,
                same,
                locked,
                Timing("layers in a warm full build", tuple(layer_seconds)),
            )
        },
        "size": size_json(size, base_size),
        "size_slim": size_json(slim_size, base_size),
        "size_on_dockerfile_base": size_json(on_pybase, pybase_size),
        "second_push_blob_uploads": second_push,
        "python": python,
    }


def slimline_build(
    project: Path, base: str, cache: Path, to: str, *, verbose: bool = False, platform: str | None = None
) -> list[str | Path]:
    """``slimline build`` of ``project`` on ``base`` with ``cache``, writing ``to``."""
    cmd: list[str | Path] = [SLIMLINE, "build", project, "--base", base, "--cache-dir", cache]
    cmd += ["-v" if verbose else "-q", "--to", to, *(["--platform", platform] if platform else [])]
    return cmd


def slimline_base(
    base: str, packages: list[str], cache: Path, to: str, *, platform: str | None = None
) -> list[str | Path]:
    """``slimline base`` of ``base`` plus Debian ``packages``, pinned in ``cache``, written to ``to``."""
    cmd: list[str | Path] = [SLIMLINE, "base", base, *[a for p in packages for a in ("--package", p)]]
    cmd += ["--cache-dir", cache, "-q", "--to", to, *(["--platform", platform] if platform else [])]
    return cmd


def added_packages(verbose_stderr: str) -> list[str]:
    """The Debian packages a build reported adding to its base (``adding libpq5 (for psycopg2)``)."""
    return sorted(
        {
            pkg
            for line in verbose_stderr.splitlines()
            if "] adding " in line
            for pkg in re.findall(r"(\S+) \(for [^)]*\)", line)
        }
    )


def run_stderr(cmd: list[str | Path], *, env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` (it must succeed) and return what it wrote to stderr."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        text=True,
        capture_output=True,
        timeout=900,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise SystemExit(f"bench: command failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc.stderr


# --- the tutorial Dockerfile with buildah --------------------------------------------------------


class DockerfileSide:
    """``dockerfile`` (``bench/Dockerfile.poetry``, given :func:`dockerfile_args` and ``extra_args``)
    for ``app``, built with ``buildah bud --layers`` from a copy of the app."""

    def __init__(
        self, app: App, s: Setup, *, dockerfile: Path = DOCKERFILE, extra_args: dict[str, str] | None = None
    ) -> None:
        self.app, self.s, self.dockerfile = app, s, dockerfile
        self.project = dockerfile_copy(app, s.work / app.key / "dockerfile" / "project", s.index_url)
        self.tag = f"localhost/{app.key}:dockerfile"
        self.args = {**dockerfile_args(app, self.project, s), **(extra_args or {})}

    def build(self, no_cache: bool = False) -> None:
        self.s.engine.build(self.project, self.dockerfile, self.tag, args=self.args, no_cache=no_cache)

    def cold(self) -> float:
        """One cold build: ``--no-cache`` after removing every image but the base and emptying the
        cache mounts (Poetry and its dependencies, and every locked wheel, are downloaded)."""
        self.s.engine.prune(keep=[self.s.pybase])
        settle()  # nothing the run before wrote is still being written
        t0 = time.perf_counter()
        self.build(no_cache=True)
        return time.perf_counter() - t0


def measure_dockerfile(
    app: App,
    s: Setup,
    *,
    dockerfile: Path = DOCKERFILE,
    extra_args: dict[str, str] | None = None,
    side: DockerfileSide | None = None,
    cold: Timing | None = None,
) -> dict[str, Any]:
    """The same four timings for a :class:`DockerfileSide` (``side``, else made of the others);
    ``cold``: its cold builds measured already (alternating with slimline's, say), else measured
    here one after another.

    * cold: :meth:`DockerfileSide.cold`;
    * warm full: a comment appended to poetry.lock (the nearest a Dockerfile gets to "the
      dependencies' layers must be rebuilt": it invalidates ``COPY pyproject.toml poetry.lock``
      and everything after it) and a line changed, as for slimline; the layer with Poetry
      installed and Poetry's download cache (``RUN --mount=type=cache``) stay warm;
    * code change / no change: as for slimline.
    """
    side = side or DockerfileSide(app, s, dockerfile=dockerfile, extra_args=extra_args)
    project, tag, build = side.project, side.tag, side.build
    if cold is None:
        cold = Timing("cold build", tuple(side.cold() for _ in range(s.cold_runs)))
    full = measure("warm full build", s.runs, lambda i: build(), before=lambda i: lock_edit(project, app, i))
    change = measure(
        "code change", s.runs, lambda i: build(), before=lambda i: one_line_change(project, app, i)
    )
    same = measure("no change", s.runs, lambda i: build())

    repo = f"{app.key}/dockerfile"
    s.engine.push(tag, f"{s.registry_host}/{repo}:1")
    one_line_change(project, app, 100)
    build()
    before = registry.uploads(s.registry_log)
    s.engine.push(tag, f"{s.registry_host}/{repo}:2")
    second_push = registry.uploads(s.registry_log) - before
    size = registry.image_size(s.registry_host, repo, "2")
    pybase_size = registry.image_size(s.registry_host, s.pybase_repo, "latest")
    python = s.engine.run(tag, "-c", CHECK.format(module=app.module), entrypoint="python").strip()
    return {
        "timings": {t.name: timing_json(t) for t in (cold, full, change, same)},
        "size": size_json(size, pybase_size),
        "second_push_blob_uploads": second_push,
        "python": python,
    }


def dockerfile_args(app: App, project: Path, s: Setup) -> dict[str, str]:
    """The build arguments every bench Dockerfile takes (see the comment at its top)."""
    return {
        "BASE": s.pybase,
        "POETRY_VERSION": poetry_version(project),
        "PIP_INDEX_URL": s.index_url,
        "PIP_CERT": CA_BUNDLE,
        "REQUESTS_CA_BUNDLE": CA_BUNDLE,
        "ENTRY_MODULE": app.entry_module,
    }


def poetry_version(project: Path) -> str:
    """The Poetry release that wrote the lock (else the one installed here)."""
    return lockfile.load(project / "poetry.lock").poetry_version or importlib.metadata.version("poetry")


# --- uv, the install-speed anchor ---------------------------------------------------------------


def host_python(version: str) -> Path:
    """A Python on this machine with the images' ``major.minor`` (Debian's own, else ours)."""
    xy = ".".join(version.split(".")[:2])
    for candidate in (f"/usr/bin/python{xy}", shutil.which(f"python{xy}"), sys.executable):
        if candidate and Path(candidate).is_file():
            out = sh([candidate, "-c", "import platform; print(platform.python_version())"]).strip()
            if out.startswith(xy + "."):
                return Path(candidate)
    raise SystemExit(f"bench: no Python {xy} on this machine for uv's anchor")


def measure_uv(app: App, s: Setup, python: Path) -> dict[str, Any]:
    """``uv pip install`` of the locked set (exported with hashes) into an empty venv, warm cache.

    The uv cache is warmed by one install first; each timed run gets a new empty venv (made
    untimed).  Two link modes: uv's default (hard links from its cache) and ``copy`` (every
    file written, as a layer's bytes are).
    """
    here = s.work / app.key / "uv"
    here.mkdir(parents=True, exist_ok=True)
    req = here / "requirements.txt"
    req.write_text(requirements(app.directory, host_target(python)))
    env = {"UV_CACHE_DIR": str(s.engine.state / "uv-cache"), "UV_NO_PROGRESS": "1"}
    if s.uv is None:
        raise SystemExit("bench: measure_uv needs Setup.uv")
    uv = str(s.uv)

    def fresh_venv(_i: int = 0) -> None:
        shutil.rmtree(here / "venv", ignore_errors=True)
        sh([uv, "venv", "-q", "--python", python, here / "venv"], env=env)

    def install(*extra: str) -> None:
        sh(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                here / "venv" / "bin" / "python",
                "--index-url",
                s.index_url,
                *extra,
                "-r",
                req,
            ],
            env=env,
        )

    fresh_venv()
    install()  # warms the cache
    hard = measure("uv pip install (warm, default link mode)", s.runs, lambda i: install(), before=fresh_venv)
    copy = measure(
        "uv pip install (warm, --link-mode=copy)",
        s.runs,
        lambda i: install("--link-mode=copy"),
        before=fresh_venv,
    )
    packages = sum(1 for line in req.read_text().splitlines() if "==" in line)
    return {"timings": {t.name: timing_json(t) for t in (hard, copy)}, "packages": packages}


def ensure_uv(state: Path) -> Path:
    """uv from PATH, else installed with pip into a venv of its own under the state directory."""
    found = shutil.which("uv")
    if found:
        return Path(found)
    venv = state / "tools"
    uv = venv / "bin" / "uv"
    if not uv.is_file():
        sh([sys.executable, "-m", "venv", venv])
        sh([venv / "bin" / "python", "-m", "pip", "install", "-q", "uv"], timeout=600)
    return uv


def clean_env() -> None:
    """Settings of the caller that would change what is measured."""
    for key in ("SLIMLINE_NO_LAYER_CACHE", "SLIMLINE_CACHE_DIR"):
        os.environ.pop(key, None)
