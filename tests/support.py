"""Helpers shared by the test suite: real Poetry locking, real podman runs, the shared cache.

Nothing here fakes slimline's own behaviour; it drives real tools.  Host names of package
registries are never written here: the index URL comes from the same configuration chain
that slimline uses (``slimline.artifacts.sources.default_index_url``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def cache_dir() -> Path:
    """The download cache shared by the whole run (and by later runs on this machine)."""
    path = Path(os.environ.get("SLIMLINE_CACHE_DIR") or "/tmp/slimline-test-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def index_url() -> str:
    from slimline.artifacts.sources import default_index_url

    return default_index_url()


def tool(name: str) -> str:
    """Absolute path of a required tool; a missing tool fails the test (no silent skip)."""
    found = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if found is None:
        raise AssertionError(f"required tool {name!r} is not installed; run scripts/setup.sh --system --test")
    return found


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=full_env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


def poetry_env() -> dict[str, str]:
    return {
        "POETRY_VIRTUALENVS_CREATE": "false",
        "POETRY_CACHE_DIR": str(cache_dir() / "poetry"),
        "POETRY_NO_INTERACTION": "1",
        "PYTHONWARNINGS": "ignore",
    }


def poetry_lock(project: Path, *, pypi_style: bool = True) -> Path:
    """Lock ``project`` with the real Poetry against the configured simple index.

    Poetry's built-in PyPI repository needs the per-release JSON API, which these machines do
    not reach, so the simple index is added as the primary source first.  With ``pypi_style``
    the source is removed again afterwards, from pyproject.toml and from every locked package,
    and the content-hash recomputed with slimline's implementation: the result is exactly the
    lock Poetry writes for a project that uses PyPI (no ``[package.source]`` tables).
    """
    poetry = tool("poetry")
    env = poetry_env()
    original = (project / "pyproject.toml").read_text()
    run(
        [poetry, "source", "add", "--priority=primary", "slimline-test-index", index_url()],
        cwd=project,
        env=env,
    )
    run([poetry, "lock"], cwd=project, env=env, timeout=900)
    lock = project / "poetry.lock"
    if pypi_style:
        (project / "pyproject.toml").write_text(original)
        strip_sources(lock, project)
    return lock


def strip_sources(lock: Path, project: Path) -> None:
    """Remove the ``legacy`` source tables that name the test index and fix the content-hash.

    Path, git, url and file sources stay: they are part of what the lock says.
    """
    import tomlkit

    from slimline.project import pyproject as project_mod

    doc: Any = tomlkit.parse(lock.read_text())
    for pkg in doc["package"]:
        if pkg.get("source", {}).get("type") == "legacy":
            del pkg["source"]
    doc["metadata"]["content-hash"] = project_mod.load(project).content_hash()
    lock.write_text(tomlkit.dumps(doc))


def podman(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([tool("podman"), *args], timeout=timeout, check=check)


RUN_FLAGS = ["--runtime", "runc", "--cgroup-manager=cgroupfs"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman_run(
    image: str, *args: str, flags: Sequence[str] = (), timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``podman run --rm`` with the runtime flags these machines need."""
    return run(
        [tool("podman"), *RUN_FLAGS, "run", "--rm", *ULIMITS, *flags, image, *args],
        timeout=timeout,
        check=check,
    )


def skopeo_inspect(ref: str) -> dict[str, object]:
    out = run([tool("skopeo"), "inspect", "--raw", ref]).stdout
    return dict(json.loads(out))


def slimline(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``slimline`` command line (the installed console script)."""
    return run(
        [tool("slimline"), *args],
        cwd=cwd,
        env={"SLIMLINE_CACHE_DIR": str(cache_dir()), **(env or {})},
        check=check,
        timeout=timeout,
    )


class Lines:
    """A reporter that keeps every line it is given (steps, details and summaries alike)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, text: str) -> None:
        self.lines.append(text)

    def detail(self, text: str) -> None:
        self.lines.append(text)

    def done(self, text: str) -> None:
        self.lines.append(text)


def slimline_wheel(dest: Path) -> Path:
    """A wheel of this worktree's slimline (its sources as they are now), built into ``dest``."""
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(ROOT)], timeout=600)
    return next(dest.glob("slimline-*.whl"))


def poetry_venv(dest: Path, *wheels: Path) -> Path:
    """A fresh venv holding the Poetry this suite runs (same version, from the package index; or
    ``SLIMLINE_TEST_POETRY``'s, e.g. ``2.0.1``) and ``wheels`` (slimline's, to install the plugin
    the way ``poetry self add`` would); its ``poetry``."""
    from importlib.metadata import version

    wanted = os.environ.get("SLIMLINE_TEST_POETRY") or version("poetry")
    alone = {"PYTHONPATH": ""}  # not this worktree's sources: the venv's own packages
    run([sys.executable, "-m", "venv", str(dest)], env=alone, timeout=300)
    pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, f"poetry=={wanted}", *map(str, wheels)], env=alone, timeout=900)
    return dest / "bin" / "poetry"
