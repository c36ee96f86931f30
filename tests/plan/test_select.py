"""Selection for the target (groups, extras, markers, lock versions, origins) on real Poetry locks."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from slimline.plan import select
from slimline.plan.model import Origin, Plan
from slimline.project import lockfile
from slimline.project import pyproject as project
from slimline.target import Target
from tests.plan.helpers import Locked, classic_locked, downgrade, pep621_locked, target
from tests.support import index_url

__all__ = ["classic_locked", "pep621_locked"]

pytestmark = pytest.mark.network

PEP621_BASE = {"cffi", "click", "cryptography", "markupsafe", "pycparser", "pyyaml"}
CLASSIC_BASE = {
    "certifi",
    "charset-normalizer",
    "click",
    "idna",
    "localpkg",
    "packaging",
    "pysocks",
    "requests",
    "urllib3",
}


def plan_for(root: Path, tgt: Target, **options: Any) -> Plan:
    return select.select(project.load(root), lockfile.load(root / "poetry.lock"), tgt, **options)


def names(plan: Plan) -> set[str]:
    return {p.name for p in plan.packages}


def test_main_group_only_by_default(pep621_locked: Locked) -> None:
    plan = plan_for(pep621_locked.pypi, target((3, 11, 2)))
    # colorama (click, platform_system == "Windows"), tomli (python < 3.11), six (aarch64 only),
    # pysocks (extra), iniconfig (dev), idna (optional docs group) are all left out.
    assert names(plan) == PEP621_BASE
    assert plan.groups == ("main",) and plan.extras == ()
    assert [p.name for p in plan.packages] == sorted(PEP621_BASE)


def test_markers_are_evaluated_for_the_target_not_the_host(pep621_locked: Locked) -> None:
    assert names(plan_for(pep621_locked.pypi, target((3, 10, 12)))) == PEP621_BASE | {"tomli"}
    assert names(plan_for(pep621_locked.pypi, target((3, 13, 1)))) == PEP621_BASE
    assert names(plan_for(pep621_locked.pypi, target((3, 13, 1), arch="linux/arm64"))) == PEP621_BASE | {
        "six"
    }


def test_groups_like_poetry(pep621_locked: Locked) -> None:
    root, t = pep621_locked.pypi, target()
    assert names(plan_for(root, t, with_groups=["dev"])) == PEP621_BASE | {"iniconfig"}
    assert names(plan_for(root, t, with_groups=["dev", "docs"])) == PEP621_BASE | {"iniconfig", "idna"}
    assert names(plan_for(root, t, only_groups=["dev"])) == {"iniconfig"}
    assert names(plan_for(root, t, with_groups=["dev"], without_groups=["main"])) == {"iniconfig"}
    # --with/--without are ignored with --only, as in Poetry
    assert names(plan_for(root, t, only_groups=["docs"], with_groups=["dev"])) == {"idna"}
    with pytest.raises(select.SelectError, match=r"not found: tests \(via --with\)") as info:
        plan_for(root, t, with_groups=["tests"])
    assert "dev" in str(info.value)


def test_extras(pep621_locked: Locked) -> None:
    root, t = pep621_locked.pypi, target()
    assert names(plan_for(root, t, extras=["SOCKS"])) == PEP621_BASE | {"pysocks"}
    assert plan_for(root, t, all_extras=True).extras == ("socks",)
    with pytest.raises(select.SelectError, match="not defined by the project: nope"):
        plan_for(root, t, extras=["nope"])


def test_target_python_outside_requires_python(pep621_locked: Locked) -> None:
    with pytest.raises(select.SelectError, match=r"Python 3\.9\.18 but the project requires Python >=3\.10"):
        plan_for(pep621_locked.pypi, target((3, 9, 18)))


def test_classic_project(classic_locked: Locked) -> None:
    root = classic_locked.legacy
    plan = plan_for(root, target((3, 11, 2)))
    assert names(plan) == CLASSIC_BASE  # no pywin32-ctypes (win32), no exceptiongroup (3.11), no tomli
    assert names(plan_for(root, target((3, 10, 4)))) == CLASSIC_BASE | {"exceptiongroup"}
    assert names(plan_for(root, target(), extras=["toml"], with_groups=["test", "lint"])) == CLASSIC_BASE | {
        "tomli",
        "iniconfig",
        "pyflakes",
    }
    by_name = {p.name: p for p in plan.packages}
    assert by_name["packaging"].version == "24.2"  # two versions locked, one per python range
    assert {p.name: p.version for p in plan_for(root, target((3, 10, 4))).packages}["packaging"] == "23.2"
    assert by_name["requests"].extras == ("socks",)
    local = by_name["localpkg"]
    assert local.origin == Origin(kind="directory", url=str((root / "libs" / "localpkg").resolve()))
    assert local.artifact is None and local.needs_build and local.is_local


def test_origins(pep621_locked: Locked) -> None:
    legacy = plan_for(pep621_locked.legacy, target())
    assert {p.origin for p in legacy.packages} == {
        Origin(kind="index", url=index_url(), name="slimline-test-index")
    }
    pypi = plan_for(pep621_locked.pypi, target())
    assert {p.origin for p in pypi.packages} == {Origin(kind="index", url="", name="")}


MATRIX_TARGETS = [
    target((3, 10, 12)),
    target((3, 13, 1), arch="linux/arm64", libc="musl", libc_version=(1, 2)),
]
MATRIX_OPTIONS: list[dict[str, Any]] = [
    {},
    {"with_groups": ["dev", "docs"], "all_extras": True},
    {"only_groups": ["test"], "extras": ["toml"]},
    {"with_groups": ["lint"], "extras": ["socks"]},
    {"all_extras": True, "with_groups": ["test", "lint"]},
]


@pytest.mark.parametrize("version", ["2.0", "1.1"])
def test_older_locks_select_the_same(
    pep621_locked: Locked, classic_locked: Locked, tmp_path: Path, version: str
) -> None:
    """Lock 2.0/1.1 have no groups or markers per package: walking the graph must give 2.1's answer."""
    for i, root in enumerate((pep621_locked.legacy, classic_locked.legacy)):
        old = downgrade(root, tmp_path / f"{i}", version)
        proj = project.load(root)
        for t, options in itertools.product(MATRIX_TARGETS, MATRIX_OPTIONS):
            groups = {*options.get("with_groups", ()), *options.get("only_groups", ())}
            extras = {*options.get("extras", ())}
            if not groups <= set(proj.groups) or not extras <= set(proj.extras):
                continue
            want = plan_for(root, t, **options)
            got = plan_for(old, t, **options)
            assert got.packages == _relocated(want, root, old).packages, (root.name, t, options)


