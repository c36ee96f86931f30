"""Which Debian suite fits a lock: pure and offline, on small locks written here (file names as the
package index publishes them), plus one lock made by the real Poetry (network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimline.base.debian.ref import KNOWN_SUITES, DebianRef, expected_target
from slimline.oci.image import Platform
from slimline.plan import fit, select
from slimline.project import lockfile
from slimline.project import pyproject as project_mod
from tests.plan.helpers import (
    ARM,
    MARKUPSAFE,
    NEW_ONLY,
    OLD_NO_SDIST,
    PYTHON_LDAP,
    SIX,
    X86,
    SmallLock,
    small_lock,
    write_project,
)
from tests.support import poetry_lock

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


def candidates(*platforms: Platform) -> list[fit.Candidate]:
    out = []
    for suite in KNOWN_SUITES:
        targets = [expected_target(DebianRef(suite), p) for p in platforms or (AMD64,)]
        out.append(fit.Candidate(suite, tuple(t for t in targets if t is not None)))
    return out


def assess(x: SmallLock, *platforms: Platform, wanted: fit.Wanted | None = None) -> tuple[fit.Fit, ...]:
    return fit.assess(x.project, x.lock, candidates(*platforms), wanted or fit.Wanted())


def choose(x: SmallLock, *platforms: Platform) -> tuple[str, str]:
    best, why = fit.choose(assess(x, *platforms), requires_python=str(x.project.requires_python))
    return best.suite, why


def test_expected_targets_are_the_known_suites() -> None:
    trixie = expected_target(DebianRef("trixie"), ARM64)
    assert trixie is not None and trixie.python_xy == "3.13" and trixie.libc_version == (2, 41)
    assert trixie.machine == "aarch64" and trixie.interpreter == "/usr/bin/python3.13"
    bookworm = expected_target(DebianRef("bookworm", "3.11"), AMD64)
    assert bookworm is not None and bookworm.python_version == (3, 11, 2) and bookworm.libc_version == (2, 36)
    assert expected_target(DebianRef("trixie", "3.12"), AMD64) is None  # not trixie's Python
    assert expected_target(DebianRef("sid"), AMD64) is None


def test_the_newest_suite_when_it_has_every_wheel(tmp_path: Path) -> None:
    suite, why = choose(small_lock(tmp_path, [SIX]))
    assert suite == "trixie"
    assert why == "the newest known suite; Python 3.13.5 satisfies requires-python >=3.10"


def test_a_lock_with_wheels_only_up_to_3_11_picks_bookworm_and_says_why(tmp_path: Path) -> None:
    suite, why = choose(small_lock(tmp_path, [MARKUPSAFE, SIX]))
    assert suite == "bookworm"
    assert why == "markupsafe 2.1.2 has no wheel for Python 3.13 (trixie)"


def test_sdist_only_packages_decide_nothing(tmp_path: Path) -> None:
    suite, why = choose(small_lock(tmp_path / "a", [PYTHON_LDAP, SIX]))
    assert suite == "trixie" and why.endswith("; builds python-ldap 3.4.4 from source (no wheels)")
    suite, why = choose(small_lock(tmp_path / "b", [PYTHON_LDAP, MARKUPSAFE]))
    assert suite == "bookworm"
    assert why == (
        "markupsafe 2.1.2 has no wheel for Python 3.13 (trixie); "
        "builds python-ldap 3.4.4 from source (no wheels)"
    )


def test_a_release_whose_wheels_stop_at_an_older_python_is_told_apart_from_sdist_only(
    tmp_path: Path,
) -> None:
    # greenlet 1.1.2 (a public FastAPI app's lock 1.1): wheels up to cp310 and an sdist; the
    # newest suite builds it, and the line says why there is no wheel (not "no wheels")
    greenlet = [f"greenlet-1.1.2-cp{v}-cp{v}-{X86}.whl" for v in (39, 310)]
    greenlet += ["greenlet-1.1.2-cp310-cp310-win_amd64.whl", "greenlet-1.1.2.tar.gz"]
    x = small_lock(tmp_path, [("greenlet", "1.1.2", greenlet), PYTHON_LDAP, SIX])
    suite, why = choose(x)
    assert suite == "trixie"
    assert why.endswith(
        "; builds python-ldap 3.4.4 from source (no wheels)"
        "; builds greenlet 1.1.2 from source (its wheels stop at CPython 3.10)"
    )


def test_when_no_suite_has_every_wheel_the_newest_that_can_build_them(tmp_path: Path) -> None:
    suite, why = choose(small_lock(tmp_path, [MARKUPSAFE, NEW_ONLY]))
    assert suite == "trixie"
    assert "no suite has wheels for everything: builds markupsafe 2.1.2 from source" in why


def test_requires_python_rules_out_suites(tmp_path: Path) -> None:
    suite, why = choose(small_lock(tmp_path, [SIX], requires=">=3.10,<3.12"))
    assert suite == "bookworm"
    assert why == "Python 3.13.5 does not satisfy requires-python <3.12,>=3.10 (trixie)"


def test_no_suite_can_install_the_lock(tmp_path: Path) -> None:
    x = small_lock(tmp_path, [OLD_NO_SDIST], requires=">=3.12")
    with pytest.raises(fit.FitError) as info:
        choose(x)
    text = str(info.value)
    assert "no known Debian suite can install every selected package" in text
    assert "  trixie (Python 3.13.5): oldpkg 1.0 has no wheel for Python 3.13 and no source to build" in text
    assert "  bookworm (Python 3.11.2): Python 3.11.2 does not satisfy requires-python >=3.12" in text


def test_an_error_that_is_not_about_the_suite_is_raised_as_it_is(tmp_path: Path) -> None:
    x = small_lock(tmp_path, [SIX])
    fits = assess(x, wanted=fit.Wanted(with_groups=("nope",)))
    with pytest.raises(select.SelectError, match=r"group\(s\) not found: nope"):
        fit.choose(fits, requires_python=">=3.10")


def test_a_gap_on_one_platform_is_named_with_it(tmp_path: Path) -> None:
    cffi = [f"cffi-1.15.0-cp311-cp311-{X86}.whl", f"cffi-1.15.0-cp311-cp311-{ARM}.whl", "cffi-1.15.0.tar.gz"]
    orjson = [f"orjson-3.8.0-cp{v}-cp{v}-{X86}.whl" for v in (311, 313)]  # for arm64 only cp311
    orjson += [f"orjson-3.8.0-cp311-cp311-{ARM}.whl", "orjson-3.8.0.tar.gz"]
    x = small_lock(tmp_path, [("cffi", "1.15.0", cffi), ("orjson", "3.8.0", orjson)])
    suite, why = choose(x, AMD64, ARM64)
    assert suite == "bookworm"
    assert why == (
        "cffi 1.15.0 has no wheel for Python 3.13 (trixie); "
        f"orjson 3.8.0 has no wheel for Python 3.13 on {ARM64} (trixie)"
    )


def test_a_wheel_for_a_newer_glibc_is_named_as_such(tmp_path: Path) -> None:
    new_glibc = ("fastpkg", "2.0", ["fastpkg-2.0-cp311-abi3-manylinux_2_39_x86_64.whl", "fastpkg-2.0.tar.gz"])
    x = small_lock(tmp_path, [new_glibc])
    assert choose(x)[0] == "trixie"
    with pytest.raises(fit.FitError) as info:
        fit.check("bookworm", assess(x), accepted=())
    assert info.value.problem == (
        "fastpkg 2.0 has no wheel for glibc 2.36 (bookworm), while debian:trixie has wheels for it"
    )


def test_a_named_base_without_the_wheels_another_suite_has_fails_naming_that_suite(tmp_path: Path) -> None:
    x = small_lock(tmp_path, [MARKUPSAFE, SIX])
    fits = assess(x)
    with pytest.raises(fit.FitError) as info:
        fit.check("trixie", fits, accepted=())
    err = info.value
    assert err.problem == (
        "markupsafe 2.1.2 has no wheel for Python 3.13 (trixie), while debian:bookworm has wheels for it"
    )
    assert "before downloading anything" in err.doing
    assert err.hint.startswith("use --base debian:bookworm")
    assert 'build-from-source = ["markupsafe"]' in err.hint
    fit.check("bookworm", fits, accepted=())  # fits
    fit.check("trixie", fits, accepted=("markupsafe",))  # the user accepts building it
    fit.check("trixie", fits, accepted=(fit.ALL,))


def test_a_named_base_with_a_package_it_cannot_install(tmp_path: Path) -> None:
    x = small_lock(tmp_path, [OLD_NO_SDIST, SIX])
    with pytest.raises(fit.FitError) as info:
        fit.check("trixie", assess(x), accepted=(fit.ALL,))  # nothing to build it from
    assert info.value.problem == "oldpkg 1.0 has no wheel for Python 3.13 (trixie), and no source to build"
    assert info.value.hint.startswith("use --base debian:bookworm")


def test_sdist_only_packages_never_fail_a_named_base(tmp_path: Path) -> None:
    fits = assess(small_lock(tmp_path, [PYTHON_LDAP, SIX]))
    fit.check("trixie", fits, accepted=())
    fit.check("bookworm", fits, accepted=())


@pytest.mark.network
def test_a_real_poetry_lock_of_markupsafe_2_1_2(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["markupsafe==2.1.2", "python-ldap==3.4.4"]\n\n[tool.poetry]\npackage-mode = false\n',
    )
    poetry_lock(root)
    x = SmallLock(project_mod.load(root), lockfile.load(root / "poetry.lock"))
    for platforms in ((AMD64,), (AMD64, ARM64)):
        suite, why = choose(x, *platforms)
        assert suite == "bookworm", why
        assert why.startswith("markupsafe 2.1.2 has no wheel for Python 3.13 (trixie)")
        assert "builds python-ldap 3.4.4 from source" in why
    with pytest.raises(fit.FitError, match="debian:bookworm has wheels"):
        fit.check("trixie", assess(x), accepted=())
