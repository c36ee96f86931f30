"""Debian base references (and the settings of a Debian base): the light part of
:mod:`slimline.base.debian`.

Kept apart from :mod:`.base` so that reading settings or a pinned base imports nothing that
verifies signatures or parses archive indexes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from slimline.base.debian.errors import BadDebianRef, NoSuitableSuite, ResolveError
from slimline.oci.image import Platform
from slimline.project.settings import DebianSettings as BaseSettings
from slimline.target import Target

BUILD_FORMAT = "5"  # bump when a base's bytes change (3: builders; 4: the whole stdlib; 5: sha256sums)

__all__ = [
    "BUILD_FORMAT",
    "KNOWN_GLIBC",
    "KNOWN_SUITES",
    "BaseSettings",
    "DebianRef",
    "debian_arch",
    "expected_target",
    "suite_for",
]

# Suites slimline picks from when a project names no base: newest first, with the version of
# their default Python at release (the exact version installed is read from the archive).
KNOWN_SUITES: Mapping[str, str] = {"trixie": "3.13.5", "bookworm": "3.11.2"}
# The glibc of each known suite: with KNOWN_SUITES, what a base's wheels are chosen for before
# the base is assembled (the assembled base's own target is what the build then uses).
KNOWN_GLIBC: Mapping[str, tuple[int, int]] = {"trixie": (2, 41), "bookworm": (2, 36)}

_ARCHES = {
    "amd64": "amd64",
    "arm64": "arm64",
    "arm": "armhf",
    "386": "i386",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_SUITE = re.compile(r"[a-z][a-z0-9.+-]*")


@dataclass(frozen=True, slots=True)
class DebianRef:
    """``debian:SUITE`` or ``debian:SUITE/pythonX.Y``."""

    suite: str
    python: str | None = None  # "3.13" or None = the suite's default python3

    @classmethod
    def parse(cls, text: str) -> DebianRef:
        body = text.strip()
        if not body.startswith("debian:"):
            raise BadDebianRef(text, "it does not start with 'debian:'")
        suite, _, py = body.removeprefix("debian:").partition("/")
        if not _SUITE.fullmatch(suite):
            raise BadDebianRef(text, f"{suite!r} is not a suite name")
        python = None
        if py:
            m = re.fullmatch(r"(?:python)?(3\.\d+)", py)
            if not m:
                raise BadDebianRef(text, f"{py!r} is not pythonX.Y")
            python = m.group(1)
        return cls(suite=suite, python=python)

    def __str__(self) -> str:
        return f"debian:{self.suite}" + (f"/python{self.python}" if self.python else "")


def suite_for(requires_python: SpecifierSet) -> DebianRef:
    """The newest known suite whose Python satisfies ``requires_python``; else :class:`NoSuitableSuite`."""
    for suite, version in KNOWN_SUITES.items():
        if requires_python.contains(version, prereleases=True):
            return DebianRef(suite=suite)
    raise NoSuitableSuite(str(requires_python), dict(KNOWN_SUITES))


def expected_target(ref: DebianRef, platform: Platform) -> Target | None:
    """The target a base of ``ref`` will have on ``platform``, as known without the archive (the
    suite's default Python and glibc); None for a suite or Python not in :data:`KNOWN_SUITES`."""
    version, glibc = KNOWN_SUITES.get(ref.suite), KNOWN_GLIBC.get(ref.suite)
    if version is None or glibc is None:
        return None
    major, minor, micro = (int(part) for part in version.split("."))
    if ref.python not in (None, f"{major}.{minor}"):
        return None
    return Target(
        platform=platform,
        python_version=(major, minor, micro),
        interpreter=f"/usr/bin/python{major}.{minor}",
        libc="glibc",
        libc_version=glibc,
    )


def debian_arch(platform: Platform) -> str:
    arch = _ARCHES.get(platform.architecture)
    if (
        arch is None
        or platform.os != "linux"
        or (platform.architecture == "arm" and platform.variant == "v6")
    ):
        raise ResolveError(
            f"platform {platform}",
            "Debian has no matching architecture",
            hint="use linux/amd64 or linux/arm64",
        )
    return arch
