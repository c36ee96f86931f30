"""Wheels built on the host: sdists, directory and git dependencies, the project; build-env reuse.

Build environments come from the shared test cache (made once per machine: that is the
network part); wheels and sources go to a cache in tmp_path so every run really builds.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from slimline.artifacts.build_backend import build_project_wheel
from slimline.artifacts.buildenv import BuildEnvError, BuildEnvs
from slimline.artifacts.fetch import NoUsableWheels, fetch
from slimline.artifacts.origins import FetchError
from slimline.artifacts.sources import default_index_url
from slimline.artifacts.unpack import unpack_archive
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import HashMismatch, UnsafePath
from slimline.http import Http
from slimline.plan.model import Allowance, Artifact, Origin, Plan, Selected
from tests.artifacts.helpers import (
    ARM64_TARGET,
    DOCOPT_SDIST,
    LocalIndex,
    git,
    index_pkg,
    make_wheel,
    plan_of,
    serve,
    sha256,
    wheel_names,
    write_project,
)
from tests.support import cache_dir

DEAD_INDEX = "http://127.0.0.1:9/simple"


@pytest.fixture(scope="module")
def envs() -> BuildEnvs:
    return BuildEnvs(cache=Cache(cache_dir()), index_url=default_index_url())


def _run(
    plan: Plan, cache: Cache, envs: BuildEnvs, *, root: Path, index: str = DEAD_INDEX
) -> dict[str, Path]:
    return fetch(
        plan,
        ctx=Context(cache, given_http=Http(retries=0)),
        default_index=index,
        build_env=envs,
        project_root=root,
    )


@pytest.mark.network
def test_sdist_only_package_is_built(tmp_path: Path, envs: BuildEnvs) -> None:
    index = default_index_url()
    cache = Cache(tmp_path / "cache")
    plan = plan_of(index_pkg("docopt", "0.6.2", DOCOPT_SDIST, url=index))
    wheel = _run(plan, cache, envs, root=tmp_path, index=index)["docopt"]
    assert wheel.name.startswith("docopt-0.6.2-") and wheel.name.endswith("-none-any.whl")
    assert "docopt.py" in wheel_names(wheel)
    # built once: the next fetch takes the recorded wheel without network or backend
    offline = plan_of(index_pkg("docopt", "0.6.2", DOCOPT_SDIST, url=DEAD_INDEX))
    assert _run(offline, cache, envs, root=tmp_path)["docopt"] == wheel


@pytest.mark.network
def test_directory_dependencies_are_built_and_cached_by_content(tmp_path: Path, envs: BuildEnvs) -> None:
    write_project(tmp_path / "libs" / "liba", "liba", backend="setuptools", body="WHO = 'a1'\n")
    write_project(tmp_path / "libs" / "libb", "libb", backend="setuptools", body="WHO = 'b1'\n")
    cache = Cache(tmp_path / "cache")
    plan = plan_of(
        Selected("liba", "1.0.0", Origin("directory", "libs/liba"), None),  # relative to the project
        Selected("libb", "1.0.0", Origin("directory", str(tmp_path / "libs" / "libb"), develop=True), None),
    )
    first = _run(plan, cache, envs, root=tmp_path)
    assert first["liba"].name == "liba-1.0.0-py3-none-any.whl"
    assert "libb/__init__.py" in wheel_names(first["libb"])
    # no change: the same wheels, even after the backend left build/ and *.egg-info behind
    assert _run(plan, cache, envs, root=tmp_path) == first
    (tmp_path / "libs" / "liba" / "liba" / "__init__.py").write_text('"""liba"""\nWHO = "a2"\n')
    second = _run(plan, cache, envs, root=tmp_path)
    assert second["libb"] == first["libb"] and second["liba"] != first["liba"]


@pytest.mark.network
def test_git_dependency_is_built_at_the_locked_commit(tmp_path: Path, envs: BuildEnvs) -> None:
    repo = tmp_path / "repo"
    write_project(repo / "sub", "gitdep", backend="setuptools", body="WHO = 'locked'\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "locked", cwd=repo)
    locked = git("rev-parse", "HEAD", cwd=repo)
    (repo / "sub" / "gitdep" / "__init__.py").write_text('"""gitdep"""\nWHO = "later"\n')
    git("commit", "-q", "-am", "later", cwd=repo)
    origin = Origin("git", str(repo), reference="main", resolved=locked, subdirectory="sub")
    cache = Cache(tmp_path / "cache")
    wheel = _run(plan_of(Selected("gitdep", "1.0.0", origin, None)), cache, envs, root=tmp_path)["gitdep"]
    with zipfile.ZipFile(wheel) as zf:
        assert b"WHO = 'locked'" in zf.read("gitdep/__init__.py")
    missing = Origin("git", str(repo), reference="main", resolved="0" * 40, subdirectory="sub")
    with pytest.raises(FetchError) as info:
        _run(plan_of(Selected("gitdep", "1.0.0", missing, None)), Cache(tmp_path / "c2"), envs, root=tmp_path)
    assert "0" * 40 in str(info.value)


C_SETUP = """from setuptools import Extension, setup
setup(ext_modules=[Extension("cext._speed", ["cext/_speed.c"])])
"""
C_SOURCE = """#include <Python.h>
static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&m); }
"""


@pytest.mark.network
def test_every_package_without_a_usable_wheel_is_listed_in_one_error(tmp_path: Path, envs: BuildEnvs) -> None:
    cext = write_project(tmp_path / "cext", "cext", backend="setuptools", body="")
    (cext / "setup.py").write_text(C_SETUP)
    (cext / "cext" / "_speed.c").write_text(C_SOURCE)
    write_project(tmp_path / "pure", "pure", backend="setuptools", body="X = 1\n")
    x86_only = Artifact(
        "fastthing-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "ab" * 32, "wheel"
    )
    plan = plan_of(
        index_pkg("fastthing", "1.0", x86_only, url=DEAD_INDEX),
        Selected("cext", "1.0.0", Origin("directory", str(cext)), None),
        Selected("pure", "1.0.0", Origin("directory", str(tmp_path / "pure")), None),
        target=ARM64_TARGET,
    )
    with pytest.raises(NoUsableWheels) as info:
        _run(plan, Cache(tmp_path / "cache"), envs, root=tmp_path)
    err = info.value
    assert [p.name for p in err.packages] == ["cext", "fastthing"]  # all of them, and only them
    text = str(err)
    assert "linux_x86_64" in text and "manylinux_2_17_x86_64" in text and "arm64" in text
    assert "pin a version" in text and "build the wheel on a machine like the target" in text


@pytest.mark.network
def test_build_environment_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(tmp_path / "cache")
    index = default_index_url()
    project = write_project(tmp_path / "flitproj", "flitproj", backend="flit", body="__version__ = '1.0.0'\n")
    first = build_project_wheel(project, envs=BuildEnvs(cache=cache, index_url=index), cache=cache)
    (env_dir,) = [p for p in (cache.root / "build-envs").iterdir() if p.is_dir()]
    marker = env_dir / ".slimline-env.json"
    # (reuse marks the marker used: its mtime moves, but a rewrite would give it a new inode)
    before = (env_dir.stat().st_ino, marker.stat().st_ino, marker.read_bytes())
    installed = sorted(p.name for p in env_dir.rglob("*.dist-info"))
    assert any(name.startswith("flit_core-") for name in installed)

    (project / "flitproj" / "__init__.py").write_text('"""flitproj"""\n__version__ = "1.0.0"\nY = 2\n')
    # A new BuildEnvs, as in a new slimline run, whose index (found lazily) could not serve anything:
    # the environment on disk is taken as it is.
    monkeypatch.setenv("SLIMLINE_INDEX_URL", DEAD_INDEX)
    second = build_project_wheel(project, envs=BuildEnvs(cache=cache), cache=cache)
    assert second != first
    assert (env_dir.stat().st_ino, marker.stat().st_ino, marker.read_bytes()) == before
    assert sorted(p.name for p in env_dir.rglob("*.dist-info")) == installed
    assert [p for p in (cache.root / "build-envs").iterdir() if p.is_dir()] == [env_dir]


@pytest.mark.network
def test_project_wheel_is_not_rebuilt_when_unchanged(tmp_path: Path, envs: BuildEnvs) -> None:
    cache = Cache(tmp_path / "cache")
    project = write_project(tmp_path / "app", "app", backend="poetry-core", body="V = 1\n")
    first = build_project_wheel(project, envs=envs, cache=cache, target=ARM64_TARGET)  # pure: fits any target
    inode = first.stat().st_ino  # a rebuild stores the wheel anew (a new inode); a use only touches it
    # files outside the source (caches, venvs, VCS data, build output) do not count
    (project / "app" / "__pycache__").mkdir()
    (project / "app" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (project / ".venv").mkdir()
    (project / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (project / "dist").mkdir()
    assert build_project_wheel(project, envs=envs, cache=cache) == first
    assert first.stat().st_ino == inode
    (project / "app" / "new.py").write_text("Z = 3\n")
    changed = build_project_wheel(project, envs=envs, cache=cache)
    assert changed != first and "app/new.py" in wheel_names(changed)


def test_archive_entries_escaping_the_root_are_refused(tmp_path: Path) -> None:
    for evil in ("../evil.py", "/abs/evil.py", "pkg/../../evil.py"):
        archive = tmp_path / "evil.tar.gz"
        with tarfile.open(archive, "w:gz") as tf:
            info = tarfile.TarInfo(evil)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
        with pytest.raises(UnsafePath):
            unpack_archive(archive, tmp_path / "out", filename="evil-1.0.tar.gz")
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as tf:
        info = tarfile.TarInfo("pkg/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafePath):
        unpack_archive(link, tmp_path / "out2", filename="link-1.0.tar.gz")
    assert not (tmp_path / "evil.py").exists()


def _sdist_of(project: Path, name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(project, arcname=f"{name}-1.0.0")
    return buf.getvalue()


@pytest.mark.network
def test_url_dependency_archive_is_verified_and_built(tmp_path: Path, envs: BuildEnvs) -> None:
    archive = _sdist_of(
        write_project(tmp_path / "src", "urldep", backend="setuptools", body="U = 1\n"), "urldep"
    )
    local = LocalIndex(files={"urldep": {"urldep-1.0.0.tar.gz": archive}})
    with serve(local) as idx:
        url = f"{idx.url.removesuffix('/simple')}/files/urldep-1.0.0.tar.gz"
        good = Artifact("urldep-1.0.0.tar.gz", sha256(archive), "sdist")
        http_ok: frozenset[Allowance] = frozenset({"plain-http"})  # the local server speaks http://
        plan = plan_of(Selected("urldep", "1.0.0", Origin("url", url), good, allow=http_ok))
        wheel = _run(plan, Cache(tmp_path / "cache"), envs, root=tmp_path)["urldep"]
        assert wheel.name == "urldep-1.0.0-py3-none-any.whl"
        bad = Artifact("urldep-1.0.0.tar.gz", "cd" * 32, "sdist")
        with pytest.raises(HashMismatch) as info:
            _run(plan_of(Selected("urldep", "1.0.0", Origin("url", url), bad, allow=http_ok)),
                 Cache(tmp_path / "c2"), envs, root=tmp_path)  # fmt: skip
    assert info.value.package == "urldep" and info.value.actual == f"sha256:{sha256(archive)}"


def test_file_dependency_wheel_is_verified(tmp_path: Path) -> None:
    data = make_wheel("filedep", "2.0")
    path = tmp_path / "filedep-2.0-py3-none-any.whl"
    path.write_bytes(data)
    envs = BuildEnvs(cache=Cache(tmp_path / "cache"), index_url=DEAD_INDEX)
    good = Artifact(path.name, sha256(data), "wheel")
    plan = plan_of(Selected("filedep", "2.0", Origin("file", path.name), good))
    wheel = _run(plan, Cache(tmp_path / "cache"), envs, root=tmp_path)["filedep"]
    assert wheel.name == path.name and wheel.read_bytes() == data
    path.write_bytes(data + b"appended")
    with pytest.raises(HashMismatch):
        _run(plan, Cache(tmp_path / "cache"), envs, root=tmp_path)


def test_backend_that_cannot_be_installed_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_RETRIES", "0")
    for name in ("one", "two"):
        proj = write_project(tmp_path / name, name, backend="setuptools", body="")
        text = (proj / "pyproject.toml").read_text()
        (proj / "pyproject.toml").write_text(
            text.replace('"setuptools>=40.8.0"', '"slimline-no-such-backend>=1"')
        )
    plan = plan_of(
        Selected("one", "1.0.0", Origin("directory", str(tmp_path / "one")), None),
        Selected("two", "1.0.0", Origin("directory", str(tmp_path / "two")), None),
    )
    envs = BuildEnvs(cache=Cache(tmp_path / "cache"), index_url=DEAD_INDEX)
    with pytest.raises(BuildEnvError) as info:
        _run(plan, Cache(tmp_path / "cache"), envs, root=tmp_path)
    assert "slimline-no-such-backend>=1" in str(info.value)
    assert not list(
        (tmp_path / "cache" / "build-envs").glob("*/.slimline-env.json")
    )  # nothing half-made kept
    with pytest.raises(BuildEnvError) as again:  # the same environment is not attempted twice in one build
        envs.get(["slimline-no-such-backend>=1"])
    assert again.value is info.value
