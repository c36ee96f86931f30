"""uv.lock and pylock.toml build the image poetry.lock builds, through the real command line.

One small project (a compiled dependency, a marker that is false for the target though true
for this host's Python, one extra, one dependency group) is locked by the real Poetry, exported
by the real Poetry to pylock.toml (poetry-plugin-export), locked by the real ``uv lock`` and
exported by ``uv export`` (which lists the project itself: it must be left out).  Each build
is then compared by the distributions in its image (read from the OCI layout's layers) and by
its digest.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import cache_dir, index_url, poetry_env, poetry_lock, run, slimline, tool

pytestmark = [pytest.mark.network]

PYPROJECT = """\
[project]
name = "lockdemo"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = [
    "six>=1.16",
    "markupsafe>=2",
    "tomli>=2; python_version < '3.12'",
    "colorama>=0.4; sys_platform == 'win32'",
]

[project.optional-dependencies]
socks = ["pysocks>=1.7"]

[dependency-groups]
dev = ["iniconfig>=2"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.slimline]
base = "debian:trixie"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with poetry.lock, pylock.toml (main), pylock.full.toml (dev + socks),
    pylock.uv.toml and uv.lock, all written by the real tools against the configured index."""
    root = tmp_path_factory.mktemp("other-locks") / "lockdemo"
    (root / "src" / "lockdemo").mkdir(parents=True)
    (root / "src" / "lockdemo" / "__init__.py").write_text("MESSAGE = 'hello'\n")
    (root / "pyproject.toml").write_text(PYPROJECT)
    poetry_lock(root, pypi_style=False)  # Poetry's export needs the index it locked against
    poetry = [tool("poetry"), "export", "-f", "pylock.toml"]
    run([*poetry, "-o", "pylock.toml"], cwd=root, env=poetry_env())
    run([*poetry, "--with", "dev", "-E", "socks", "-o", "pylock.full.toml"], cwd=root, env=poetry_env())
    uv_env = {
        "UV_DEFAULT_INDEX": index_url(),
        "UV_CACHE_DIR": str(cache_dir() / "uv"),
        "UV_PYTHON": sys.executable,
    }
    run([tool("uv"), "lock"], cwd=root, env=uv_env)
    run(
        [tool("uv"), "export", "--format", "pylock.toml", "--no-dev", "-o", "pylock.uv.toml"],
        cwd=root,
        env=uv_env,
    )
    return root


def _build(root: Path, out: Path, lock: str, *flags: str) -> tuple[str, set[str]]:
    """(digest, distributions in the image) of building ``root`` from ``lock``."""
    tag = lock.replace(".", "-")
    proc = slimline("build", str(root), "--lock", str(root / lock), *flags, "--to", f"oci:{out}:{tag}")
    digest = proc.stdout.strip().splitlines()[-1].split("@")[-1]
    return digest, _dists(out, tag)


def _dists(layout: Path, tag: str) -> set[str]:
    """``name-version`` of every ``*.dist-info`` in the image's layers (the venv's distributions)."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag]
    manifest = json.loads(_blob(layout, entry["digest"]).read_text())
    found = set()
    for layer in manifest["layers"][-4:]:  # above the base: venv, dependencies, project
        with tarfile.open(_blob(layout, layer["digest"]), "r:*") as tar:
            for name in tar.getnames():
                if "/site-packages/" in name and name.endswith(".dist-info/METADATA"):
                    found.add(name.rsplit("/", 2)[-2].removesuffix(".dist-info").lower())
    return found


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


