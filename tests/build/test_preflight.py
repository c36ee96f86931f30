"""What a build settles before it downloads anything: the groups line and the base that fits the lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slimline.base.debian.errors import NoSuitableSuite
from slimline.build import preflight
from slimline.plan.fit import FitError
from slimline.project import settings as settings_mod
from slimline.project.settings import SettingsError
from tests.plan.helpers import MARKUPSAFE, SIX, SmallLock, small_lock
from tests.support import Lines


def settle(x: SmallLock, **table: Any) -> tuple[str | None, list[str]]:
    lines = Lines()
    chosen = preflight.settle(x.project, x.lock, settings_mod.load(table), report=lines)
    return chosen.base, lines.lines


def test_no_base_named_gets_the_suite_that_fits_and_says_why(tmp_path: Path) -> None:
    base, lines = settle(small_lock(tmp_path, [MARKUPSAFE, SIX]))
    assert base == "debian:bookworm"
    assert lines == [
        "groups: main; not included: dev (use --with)",
        "base debian:bookworm: markupsafe 2.1.2 has no wheel for Python 3.13 (trixie)",
    ]
    base, _ = settle(small_lock(tmp_path / "six", [SIX]))
    assert base == "debian:trixie"


def test_the_groups_line_follows_the_options(tmp_path: Path) -> None:
    x = small_lock(tmp_path, [SIX])
    assert settle(x, **{"with": ["dev"]})[1][0] == "groups: main, dev"
    assert settle(x, only=["dev"])[1][0] == "groups: dev; not included: main (use --only)"


def test_a_named_debian_base_is_checked_before_anything_is_downloaded(tmp_path: Path) -> None:
    x = small_lock(tmp_path, [MARKUPSAFE, SIX])
    with pytest.raises(FitError, match="debian:bookworm has wheels for it"):
        settle(x, base="debian:trixie")
    with pytest.raises(FitError):
        settle(x, base="debian:trixie/python3.13")
    assert settle(x, base="debian:trixie", **{"build-from-source": ["MarkupSafe"]})[0] == "debian:trixie"
    assert settle(x, base="debian:bookworm")[0] == "debian:bookworm"
    # not known before the archive or the image is read: left to the build
    assert settle(x, base="debian:sid")[0] == "debian:sid"
    assert settle(x, base="oci:somewhere:tag")[0] == "oci:somewhere:tag"


def test_no_known_suite_for_requires_python(tmp_path: Path) -> None:
    with pytest.raises(NoSuitableSuite):
        settle(small_lock(tmp_path, [SIX], requires=">=3.14"))


def test_build_from_source_setting() -> None:
    loaded = settings_mod.load({"build-from-source": ["MarkupSafe", "python_ldap"]})
    assert loaded.build_from_source == ("markupsafe", "python-ldap")
    assert settings_mod.load({"build-from-source": [":all:"]}).build_from_source == (":all:",)
    overridden = settings_mod.load({}, overrides={"build-from-source": ["orjson"]})
    assert overridden.build_from_source == ("orjson",)
    with pytest.raises(SettingsError, match=r"tool\.slimline\.build-from-source"):
        settings_mod.load({"build-from-source": ["not a name"]})
