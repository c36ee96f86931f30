"""uv.lock into the same Lock values as poetry.lock; selection from the project's own entry.

The lock here is written in uv's layout (as `uv lock` writes it; the real one is built in
tests/e2e/test_other_locks.py) with an index URL that is never contacted.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from slimline.plan import select
from slimline.project import pyproject, uvlock
from slimline.project.lockfile import LockedDependency, LockSource
from slimline.project.uvlock import StaleUvLock, UvLockError
from tests.plan.helpers import target
from tests.support import cache_dir, index_url, run, tool

INDEX = "https://index.invalid/simple"
REG = '{ registry = "' + INDEX + '" }'
COMMIT = "0123456789abcdef0123456789abcdef01234567"

PYPROJECT = """\
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["six>=1.16", "tomli>=2; python_version < '3.12'", "numpy"]

[project.optional-dependencies]
socks = ["pysocks>=1.7"]

[dependency-groups]
dev = ["iniconfig>=2"]
"""


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def wheel(name: str, version: str, tag: str = "py3-none-any") -> str:
    file = f"{name}-{version}-{tag}.whl"
    return f'{{ url = "https://files.invalid/{file}", hash = "{sha(file)}", size = 1 }}'


def package(name: str, version: str, extra: str = "") -> str:
    return (
        f'[[package]]\nname = "{name}"\nversion = "{version}"\nsource = {{ registry = "{INDEX}" }}\n'
        f"wheels = [{wheel(name, version)}]\n{extra}\n"
    )


UV_LOCK = (
    'version = 1\nrevision = 3\nrequires-python = ">=3.11"\n\n'
    + package("iniconfig", "2.3.1")
    + package("numpy", "1.26.4")
    + package("numpy", "2.2.0")
    + package("pysocks", "1.7.1")
    + package("six", "1.17.0")
    + package("tomli", "2.5.0")
    + package(
        "requests",
        "2.32.3",
        'dependencies = [{ name = "six" }]\n'
        "[package.optional-dependencies]\n"
        'socks = [{ name = "pysocks", marker = "sys_platform != \'win32\'" }]',
    )
    + f"""[[package]]
name = "gitdep"
version = "1.0"
source = {{ git = "https://git.invalid/gitdep?rev=main&subdirectory=sub#{COMMIT}" }}

[[package]]
name = "demo"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "numpy", version = "1.26.4", source = {REG}, marker = "python_full_version < '3.12'" }},
    {{ name = "numpy", version = "2.2.0", source = {REG}, marker = "python_full_version >= '3.12'" }},
    {{ name = "six" }},
    {{ name = "tomli", marker = "python_full_version < '3.12'" }},
]

[package.optional-dependencies]
socks = [{{ name = "requests", extra = ["socks"] }}]

[package.dev-dependencies]
dev = [{{ name = "iniconfig" }}]

[package.metadata]
requires-dist = [
    {{ name = "numpy" }},
    {{ name = "pysocks", marker = "extra == 'socks'", specifier = ">=1.7" }},
    {{ name = "six", specifier = ">=1.16" }},
    {{ name = "tomli", marker = "python_full_version < '3.12'", specifier = ">=2" }},
]