def test_uv_and_pylock_build_the_image_poetry_lock_builds(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    digest, dists = _build(project, out, "poetry.lock")
    names = {d.split("-")[0] for d in dists}
    # trixie's Python is 3.13: tomli's marker is false there (true for this host's 3.11)
    assert names == {"lockdemo", "markupsafe", "six"}
    assert any(d.startswith("markupsafe-") for d in dists)
    for lock in ("uv.lock", "pylock.toml", "pylock.uv.toml"):
        assert _build(project, out, lock) == (digest, dists), lock


def test_groups_and_extras_select_the_same(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    digest, dists = _build(project, out, "poetry.lock", "--with", "dev", "-E", "socks")
    assert {d.split("-")[0] for d in dists} == {"lockdemo", "markupsafe", "six", "iniconfig", "pysocks"}
    assert _build(project, out, "uv.lock", "--with", "dev", "-E", "socks") == (digest, dists)
    assert _build(project, out, "pylock.full.toml") == (digest, dists)  # exported for dev + socks
    refused = slimline("build", ".", "--lock", "pylock.toml", "--with", "dev", cwd=project, check=False)
    assert refused.returncode != 0
    assert "pylock.toml declares no dependency group dev" in refused.stderr


def test_several_locks_need_a_choice(project: Path) -> None:
    proc = slimline("build", str(project), check=False)
    assert proc.returncode != 0
    assert (
        "several lock files: poetry.lock, pylock.full.toml, pylock.toml, pylock.uv.toml, uv.lock"
        in proc.stderr
    )
    assert "--lock PATH" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_reads_the_uv_lock_of_a_project_that_has_only_that(project: Path, tmp_path: Path) -> None:
    # `verify --project` refused a uv project ("has no poetry.lock") that build and --dry-run read
    root = tmp_path / "uvonly"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("poetry.lock", "pylock*.toml"))
    slimline("build", str(root), "--to", f"oci:{tmp_path / 'out'}:t")
    proc = slimline("verify", f"oci:{tmp_path / 'out'}:t", "--project", str(root), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "matching uv.lock" in proc.stdout, proc.stdout
    missing = slimline("verify", f"oci:{tmp_path / 'out'}:t", "--project", str(tmp_path), check=False)
    assert missing.returncode == 3, missing.stderr
    assert "has no lock file (poetry.lock, uv.lock or pylock.toml)" in missing.stderr


@pytest.mark.parametrize(
    "build_system", ["", '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n']
)
def test_a_uv_project_uv_locks_virtual_is_copied_not_built(tmp_path: Path, build_system: str) -> None:
    # a public Django app (dbca-wa/penguins) has no [build-system]: uv locks it `virtual` and never
    # builds it; slimline ran setuptools on it ("Multiple top-level packages discovered")
    root = tmp_path / "site"
    for pkg in ("site_app", "observations", "kustomize"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text(f"NAME = {pkg!r}\n")
    (root / "manage.py").write_text("import site_app\nprint(site_app.NAME)\n")
    package = "\n[tool.uv]\npackage = false\n" if build_system else ""  # uv's rule, or its setting
    (root / "pyproject.toml").write_text(
        '[project]\nname = "site"\nversion = "0.1.0"\nrequires-python = ">=3.11"\ndependencies = ["six"]\n'
        + build_system
        + package
    )
    uv_env = {
        "UV_DEFAULT_INDEX": index_url(),
        "UV_CACHE_DIR": str(cache_dir() / "uv"),
        "UV_PYTHON": sys.executable,
    }
    run([tool("uv"), "lock"], cwd=root, env=uv_env)
    assert 'source = { virtual = "." }' in (root / "uv.lock").read_text()
    out = tmp_path / "out"
    proc = slimline("build", str(root), "--to", f"oci:{out}:t", "-v")
    assert "building the project" not in proc.stderr and "site_app" not in " ".join(_dists(out, "t"))
    assert {d.split("-")[0] for d in _dists(out, "t")} == {"six"}
    files = _app_files(out, "t")
    assert {"app/manage.py", "app/site_app/__init__.py", "app/observations/__init__.py"} <= files


def _app_files(layout: Path, tag: str) -> set[str]:
    """The files of the image's top layer (the project's)."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag]
    manifest = json.loads(_blob(layout, entry["digest"]).read_text())
    with tarfile.open(_blob(layout, manifest["layers"][-1]["digest"]), "r:*") as tar:
        return {m.name.lstrip("./") for m in tar.getmembers() if m.isfile()}
