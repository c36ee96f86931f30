"""Where the Debian archive and its security archive are: settings, environment, host apt sources.

Order (first hit wins), separately for the archive and the security archive:

1. the setting (``[tool.slimline.debian] mirror`` / ``security-mirror``, passed in by the caller);
2. the environment (``SLIMLINE_DEBIAN_MIRROR`` / ``SLIMLINE_DEBIAN_SECURITY_MIRROR``);
3. the host's apt sources: ``/etc/apt/sources.list`` then ``/etc/apt/sources.list.d/*.list`` and
   ``*.sources`` in name order (as apt reads them); the first enabled ``deb`` entry with an
   http(s) URI whose suites name a Debian suite is the archive, the first whose suites end in
   ``-security`` (or the old ``/updates``) is the security archive.

No archive found is an error naming the setting; no security archive found is reported by
the caller and the base is built without security updates.  A security mirror set to ``""``
means "do not use one".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from slimline.base.debian.errors import MirrorNotFound

__all__ = ["ENV_MIRROR", "ENV_SECURITY_MIRROR", "AptSource", "Mirrors", "apt_sources", "find"]

ENV_MIRROR = "SLIMLINE_DEBIAN_MIRROR"
ENV_SECURITY_MIRROR = "SLIMLINE_DEBIAN_SECURITY_MIRROR"

# Names that only a Debian archive uses as suites (code names and aliases); suffixes such as
# "-updates" or "-backports" are stripped before the lookup.
DEBIAN_SUITES = frozenset(
    {
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "oldoldstable",
        "oldstable",
        "stable",
        "testing",
        "unstable",
        "experimental",
    }
)


@dataclass(frozen=True, slots=True)
class AptSource:
    """One enabled ``deb`` entry: a URI and the suites it offers."""

    uri: str
    suites: tuple[str, ...]
    origin: str  # "file:line" or "file" for messages


@dataclass(frozen=True, slots=True)
class Mirrors:
    archive: str  # base URL, no trailing slash ("<scheme>://<host>/debian")
    security: str | None  # None: no security archive is used
    archive_from: str  # where it came from (for reports): "setting", "env", or an apt file
    security_from: str


def _base_suite(suite: str) -> str:
    return suite.split("/")[0].split("-")[0]


def is_security(suite: str) -> bool:
    return suite.endswith("-security") or suite.endswith("/updates")


def _parse_one_line(path: Path, text: str) -> list[AptSource]:
    out: list[AptSource] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] != "deb":
            continue
        rest = words[1:]
        if rest and rest[0].startswith("["):  # options: "[ arch=amd64 signed-by=... ]"
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) < 2:
            continue
        out.append(AptSource(uri=rest[0], suites=(rest[1],), origin=f"{path}:{n}"))
    return out


def _parse_deb822(path: Path, text: str) -> list[AptSource]:
    out: list[AptSource] = []
    stanzas: list[dict[str, str]] = [{}]
    key = ""
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanzas[-1]:
                stanzas.append({})
            continue
        if raw[0] in " \t":
            if key:
                stanzas[-1][key] += "\n" + raw.strip()
            continue
        key, _, value = raw.partition(":")
        key = key.strip().lower()
        stanzas[-1][key] = value.strip()
    for st in stanzas:
        if not st or st.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in st.get("types", "").split():
            continue
        suites = tuple(st.get("suites", "").split())
        out.extend(AptSource(uri=uri, suites=suites, origin=str(path)) for uri in st.get("uris", "").split())
    return out


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> tuple[list[AptSource], list[str]]:
    """Enabled ``deb`` entries of the host's apt configuration, in apt's reading order,
    and the files looked at."""
    files: list[Path] = [etc_apt / "sources.list"]
    d = etc_apt / "sources.list.d"
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    out: list[AptSource] = []
    looked: list[str] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        looked.append(str(f))
        out += _parse_deb822(f, text) if f.suffix == ".sources" else _parse_one_line(f, text)
    return out, looked


def _from_apt(sources: list[AptSource], *, security: bool) -> AptSource | None:
    for src in sources:
        if not src.uri.startswith(("http://", "https://")):
            continue
        for suite in src.suites:
            if _base_suite(suite) in DEBIAN_SUITES and is_security(suite) == security:
                return src
    return None


def find(*, mirror: str | None, security_mirror: str | None, etc_apt: Path = Path("/etc/apt")) -> Mirrors:
    """The archive and security mirrors to use (see the module contract for the order)."""
    sources: list[AptSource] | None = None
    looked: list[str] = []

    def apt() -> list[AptSource]:
        nonlocal sources, looked
        if sources is None:
            sources, looked = apt_sources(etc_apt)
        return sources

    archive, archive_from = mirror, "setting"
    if not archive and os.environ.get(ENV_MIRROR):
        archive, archive_from = os.environ[ENV_MIRROR], f"env {ENV_MIRROR}"
    if not archive:
        hit = _from_apt(apt(), security=False)
        if hit is None:
            raise MirrorNotFound(looked)
        archive, archive_from = hit.uri, hit.origin

    security: str | None = security_mirror
    security_from = "setting"
    if security is None and ENV_SECURITY_MIRROR in os.environ:
        security, security_from = os.environ[ENV_SECURITY_MIRROR], f"env {ENV_SECURITY_MIRROR}"
    if security is None:
        hit = _from_apt(apt(), security=True)
        security, security_from = (hit.uri, hit.origin) if hit else (None, "not found")
    return Mirrors(
        archive=archive.rstrip("/"),
        security=security.rstrip("/") if security else None,
        archive_from=archive_from,
        security_from=security_from,
    )