[package.metadata.requires-dev]
dev = [{{ name = "iniconfig", specifier = ">=2" }}]
"""
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    return tmp_path


def names(root: Path, py: tuple[int, int, int] = (3, 11, 2), **options: object) -> dict[str, str]:
    lock = uvlock.load(root / "uv.lock", project_root=root)
    plan = select.select(pyproject.load(root), lock, target(py), **options)  # type: ignore[arg-type]
    return {p.name: p.version for p in plan.packages}


def test_the_project_is_the_root_not_a_package(project: Path) -> None:
    lock = uvlock.load(project / "uv.lock", project_root=project)
    assert lock.format == "uv" and "demo" not in {p.name for p in lock.packages}
    assert set(lock.root) == {"main", "dev"}
    assert lock.root["main"]["requests"] == (LockedDependency(markers='extra == "socks"', extras=("socks",)),)
    assert lock.root["main"]["numpy"][0].version == "==1.26.4"
    assert lock.extras == {"socks": ("requests",)}
    requests = lock.named("requests")[0]
    assert requests.dependencies["pysocks"] == (
        LockedDependency(markers="(sys_platform != 'win32') and extra == \"socks\""),
    )
    assert requests.source == LockSource(type="legacy", url=INDEX)
    assert requests.files[0].sha256 == sha("requests-2.32.3-py3-none-any.whl").removeprefix("sha256:")
    assert lock.named("gitdep")[0].source == LockSource(
        type="git",
        url="https://git.invalid/gitdep",
        reference="main",
        resolved_reference=COMMIT,
        subdirectory="sub",
    )


def test_selection_walks_from_the_project_for_the_target(project: Path) -> None:
    assert names(project) == {"numpy": "1.26.4", "six": "1.17.0", "tomli": "2.5.0"}
    assert names(project, (3, 12, 1)) == {"numpy": "2.2.0", "six": "1.17.0"}  # the fork, by marker
    assert names(project, with_groups=["dev"], extras=["socks"]) == {
        "numpy": "1.26.4",
        "six": "1.17.0",
        "tomli": "2.5.0",
        "iniconfig": "2.3.1",
        "requests": "2.32.3",
        "pysocks": "1.7.1",  # requests[socks], asked for by the project's extra
    }


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("version = 1\n", "version = 2\n", "version"),
        (f'hash = "{sha("six-1.17.0-py3-none-any.whl")}", ', "", "package[4].wheels[0].hash"),
        ('source = { editable = "." }', 'source = { editable = "elsewhere" }', "package"),
        (
            'source = { registry = "' + INDEX + '" }\nwheels = [{ url = "https://files.invalid/six',
            'source = { }\nwheels = [{ url = "https://files.invalid/six',
            "package[4].source",
        ),
    ],
)
def test_bad_fields_are_named(project: Path, old: str, new: str, field: str) -> None:
    text = (project / "uv.lock").read_text()
    assert old in text
    (project / "uv.lock").write_text(text.replace(old, new, 1))
    with pytest.raises(UvLockError) as got:
        uvlock.load(project / "uv.lock", project_root=project)
    assert got.value.field == field
    assert "uv lock" in got.value.hint


def test_freshness_compares_the_project_requirements(project: Path) -> None:
    lock = uvlock.load(project / "uv.lock", project_root=project)
    uvlock.check_fresh(pyproject.load(project), lock)
    text = PYPROJECT.replace('"six>=1.16", ', '"six>=1.16", "attrs", ')
    (project / "pyproject.toml").write_text(text)
    with pytest.raises(StaleUvLock, match="not in the lock: attrs") as got:
        uvlock.check_fresh(pyproject.load(project), lock)
    assert "uv lock" in got.value.hint


def test_forks_for_conflicting_extras_follow_the_extras_asked_for(tmp_path: Path) -> None:
    """uv names the project's extras in such markers as ``extra-<len>-<project>-<extra>``."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0.1.0"\ndependencies = ["requests"]\n'
        '[project.optional-dependencies]\na = ["urllib3<2"]\nb = ["urllib3>=2"]\n'
    )
    edges = (
        '[{ name = "urllib3", version = "1.26.20", marker = "extra == \'extra-4-demo-a\'" },'
        ' { name = "urllib3", version = "2.8.0",'
        " marker = \"extra != 'extra-4-demo-a' or extra == 'extra-4-demo-b'\" }]"
    )
    root = (
        '[[package]]\nname = "demo"\nversion = "0.1.0"\nsource = { editable = "." }\n'
        'dependencies = [{ name = "requests" }]\n[package.optional-dependencies]\n'
        'a = [{ name = "urllib3", version = "1.26.20" }]\nb = [{ name = "urllib3", version = "2.8.0" }]\n'
    )
    (tmp_path / "uv.lock").write_text(
        "version = 1\n\n"
        + package("requests", "2.32.3", f"dependencies = {edges}")
        + package("urllib3", "1.26.20")
        + package("urllib3", "2.8.0")
        + root
    )
    assert names(tmp_path)["urllib3"] == "2.8.0"
    assert names(tmp_path, extras=["a"])["urllib3"] == "1.26.20"
    assert names(tmp_path, extras=["b"])["urllib3"] == "2.8.0"


@pytest.mark.network
def test_a_group_that_includes_groups_is_fresh_as_uv_locks_it(tmp_path: Path) -> None:
    # commitizen's `dev = [{ include-group = "test" }, ...]`: uv records the group expanded,
    # and a fresh lock was refused as stale ("no longer in pyproject.toml: pytest, ...")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "grouped"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["six"]\n\n[dependency-groups]\n'
        'dev = [{ include-group = "test" }, "iniconfig"]\ntest = ["pysocks", { include-group = "docs" }]\n'
        'docs = ["tomli"]\n'
    )
    env = {
        "UV_DEFAULT_INDEX": index_url(),
        "UV_CACHE_DIR": str(cache_dir() / "uv"),
        "UV_PYTHON": sys.executable,
    }
    run([tool("uv"), "lock"], cwd=tmp_path, env=env, timeout=300)
    project = pyproject.load(tmp_path)
    lock = uvlock.load(tmp_path / "uv.lock", project_root=tmp_path)
    uvlock.check_fresh(project, lock)
    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text().replace('docs = ["tomli"]', 'docs = ["tomli", "idna"]')
    )
    with pytest.raises(StaleUvLock, match=r"'dev' dependencies differ .*\(not in the lock: idna\)"):
        uvlock.check_fresh(pyproject.load(tmp_path), lock)
