"""pylock.toml (PEP 751), parsed by packaging.pylock, into Lock values; PEP 751 selection rules.

The files here are written in the layout the exporters use (real exports are built in
tests/e2e/test_other_locks.py) with an index URL that is never contacted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from slimline.errors import SlimlineError
from slimline.plan import select
from slimline.project import pylock, pyproject
from slimline.project.lockfile import LockSource
from slimline.project.pylock import PylockError
from tests.plan.helpers import target

INDEX = "https://index.invalid/simple"
PYPROJECT = '[project]\nname = "demo"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'


def entry(name: str, version: str, *, marker: str = "", tag: str = "py3-none-any") -> str:
    file = f"{name}-{version}-{tag}.whl"
    digest = hashlib.sha256(file.encode()).hexdigest()
    mark = f"marker = {marker!r}\n" if marker else ""
    return (
        f'[[packages]]\nname = "{name}"\nversion = "{version}"\n{mark}index = "{INDEX}"\n'
        f'wheels = [{{ url = "https://files.invalid/{file}", hashes = {{ sha256 = "{digest}" }} }}]\n\n'
    )


HEAD = """\
lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.11"
extras = ["socks"]
dependency-groups = ["dev"]
default-groups = ["default"]
created-by = "hand"

"""

BODY = (
    entry("six", "1.17.0", marker="'default' in dependency_groups")
    + entry("tomli", "2.5.0", marker="python_full_version < '3.12' and 'default' in dependency_groups")
    + entry("colorama", "0.4.6", marker="sys_platform == 'win32'")
    + entry("pysocks", "1.7.1", marker="'socks' in extras")
    + entry("iniconfig", "2.3.1", marker="'dev' in dependency_groups")
    + '[[packages]]\nname = "demo"\ndirectory = { path = ".", editable = true }\n\n'
    + '[[packages]]\nname = "localpkg"\ndirectory = { path = "libs/localpkg" }\n'
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "pylock.toml").write_text(HEAD + BODY)
    return tmp_path


def names(root: Path, py: tuple[int, int, int] = (3, 11, 2), **options: object) -> set[str]:
    lock = pylock.load(root / "pylock.toml", project_root=root)
    plan = select.select(pyproject.load(root), lock, target(py), **options)  # type: ignore[arg-type]
    return {p.name for p in plan.packages}


def test_parsed_by_packaging_into_the_lock_model(project: Path) -> None:
    lock = pylock.load(project / "pylock.toml", project_root=project)
    assert lock.format == "pylock"
    assert (lock.dependency_groups, lock.default_groups, set(lock.extras)) == (
        ("dev",),
        ("default",),
        {"socks"},
    )
    assert "demo" not in {p.name for p in lock.packages}  # the project itself
    six = lock.named("six")[0]
    assert six.source == LockSource(type="legacy", url=INDEX)
    assert six.files[0].filename == "six-1.17.0-py3-none-any.whl"
    assert six.markers == '"default" in dependency_groups'  # as packaging writes it
    assert lock.named("localpkg")[0].source == LockSource(type="directory", url="libs/localpkg")


def test_markers_with_extras_and_dependency_groups(project: Path) -> None:
    assert names(project) == {"six", "tomli", "localpkg"}  # main = the default groups
    assert names(project, (3, 12, 0)) == {"six", "localpkg"}
    assert names(project, with_groups=["dev"], extras=["socks"]) == {
        "six", "tomli", "localpkg", "iniconfig", "pysocks"
    }  # fmt: skip
    assert names(project, only_groups=["dev"]) == {"iniconfig", "localpkg"}


def test_only_what_the_lock_declares_can_be_asked_for(project: Path) -> None:
    text = (
        PYPROJECT
        + '\n[project.optional-dependencies]\nfast = ["six"]\n\n[dependency-groups]\ndocs = ["six"]\n'
    )
    (project / "pyproject.toml").write_text(text)
    with pytest.raises(SlimlineError, match="declares no extra fast") as got:
        names(project, extras=["fast"])
    assert "export" in got.value.hint
    with pytest.raises(
        SlimlineError, match=r"declares no dependency group docs \(it declares: default, dev\)"
    ):
        names(project, with_groups=["docs"])


def test_environments_and_requires_python_are_checked(project: Path) -> None:
    (project / "pylock.toml").write_text(HEAD.replace("'linux'", "'darwin'") + BODY)
    with pytest.raises(SlimlineError, match="made for other environments"):
        names(project)
    (project / "pylock.toml").write_text(HEAD.replace('">=3.11"', '">=3.13"') + BODY)
    with pytest.raises(SlimlineError, match=r"requires Python >=3\.13"):
        names(project)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('hashes = { sha256 = "', 'hashes = { md5 = "', "packages[0].wheels[0].hashes"),
        ('lock-version = "1.0"', 'lock-version = "2.0"', ""),
        ('name = "six"', 'name = "Six_"', "packages[0].name"),
    ],
)
def test_bad_fields_are_named(project: Path, old: str, new: str, field: str) -> None:
    (project / "pylock.toml").write_text((HEAD + BODY).replace(old, new, 1))
    with pytest.raises(PylockError) as got:
        pylock.load(project / "pylock.toml", project_root=project)
    assert got.value.field == field
    assert "export" in got.value.hint