def _relocated(plan: Plan, old_root: Path, new_root: Path) -> Plan:
    """The same plan with directory origins pointing into the copied project."""
    from dataclasses import replace

    def move(o: Origin) -> Origin:
        if o.kind != "directory":
            return o
        return replace(o, url=str(new_root.resolve() / Path(o.url).relative_to(old_root.resolve())))

    return replace(plan, packages=tuple(replace(p, origin=move(p.origin)) for p in plan.packages))


WHEELS = [
    # (target, package, expected file)
    (
        target((3, 11, 2)),
        "markupsafe",
        "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ),
    (
        target((3, 13, 1), arch="linux/arm64", libc="musl", libc_version=(1, 2)),
        "markupsafe",
        "MarkupSafe-3.0.2-cp313-cp313-musllinux_1_2_aarch64.whl",
    ),
    (target((3, 14, 0)), "markupsafe", "markupsafe-3.0.2.tar.gz"),  # no cp314 wheel: build the sdist
    (target((3, 11, 2)), "cryptography", "cryptography-44.0.2-cp39-abi3-manylinux_2_34_x86_64.whl"),
    (
        target((3, 11, 2), libc_version=(2, 31)),
        "cryptography",
        "cryptography-44.0.2-cp39-abi3-manylinux_2_28_x86_64.whl",
    ),
    (
        target((3, 11, 2), libc_version=(2, 17)),
        "cryptography",
        "cryptography-44.0.2-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ),
    (
        target((3, 14, 0), arch="linux/arm64"),
        "cryptography",
        "cryptography-44.0.2-cp39-abi3-manylinux_2_34_aarch64.whl",
    ),
    (
        target((3, 12, 3), libc="musl", libc_version=(1, 2)),
        "cryptography",
        "cryptography-44.0.2-cp39-abi3-musllinux_1_2_x86_64.whl",
    ),
    (target((3, 12, 3), libc="musl", libc_version=(1, 1)), "cryptography", "cryptography-44.0.2.tar.gz"),
    (
        target((3, 12, 3), arch="linux/arm64", libc="musl", libc_version=(1, 2)),
        "pyyaml",
        "PyYAML-6.0.2-cp312-cp312-musllinux_1_1_aarch64.whl",
    ),
    (target((3, 12, 3), arch="linux/riscv64"), "pyyaml", "pyyaml-6.0.2.tar.gz"),
    (target((3, 12, 3), arch="linux/riscv64"), "click", "click-8.1.8-py3-none-any.whl"),
]


@pytest.mark.parametrize(("tgt", "package", "expected"), WHEELS)
def test_wheel_choice_from_a_real_lock(
    pep621_locked: Locked, tgt: Target, package: str, expected: str
) -> None:
    plan = plan_for(pep621_locked.pypi, tgt)
    (chosen,) = [p for p in plan.packages if p.name == package]
    assert chosen.artifact is not None and chosen.artifact.filename == expected
    assert chosen.needs_build == expected.endswith(".tar.gz")
