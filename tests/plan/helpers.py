"""Fixtures for the plan tests (project, lock, settings, selection, wheels, detection).

Projects are written into temporary directories and locked with the real Poetry
(:func:`tests.support.poetry_lock`) once per session: each lock is then copied into two
variants, one with the ``legacy`` index source Poetry recorded and one the way a lock for a
PyPI project looks (no source tables).  Lock-version 2.0 and 1.1 files are made from the real
2.1 lock by dropping what those versions do not have, exactly as their writers laid them out.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from slimline.oci.image import Platform
from slimline.project import lockfile
from slimline.project import pyproject as project_mod
from slimline.target import Target
from tests.support import poetry_lock

PEP621 = """\
[project]
name = "demo-app"
version = "0.1.0"
description = "A demo"
authors = [{name = "Ada Lovelace", email = "ada@example.org"}]
license = "MIT"
requires-python = ">=3.10"
dependencies = [
  "click==8.1.8",
  "markupsafe==3.0.2",
  "pyyaml==6.0.2",
  "cryptography==44.0.2",
  "tomli==2.2.1; python_version < '3.11'",
  "six==1.17.0; platform_machine == 'aarch64'",
]

[project.optional-dependencies]
socks = ["pysocks==1.7.1"]

[project.scripts]
demo = "demo_app:main"

[project.urls]
Homepage = "https://example.org/demo"

[dependency-groups]
dev = ["iniconfig==2.0.0"]

[tool.poetry.group.docs]
optional = true

[tool.poetry.group.docs.dependencies]
idna = "3.10"

[tool.slimline]
base = "debian:bookworm"
with = ["dev"]
"""

CLASSIC = """\
[tool.poetry]
package-mode = false
name = "classic-app"
description = "The classic layout"
authors = ["Grace Hopper <grace@example.org>"]

[tool.poetry.dependencies]
python = "^3.10"
requests = {version = "2.32.3", extras = ["socks"]}
exceptiongroup = {version = "1.2.2", python = "<3.11"}
pywin32-ctypes = {version = "0.2.3", markers = "sys_platform == 'win32'"}
tomli = {version = "2.2.1", optional = true}
localpkg = {path = "libs/localpkg"}
packaging = [{version = "23.2", python = "<3.11"}, {version = "24.2", python = ">=3.11"}]

[tool.poetry.extras]
toml = ["tomli"]

[tool.poetry.group.test.dependencies]
iniconfig = "2.0.0"

[tool.poetry.group.lint]
optional = true

[tool.poetry.group.lint.dependencies]
pyflakes = "3.2.0"
"""

LOCALPKG = """\
[project]
name = "localpkg"
version = "1.2.0"
requires-python = ">=3.8"
dependencies = ["click==8.1.8"]

