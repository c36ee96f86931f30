"""poetry.lock (lock-version 1.1, 2.0, 2.1) into a Lock; bad fields are named by path."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimline.project import lockfile
from slimline.project.lockfile import LockedDependency, LockError, LockSource
from tests.plan.helpers import Locked, classic_locked, downgrade, pep621_locked

__all__ = ["classic_locked", "pep621_locked"]

HEX = "ab" * 32


def write(tmp_path: Path, body: str, version: str = "2.1") -> Path:
    path = tmp_path / "poetry.lock"
    path.write_text(
        body + f'\n[metadata]\nlock-version = "{version}"\npython-versions = "*"\ncontent-hash = "x"\n'
    )
    return path


@pytest.mark.network
def test_real_21_lock(pep621_locked: Locked, classic_locked: Locked) -> None:
    lock = lockfile.load(pep621_locked.legacy / "poetry.lock")
    assert lock.lock_version == "2.1" and lock.has_groups_and_markers
    assert lock.poetry_version.startswith("2.")
    crypto = lock.named("Cryptography")[0]
    assert crypto.groups == ("main",)
    assert crypto.dependencies["cffi"] == (
        LockedDependency(version=">=1.12", markers='platform_python_implementation != "PyPy"'),
    )
    assert {a.kind for a in crypto.files} == {"wheel", "sdist"}
    assert all(len(a.sha256) == 64 for a in crypto.files)
    assert crypto.source is not None and crypto.source.type == "legacy"
    assert lock.named("pysocks")[0].optional and lock.named("pysocks")[0].markers == 'extra == "socks"'
    assert lock.extras == {"socks": ("pysocks",)}
    assert lockfile.load(pep621_locked.pypi / "poetry.lock").named("cryptography")[0].source is None

    classic = lockfile.load(classic_locked.legacy / "poetry.lock")
    local = classic.named("localpkg")[0]
    assert local.source == LockSource(type="directory", url="libs/localpkg")
    assert local.files == () and local.develop is False
    requests = classic.named("requests")[0]
    assert requests.dependencies["pysocks"][0].optional
    assert "socks" in requests.extras


@pytest.mark.network
@pytest.mark.parametrize("version", ["2.0", "1.1"])
def test_older_lock_versions_carry_the_same_packages(
    pep621_locked: Locked, classic_locked: Locked, tmp_path: Path, version: str
) -> None:
    # the classic project locks two versions of "packaging": lock 1.1 lists their files together
    for i, root in enumerate((pep621_locked.legacy, classic_locked.legacy)):
        new = lockfile.load(root / "poetry.lock")
        old = lockfile.load(downgrade(root, tmp_path / f"old{i}", version) / "poetry.lock")
        assert old.lock_version == version and not old.has_groups_and_markers
        assert [(p.name, p.version, p.files, p.dependencies, p.source) for p in old.packages] == [
            (p.name, p.version, p.files, p.dependencies, p.source) for p in new.packages
        ]
        assert all(p.groups == () and p.markers == "" for p in old.packages)
    assert len(lockfile.load(tmp_path / "old1" / "poetry.lock").named("packaging")) == 2


def test_lock_11_file_source_keeps_only_its_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[[package]]\nname = "Foo_Bar"\nversion = "1.0"\noptional = false\n'
        'python-versions = "*"\ncategory = "main"\n'
        '[package.source]\ntype = "file"\nurl = "dist/foo_bar-1.0-py3-none-any.whl"\n'
        "[metadata.files]\nfoo-bar = [\n"
        f'  {{file = "foo_bar-1.0-py3-none-any.whl", hash = "sha256:{HEX}"}},\n'
        f'  {{file = "foo_bar-1.0.tar.gz", hash = "sha256:{HEX}"}},\n'
        f'  {{file = "foo_bar-1.0.win32.exe", hash = "sha256:{HEX}"}},\n]\n',
        version="1.1",
    )
    lock = lockfile.load(tmp_path / "poetry.lock")
    (pkg,) = lock.packages
    assert pkg.name == "foo-bar"
    assert [a.filename for a in pkg.files] == ["foo_bar-1.0-py3-none-any.whl"]


def test_lock_11_url_source_keeps_the_hash_of_its_file(tmp_path: Path) -> None:
    # lock 1.1 keeps a url dependency's hash in [metadata.files]: slimline checks the download with it
    write(
        tmp_path,
        '[[package]]\nname = "demo"\nversion = "1.0"\noptional = false\npython-versions = "*"\n'
        '[package.source]\ntype = "url"\nurl = "https://files.invalid/x/demo%2Bcpu-1.0-py3-none-any.whl"\n'
        "[metadata.files]\ndemo = [\n"
        f'  {{file = "demo+cpu-1.0-py3-none-any.whl", hash = "sha256:{HEX}"}},\n'
        f'  {{file = "demo-1.0.tar.gz", hash = "sha256:{"cd" * 32}"}},\n]\n',
        version="1.1",
    )
    (pkg,) = lockfile.load(tmp_path / "poetry.lock").packages
    assert [(a.filename, a.sha256) for a in pkg.files] == [("demo+cpu-1.0-py3-none-any.whl", HEX)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '[[package]]\nname = "a"\nversion = "1"\nfiles = [{file = "a-1.tar.gz", hash = "md5:00"}]\n',
            "package[0].files[0].hash",
        ),
        (
            '[[package]]\nname = "a"\nversion = "1"\nfiles = [{file = "a-1.tar.gz"}]\n',
            "package[0].files[0].hash",
        ),
        ('[[package]]\nname = "a"\nversion = 1\n', "package[0].version"),
        ('[[package]]\nversion = "1"\n', "package[0].name"),
        ('[[package]]\nname = "a"\nversion = "1"\ngroups = ["main", 2]\n', "package[0].groups[1]"),
        ('[[package]]\nname = "a"\nversion = "1"\noptional = "no"\n', "package[0].optional"),
        (
            '[[package]]\nname = "a"\nversion = "1"\n[package.dependencies]\nb = 3\n',
            "package[0].dependencies.b",
        ),
        (
            '[[package]]\nname = "a"\nversion = "1"\n'
            '[package.dependencies]\nb = [{version = "1"}, {markers = 2}]\n',
            "package[0].dependencies.b[1].markers",
        ),
        ('[[package]]\nname = "a"\nversion = "1"\n[package.source]\nurl = "x"\n', "package[0].source.type"),
        ('[[package]]\nname = "a"\nversion = "1"\nmarkers = {main = 1}\n', "package[0].markers.main"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, body: str, field: str) -> None:
    with pytest.raises(LockError) as info:
        lockfile.load(write(tmp_path, body))
    assert info.value.field == field
    assert "poetry lock" in str(info.value)


@pytest.mark.parametrize("version", ["0.9", "3.0", "x"])
def test_unknown_lock_version(tmp_path: Path, version: str) -> None:
    with pytest.raises(LockError, match="not supported") as info:
        lockfile.load(write(tmp_path, "", version=version))
    assert info.value.field == "metadata.lock-version"


def test_not_a_lock(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text("[[package]\n")
    with pytest.raises(LockError, match="not valid TOML"):
        lockfile.load(tmp_path / "poetry.lock")
    (tmp_path / "poetry.lock").write_text("package = []\n")
    with pytest.raises(LockError, match=r"no \[metadata\]"):
        lockfile.load(tmp_path / "poetry.lock")
    with pytest.raises(LockError, match="does not exist"):
        lockfile.load(tmp_path / "missing.lock")


def test_per_group_markers(tmp_path: Path) -> None:
    lock = lockfile.load(
        write(
            tmp_path,
            '[[package]]\nname = "tomli"\nversion = "2"\ngroups = ["main", "dev"]\n'
            'markers = {main = "sys_platform == \\"linux\\""}\n',
        )
    )
    (pkg,) = lock.packages
    assert pkg.marker_for("main") == 'sys_platform == "linux"'
    assert pkg.marker_for("dev") == ""
