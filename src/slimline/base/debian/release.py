"""The signed entry point of a Debian archive: ``dists/<suite>/InRelease``.

Trust chain, step 1: the InRelease file is fetched and its OpenPGP cleartext signature is
verified against the trusted Debian archive certificates.  Only the bytes *inside* the
signature are parsed; any text before or after the signed block is refused (as apt does).
The parsed :class:`Release` lists the SHA256 of every index, which is step 2's anchor.

Signature checks use ``pysequoia`` (Python bindings of Sequoia-PGP, maintained by the Sequoia
project; the same engine as Debian's ``sqv``, which apt itself uses).  It runs in-process,
needs no ``gpg`` home directory and no external tool, and works the same on every host.
The trusted certificates are those shipped in ``slimline/debian/keys`` (see its README)
unless a keyring file or directory is configured.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pysequoia

from slimline.base.debian.errors import ReleaseError, SignatureError
from slimline.errors import redact
from slimline.http import RELEASE_CAP, Http, HttpError

__all__ = ["SHIPPED_KEYS", "IndexFile", "Keyring", "Release", "fetch", "parse"]

SHIPPED_KEYS = Path(__file__).resolve().parent / "keys"
_KEY_SUFFIXES = (".gpg", ".asc", ".pgp")
_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"
_END = b"-----END PGP SIGNATURE-----"


class Keyring:
    """A set of trusted OpenPGP certificates: one keyring file, or every key file in a directory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or SHIPPED_KEYS
        files = (
            sorted(p for p in self.path.iterdir() if p.suffix in _KEY_SUFFIXES)
            if self.path.is_dir()
            else [self.path]
        )
        certs: list[pysequoia.Cert] = []
        for f in files:
            try:
                certs += pysequoia.Cert.split_file(str(f))
            except Exception as err:  # pysequoia raises plain exceptions
                raise SignatureError(
                    str(f), f"cannot read the keyring: {_first_line(err)}", keyring=str(self.path)
                ) from err
        if not certs:
            raise SignatureError(str(self.path), "the keyring holds no certificates", keyring=str(self.path))
        self._certs = certs

    @property
    def fingerprints(self) -> list[str]:
        return sorted(c.fingerprint for c in self._certs)

    def verify_cleartext(self, data: bytes, *, url: str) -> bytes:
        """The signed text of a cleartext-signed document, if at least one signature is good.

        Raises :class:`SignatureError` for a missing, bad or untrusted signature and for any
        bytes outside the signed block.
        """
        stripped = data.strip()
        if not stripped.startswith(_BEGIN):
            raise SignatureError(
                url, "not a cleartext-signed file (or text before the signed block)", keyring=str(self.path)
            )
        if not stripped.endswith(_END):
            raise SignatureError(url, "text after the signature block", keyring=str(self.path))
        certs = self._certs
        try:
            result = pysequoia.verify(bytes=data, store=lambda _ids: certs)
        except Exception as err:
            raise SignatureError(url, f"bad signature: {_first_line(err)}", keyring=str(self.path)) from err
        body = result.bytes
        if not result.valid_sigs or body is None:
            raise SignatureError(url, "no valid signature", keyring=str(self.path))
        return body


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass(frozen=True, slots=True)
class IndexFile:
    path: str  # relative to dists/<suite>/, e.g. "main/binary-amd64/Packages.xz"
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Release:
    """The verified fields of one suite's Release file."""

    base: str  # "<mirror>/dists/<suite>" (no trailing slash)
    suite: str
    codename: str
    version: str
    date: str
    valid_until: dt.datetime | None
    acquire_by_hash: bool
    arch_all_in_arch_indexes: bool  # "No-Support-for-Architecture-all: Packages"
    architectures: tuple[str, ...]
    components: tuple[str, ...]
    files: Mapping[str, IndexFile] = field(default_factory=dict)

    def packages_index(self, component: str, arch: str) -> IndexFile:
        """The best-compressed ``Packages`` index of ``component`` for ``arch`` listed in the Release."""
        stem = f"{component}/binary-{arch}/Packages"
        for suffix in (".xz", ".gz", ""):
            hit = self.files.get(stem + suffix)
            if hit is not None:
                return hit
        raise ReleaseError(
            redact(self.base),
            f"the Release lists no {stem} index",
            hint=f"the suite has architectures {', '.join(self.architectures)} "
            f"and components {', '.join(self.components)}",
        )

    def packages_indexes(self, component: str, arch: str) -> tuple[IndexFile, ...]:
        """The indexes that together list every package for ``arch``, as apt chooses them: the
        per-arch index, plus ``binary-all`` if ``all`` is one of the Release's architectures and
        the archive does not say that the per-arch index holds the arch-all packages
        (``No-Support-for-Architecture-all: Packages``)."""
        main = self.packages_index(component, arch)
        listed = any(p.startswith(f"{component}/binary-all/Packages") for p in self.files)
        if self.arch_all_in_arch_indexes or "all" not in self.architectures or not listed:
            return (main,)
        return (main, self.packages_index(component, "all"))

    def url_of(self, index: IndexFile) -> str:
        """Where to fetch ``index``: by hash when the archive offers it (no race with an update)."""
        if self.acquire_by_hash:
            directory = index.path.rsplit("/", 1)[0]
            return f"{self.base}/{directory}/by-hash/SHA256/{index.sha256}"
        return f"{self.base}/{index.path}"


