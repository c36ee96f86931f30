"""Errors of the Debian base assembly.  Each carries the data a caller needs as attributes."""

from __future__ import annotations

from slimline.errors import ExitStatus, SlimlineError

__all__ = [
    "BadDebianRef",
    "DebError",
    "DebianError",
    "IndexError_",
    "MirrorNotFound",
    "NoSuitableSuite",
    "ReleaseError",
    "ResolveError",
    "SignatureError",
]


class DebianError(SlimlineError):
    """Root of the errors raised while assembling a base from Debian packages."""


class BadDebianRef(DebianError):
    exit_status = ExitStatus.INPUT

    def __init__(self, text: str, problem: str) -> None:
        super().__init__(
            f"{text!r} is not a Debian base reference: {problem}",
            doing="reading the base reference",
            hint="write debian:SUITE or debian:SUITE/pythonX.Y, "
            "e.g. debian:bookworm or debian:trixie/python3.13",
        )
        self.text = text


class NoSuitableSuite(DebianError):
    exit_status = ExitStatus.INPUT

    def __init__(self, requires_python: str, known: dict[str, str]) -> None:
        listed = ", ".join(f"{suite} (Python {py})" for suite, py in known.items())
        super().__init__(
            f"no Debian suite ships a Python that satisfies requires-python {requires_python!r}; "
            f"known: {listed}",
            doing="choosing a Debian base for the project",
            hint="set a registry base that has a matching Python (e.g. --base python:3.12-slim), "
            "or widen requires-python",
        )
        self.requires_python = requires_python


class MirrorNotFound(DebianError):
    exit_status = ExitStatus.INPUT

    def __init__(self, looked_at: list[str]) -> None:
        where = ", ".join(looked_at) if looked_at else "nothing"
        super().__init__(
            f"no Debian archive mirror is configured (looked at: {where})",
            doing="finding the Debian mirror",
            hint='set [tool.slimline.debian] mirror = "<URL of a Debian archive mirror>" in pyproject.toml, '
            "or the environment variable SLIMLINE_DEBIAN_MIRROR",
        )
        self.looked_at = looked_at


class SignatureError(DebianError):
    """InRelease is not signed by a trusted Debian archive key (or is malformed around the signature)."""

    exit_status = ExitStatus.VERIFICATION

    def __init__(self, url: str, problem: str, *, keyring: str) -> None:
        super().__init__(
            f"{url}: {problem}",
            doing="verifying the signature of the Debian archive index",
            hint=f"the mirror served an index that the trusted keys ({keyring}) do not vouch for; "
            "do not use it. "
            "If the archive rotated its keys, point [tool.slimline.debian] keyring at a current "
            "debian-archive-keyring",
        )
        self.url = url
        self.keyring = keyring


class ReleaseError(DebianError):
    """A verified Release file does not describe what was asked for (wrong suite, expired, no index)."""

    exit_status = ExitStatus.NETWORK

    def __init__(self, url: str, problem: str, *, hint: str = "") -> None:
        super().__init__(f"{url}: {problem}", doing="reading the Debian Release file", hint=hint)
        self.url = url


class IndexError_(DebianError):
    """A Packages index is malformed or names an unsafe file."""

    exit_status = ExitStatus.NETWORK

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(
            f"{what}: {problem}",
            doing="reading a Debian Packages index",
            hint="the mirror may be broken; try another mirror",
        )
        self.what = what


class ResolveError(DebianError):
    exit_status = ExitStatus.INPUT

    def __init__(self, package: str, problem: str, *, needed_by: str = "", hint: str = "") -> None:
        chain = f" (needed by {needed_by})" if needed_by else ""
        super().__init__(
            f"{package}{chain}: {problem}",
            doing="resolving the Debian packages of the base",
            hint=hint or "check the package name in [tool.slimline.debian] packages, or exclude it",
        )
        self.package = package
        self.needed_by = needed_by


class DebError(DebianError):
    """A .deb file that cannot be read (bad ar archive, missing member, unsupported compression)."""

    def __init__(self, package: str, problem: str) -> None:
        super().__init__(
            f"{package}: {problem}",
            doing=f"unpacking {package}",
            hint="the package file is damaged or not a Debian package",
        )
        self.package = package