[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"
"""


@dataclass(frozen=True, slots=True)
class Locked:
    """One real project locked once: ``legacy`` keeps Poetry's index source, ``pypi`` has none."""

    legacy: Path
    pypi: Path


def write_project(root: Path, pyproject: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(pyproject)
    if "libs/localpkg" in pyproject:
        pkg = root / "libs" / "localpkg"
        (pkg / "localpkg").mkdir(parents=True, exist_ok=True)
        (pkg / "pyproject.toml").write_text(LOCALPKG)
        (pkg / "localpkg" / "__init__.py").write_text("")
    return root


def lock_both(base: Path, pyproject: str) -> Locked:
    legacy = write_project(base / "legacy", pyproject)
    poetry_lock(legacy, pypi_style=False)
    pypi = base / "pypi"
    shutil.copytree(legacy, pypi)
    (pypi / "pyproject.toml").write_text(pyproject)
    lock = pypi / "poetry.lock"
    doc: Any = tomlkit.parse(lock.read_text())
    for pkg in doc["package"]:
        if pkg.get("source", {}).get("type") == "legacy":
            del pkg["source"]
    doc["metadata"]["content-hash"] = project_mod.load(pypi).content_hash()
    lock.write_text(tomlkit.dumps(doc))
    return Locked(legacy=legacy, pypi=pypi)


# Fixtures imported into several test modules are separate fixture definitions, so the
# session scope alone would lock once per module: remember each lock for the whole run.
_LOCKED: dict[str, Locked] = {}


def _locked_once(factory: pytest.TempPathFactory, name: str, pyproject: str) -> Locked:
    if name not in _LOCKED:
        _LOCKED[name] = lock_both(factory.mktemp(name), pyproject)
    return _LOCKED[name]


@pytest.fixture(scope="session")
def pep621_locked(tmp_path_factory: pytest.TempPathFactory) -> Locked:
    return _locked_once(tmp_path_factory, "pep621", PEP621)


@pytest.fixture(scope="session")
def classic_locked(tmp_path_factory: pytest.TempPathFactory) -> Locked:
    return _locked_once(tmp_path_factory, "classic", CLASSIC)


def downgrade(project: Path, dest: Path, version: str) -> Path:
    """Copy ``project`` to ``dest`` with its lock rewritten to lock-version ``version`` (2.0 or 1.1)."""
    shutil.copytree(project, dest)
    lock = dest / "poetry.lock"
    doc: Any = tomlkit.parse(lock.read_text())
    files = tomlkit.table()
    for pkg in doc["package"]:
        for key in ("groups", "markers"):
            if key in pkg:
                del pkg[key]
        if version == "1.1":
            pkg["category"] = "main"
            # lock 1.1 keeps one list per name, holding the files of every locked version
            files[pkg["name"]] = [*files.get(pkg["name"], []), *pkg["files"]]
            del pkg["files"]
    doc["metadata"]["lock-version"] = version
    if version == "1.1":
        doc["metadata"]["files"] = files
    lock.write_text(tomlkit.dumps(doc))
    return dest


def target(
    py: tuple[int, int, int] = (3, 11, 2),
    *,
    arch: str = "linux/amd64",
    libc: str = "glibc",
    libc_version: tuple[int, int] = (2, 36),
) -> Target:
    return Target(
        platform=Platform.parse(arch),
        python_version=py,
        interpreter=f"/usr/bin/python{py[0]}.{py[1]}",
        libc="glibc" if libc == "glibc" else "musl",
        libc_version=libc_version,
    )


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def all_files(directory: Path) -> Iterator[Path]:
    yield from sorted(p for p in directory.rglob("*") if p.is_file())


# --- small locks written by hand (for the fitting of a base) -------------------------------------

X86 = "manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "manylinux_2_17_aarch64.manylinux2014_aarch64"

MARKUPSAFE = ("markupsafe", "2.1.2", [f"MarkupSafe-2.1.2-cp311-cp311-{X86}.whl", "MarkupSafe-2.1.2.tar.gz"])
PYTHON_LDAP = ("python-ldap", "3.4.4", ["python-ldap-3.4.4.tar.gz"])  # sdist only
SIX = ("six", "1.17.0", ["six-1.17.0-py2.py3-none-any.whl", "six-1.17.0.tar.gz"])
NEW_ONLY = ("newpkg", "1.0", [f"newpkg-1.0-cp313-cp313-{X86}.whl", "newpkg-1.0.tar.gz"])
OLD_NO_SDIST = ("oldpkg", "1.0", [f"oldpkg-1.0-cp311-cp311-{X86}.whl"])


@dataclass(frozen=True, slots=True)
class SmallLock:
    project: project_mod.Project
    lock: lockfile.Lock


def small_lock(
    root: Path, packages: Sequence[tuple[str, str, list[str]]], *, requires: str = ">=3.10"
) -> SmallLock:
    """A ``package-mode = false`` project depending on ``packages``, with a lock-version 2.1 lock
    listing the given files (hashes made up: selection never reads them)."""
    deps = ", ".join(f'"{name}=={version}"' for name, version, _ in packages)
    write_project(
        root,
        f'[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = "{requires}"\n'
        f"dependencies = [{deps}]\n\n[tool.poetry]\npackage-mode = false\n\n"
        '[tool.poetry.group.dev.dependencies]\niniconfig = "2.0.0"\n',
    )
    entries = []
    for name, version, files in packages:
        listed = ",\n".join(
            f'    {{file = "{f}", hash = "sha256:{hashlib.sha256(f.encode()).hexdigest()}"}}' for f in files
        )
        entries.append(
            f'[[package]]\nname = "{name}"\nversion = "{version}"\ndescription = ""\noptional = false\n'
            f'python-versions = ">=3.7"\ngroups = ["main"]\nfiles = [\n{listed},\n]\n'
        )
    meta = f'[metadata]\nlock-version = "2.1"\npython-versions = "{requires}"\ncontent-hash = "0"\n'
    (root / "poetry.lock").write_text("\n".join([*entries, meta]))
    return SmallLock(project_mod.load(root), lockfile.load(root / "poetry.lock"))