_FIELD = re.compile(r"^([A-Za-z0-9-]+):[ \t]*(.*)$")


def parse(text: str, *, base: str) -> Release:
    """Parse the (already verified) text of a Release file."""
    fields: dict[str, str] = {}
    sha256: list[str] = []
    current = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            if current == "SHA256":
                sha256.append(line.strip())
            continue
        m = _FIELD.match(line)
        if m:
            current = m.group(1)
            fields[current] = m.group(2).strip()
    files: dict[str, IndexFile] = {}
    for row in sha256:
        parts = row.split()
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or not parts[1].isdigit():
            raise ReleaseError(redact(base), f"malformed SHA256 line {row!r}")
        files[parts[2]] = IndexFile(path=parts[2], sha256=parts[0], size=int(parts[1]))
    valid_until = None
    if fields.get("Valid-Until"):
        try:
            valid_until = email.utils.parsedate_to_datetime(fields["Valid-Until"])
            if valid_until.tzinfo is None:
                valid_until = valid_until.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError) as err:
            raise ReleaseError(redact(base), f"unreadable Valid-Until {fields['Valid-Until']!r}") from err
    return Release(
        base=base,
        suite=fields.get("Suite", ""),
        codename=fields.get("Codename", ""),
        version=fields.get("Version", ""),
        date=fields.get("Date", ""),
        valid_until=valid_until,
        acquire_by_hash=fields.get("Acquire-By-Hash", "").lower() == "yes",
        arch_all_in_arch_indexes=fields.get("No-Support-for-Architecture-all", "") == "Packages",
        architectures=tuple(fields.get("Architectures", "").split()),
        components=tuple(fields.get("Components", "").split()),
        files=files,
    )


def fetch(
    http: Http,
    mirror: str,
    suite: str,
    *,
    keyring: Keyring,
    check_valid_until: bool = True,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> tuple[Release, bytes]:
    """Fetch (at most :data:`slimline.http.RELEASE_CAP`), verify and parse
    ``<mirror>/dists/<suite>/InRelease``.

    Returns the Release and the verified signed text (whose hash identifies the archive state).
    Refuses a Release for another suite (a replayed or misplaced file) and an expired one.
    """
    base = f"{mirror}/dists/{suite}"
    url = f"{base}/InRelease"
    try:
        data = http.get_bytes(url, cap=RELEASE_CAP, doing=f"fetching the signed index of Debian {suite}")
    except HttpError as err:
        if err.status != 404:
            raise
        raise ReleaseError(
            redact(url),
            f"the mirror has no suite {suite!r} (HTTP 404)",
            hint="check the suite name (e.g. bookworm, trixie) and the mirror URL; releases that left "
            "the main archive live on archive mirrors, set one with [tool.slimline.debian] mirror",
        ) from err
    body = keyring.verify_cleartext(data, url=redact(url))
    release = parse(body.decode("utf-8", errors="replace"), base=base)
    if suite not in (release.suite, release.codename):
        raise ReleaseError(
            redact(url),
            f"signed for suite {release.suite!r} / codename {release.codename!r}, not {suite!r}",
            hint="the mirror serves the wrong file for this suite; check the mirror URL",
        )
    if check_valid_until and release.valid_until is not None and release.valid_until < now():
        raise ReleaseError(
            redact(url),
            f"expired: Valid-Until {release.valid_until.isoformat()} has passed",
            hint="the mirror is stale (or replays an old index); use an up-to-date mirror. For a "
            "snapshot mirror set [tool.slimline.debian] check-valid-until = false",
        )
    return release, body
