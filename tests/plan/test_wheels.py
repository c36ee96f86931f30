"""wheels.choose: tag priority for the target, build-number ties, sdist fallback (offline)."""

from __future__ import annotations

import pytest

from slimline.plan import wheels
from slimline.plan.model import Artifact
from tests.plan.helpers import target

H = "0" * 64


def files(*names: str) -> list[Artifact]:
    return [Artifact(n, H, "wheel" if n.endswith(".whl") else "sdist") for n in names]


def test_specific_beats_abi3_beats_pure() -> None:
    fs = files(
        "x-1-py3-none-any.whl",
        "x-1-cp38-abi3-manylinux_2_17_x86_64.whl",
        "x-1-cp312-cp312-manylinux_2_17_x86_64.whl",
        "x-1.tar.gz",
    )
    assert wheels.choose(fs, target((3, 12, 1))) == fs[2]
    assert wheels.choose(fs, target((3, 13, 1))) == fs[1]  # abi3 built for 3.8 runs on 3.13
    assert wheels.choose(fs, target((3, 13, 1), arch="linux/arm64")) == fs[0]


def test_manylinux_up_to_the_base_glibc() -> None:
    fs = files(
        "x-1-cp312-cp312-manylinux_2_28_x86_64.whl",
        "x-1-cp312-cp312-manylinux_2_39_x86_64.whl",
        "x-1-cp312-cp312-manylinux1_x86_64.whl",
    )
    assert wheels.choose(fs, target((3, 12, 1), libc_version=(2, 41))) == fs[1]
    assert wheels.choose(fs, target((3, 12, 1), libc_version=(2, 36))) == fs[0]
    assert wheels.choose(fs, target((3, 12, 1), libc_version=(2, 17))) == fs[2]


def test_musl_never_takes_manylinux() -> None:
    fs = files("x-1-cp312-cp312-manylinux_2_17_x86_64.whl", "x-1-cp312-cp312-musllinux_1_1_x86_64.whl")
    musl = target((3, 12, 1), libc="musl", libc_version=(1, 2))
    assert wheels.choose(fs, musl) == fs[1]
    assert wheels.choose(fs[:1], musl) is None
    assert wheels.choose(fs[1:], target((3, 12, 1))) is None


def test_build_number_breaks_ties_and_sdist_prefers_tar_gz() -> None:
    fs = files("x-1-1-py3-none-any.whl", "x-1-2-py3-none-any.whl")
    assert wheels.choose(fs, target()) == fs[1]
    sd = files("x-1.zip", "x-1.tar.gz", "x-1-cp27-cp27mu-manylinux1_x86_64.whl", "not-a-wheel.whl")
    assert wheels.choose(sd, target()) == sd[1]
    assert wheels.choose([], target()) is None


@pytest.mark.parametrize(
    ("name", "rank_ok"),
    [
        ("x-1-cp311-cp311-linux_x86_64.whl", True),
        ("x-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", False),
        ("x-1-cp313-cp313t-manylinux_2_17_x86_64.whl", False),
        ("x-1-cp311-cp311-win_amd64.whl", False),
    ],
)
def test_foreign_wheels_do_not_fit(name: str, rank_ok: bool) -> None:
    assert (
        wheels.wheel_rank(name, target((3, 11, 2) if "cp311" in name else (3, 13, 1))) is not None
    ) == rank_ok
