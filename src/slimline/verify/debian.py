"""The base's files checked against the Debian packages they came from.

Contract: a slimline Debian base records, per package, ``var/lib/dpkg/status.d/<pkg>.sha256sums``
(see :mod:`slimline.base.debian.assemble`).  :func:`records` reads them all; :func:`check_file`
accounts for a file whose sha256 one of its owning packages records, and reports one that
differs naming the package; :func:`check_missing` reports recorded files the image lacks.
:func:`check_generated` accounts for what slimline's assembly writes itself (users, os-release,
nsswitch, the CA bundle, the dpkg records), comparing bytes it can make again with the ones in
the image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from slimline.base.debian import assemble
from slimline.layers.filetree import Kind
from slimline.verify.findings import Findings
from slimline.verify.scan import CERTS, STATUS_DIR, Scan

__all__ = ["GENERATED", "check_file", "check_generated", "check_missing", "records"]


def records(s: Scan) -> dict[str, list[tuple[str, str]]]:
    """Image path -> [(package, sha256 hex)] from every ``<pkg>.sha256sums`` of the image."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(s.files):
        if not (path.startswith(STATUS_DIR) and path.endswith(assemble.SHA256SUMS)):
            continue
        package = path[len(STATUS_DIR) : -len(assemble.SHA256SUMS)]
        for line in (s.data(path) or b"").decode("utf-8", errors="replace").splitlines():
            digest, sep, name = line.partition("  ")
            if sep:
                out.setdefault(name.strip().lstrip("/"), []).append((package, digest.strip()))
    return out


def check_file(s: Scan, path: str, owners: list[tuple[str, str]], found: Findings) -> None:
    digest = s.digest(path)
    packages = ", ".join(sorted({p for p, _ in owners}))
    if digest is None:
        found.problem(path, "recorded by its package as a regular file, but it is not one", packages)
    elif any(want == digest.sha256 for _, want in owners):
        found.account(path, "files matching their Debian package")
    else:
        found.problem(
            path, f"differs from its package (expected sha256 {owners[0][1]}, got {digest.sha256})", packages
        )


def check_missing(s: Scan, recorded: Mapping[str, list[tuple[str, str]]], found: Findings) -> None:
    for path, owners in recorded.items():
        entry = s.files.get(path)
        if entry is None or entry.kind not in (Kind.FILE, Kind.HARDLINK):
            found.problem(path, "recorded by its package but missing from the image", owners[0][0])


def _os_release(s: Scan) -> bytes | None:
    version = (s.data("etc/debian_version") or b"").decode("utf-8", errors="replace").strip()
    codename = s.image.config.labels.get("dev.slimline.debian.suite", "")
    if not codename:
        return None
    version = "" if version.endswith("/sid") else version
    return assemble.os_release(version=version, codename=codename).encode()


def _ca_bundle(s: Scan) -> bytes | None:
    """The bundle ``update-ca-certificates`` makes of the image's certificates (see assemble)."""
    parts: list[bytes] = []
    for path in sorted((p for p in s.files if p.startswith(CERTS) and p.endswith(".crt")), key=str.encode):
        pem = s.data(path)
        if pem is None or b"-----BEGIN CERTIFICATE-----" not in pem:
            continue
        parts.append(pem if pem.endswith(b"\n") else pem + b"\n")
    return b"".join(parts)


# path -> the bytes slimline writes there (from the image's other files), or None: by name only
GENERATED: dict[str, Callable[[Scan], bytes | None]] = {
    "etc/passwd": lambda s: assemble.PASSWD.encode(),
    "etc/group": lambda s: assemble.GROUP.encode(),
    "etc/nsswitch.conf": lambda s: assemble.NSSWITCH.encode(),
    "etc/timezone": lambda s: b"Etc/UTC\n",
    "etc/resolv.conf": lambda s: b"",
    "etc/os-release": _os_release,
    "etc/debian_version": lambda s: None,
    assemble.CA_BUNDLE: _ca_bundle,
}


def check_generated(s: Scan, path: str, found: Findings) -> bool:
    """Account for a file slimline's Debian assembly writes (False: ``path`` is not one)."""
    if path.startswith(STATUS_DIR):
        package = path[len(STATUS_DIR) :]
        for suffix in (".md5sums", assemble.SHA256SUMS):
            package = package.removesuffix(suffix)
        if f"{STATUS_DIR}{package}" in s.files:
            found.account(path, "dpkg records")
            return True
        return False
    make = GENERATED.get(path)
    if make is None:
        return False
    want = make(s)
    if want is None:
        found.account(path, "files slimline generates")
    elif s.data(path) != want:
        found.problem(path, "differs from what slimline writes there")
    else:
        found.account(path, "files slimline generates")
    return True
