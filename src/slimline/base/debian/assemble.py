"""What the maintainer scripts would have done, done by hand (none is ever run).

* ``/etc/passwd``, ``/etc/group``: ``root`` (0), ``nobody`` (65534) and ``nonroot`` (65532,
  the image's default user), all with ``/sbin/nologin``; homes ``/root`` and ``/home/nonroot`` (0700).
* ``/tmp`` with mode 1777; ``/etc/nsswitch.conf`` (files, then dns for hosts);
  ``/etc/os-release`` and ``/etc/debian_version`` from the signed Release (scanners read them);
  ``/etc/localtime`` -> UTC (tzdata's postinst).
* The CA bundle ``/etc/ssl/certs/ca-certificates.crt``: every certificate shipped by
  ``ca-certificates`` (the Mozilla roots), in path order, each ending in a newline (what
  ``update-ca-certificates`` writes with the default configuration); OpenSSL's default
  locations ``/usr/lib/ssl/cert.pem`` and ``/usr/lib/ssl/certs`` point at it.
* ``/usr/bin/python3`` and ``/usr/bin/python`` -> ``python3.X`` (python3-minimal's symlinks).
* The links ``update-alternatives --install`` calls in the packages' ``postinst`` make
  (:mod:`.alternatives`: ``libblas.so.3`` -> ``blas/libblas.so.3``), direct and relative.
* ``/var/lib/dpkg/status.d/<pkg>`` (the package's control file) and ``<pkg>.md5sums`` (its
  md5sums, limited to the files installed), as distroless does, for vulnerability scanners;
  and ``<pkg>.sha256sums``: ``<sha256 hex>  <path>`` for every regular file the package
  installed, as laid into the image (paths after the merged-/usr rewrite, sorted by bytes),
  hashed from the bytes of the signed ``.deb``: what ``slimline verify`` checks the image's
  files against (:data:`SHA256SUMS`).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Iterable

from slimline.base.debian import alternatives
from slimline.base.debian.deb import Control
from slimline.base.debian.policy import usrmerge
from slimline.layers.filetree import Bytes, Entry, Kind, TreeBuilder

__all__ = [
    "CA_BUNDLE",
    "NONROOT",
    "SHA256SUMS",
    "ca_bundle",
    "os_release",
    "python_links",
    "sha256sums",
    "static_files",
    "status_entry",
]

NONROOT = 65532
STATUS_DIR = "var/lib/dpkg/status.d"
SHA256SUMS = ".sha256sums"  # the suffix of a package's file hashes in STATUS_DIR
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
_CA_DIR = "usr/share/ca-certificates/"

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnobody:x:65534:\nnonroot:x:{NONROOT}:\n"
NSSWITCH = (
    "passwd:         files\n"
    "group:          files\n"
    "shadow:         files\n"
    "hosts:          files dns\n"
    "networks:       files\n"
    "protocols:      files\n"
    "services:       files\n"
    "ethers:         files\n"
    "rpc:            files\n"
)


def os_release(*, version: str, codename: str) -> str:
    """``/etc/os-release`` for a Debian release ``version`` ("12.15"; "" for testing/unstable)."""
    major = version.split(".")[0] if version else ""
    name = f"Debian GNU/Linux {major} ({codename})" if major else f"Debian GNU/Linux {codename}"
    lines = [
        f'PRETTY_NAME="{name}"',
        'NAME="Debian GNU/Linux"',
        *([f'VERSION_ID="{major}"', f'VERSION="{major} ({codename})"'] if major else []),
        f"VERSION_CODENAME={codename}",
        "ID=debian",
    ]
    return "\n".join(lines) + "\n"


def static_files(builder: TreeBuilder, *, version: str, codename: str, merged: Iterable[str]) -> None:
    """Users, /tmp, homes, nsswitch, os-release, the merged-/usr symlinks ``merged``."""
    for top in merged:
        builder.symlink(top, f"usr/{top}")
        builder.dir(f"usr/{top}")
    builder.data("etc/passwd", PASSWD.encode())
    builder.data("etc/group", GROUP.encode())
    builder.data("etc/nsswitch.conf", NSSWITCH.encode())
    builder.data("etc/os-release", os_release(version=version, codename=codename).encode())
    builder.data("etc/debian_version", f"{version or codename + '/sid'}\n".encode())
    builder.symlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
    builder.data("etc/timezone", b"Etc/UTC\n")
    builder.dir("tmp", mode=0o1777)
    builder.dir("root", mode=0o700)
    builder.dir("home")
    builder.add(Entry("home/nonroot", Kind.DIR, 0o700, NONROOT, NONROOT))
    builder.dir("var/lib/dpkg/status.d")


BUILD_MOUNTS = ("src", "out", "reqs", "hooks", "control")  # see slimline.artifacts.targetbuild


def builder_files(builder: TreeBuilder) -> None:
    """What a builder's maintainer scripts would have made, and mount points for its sandbox
    (``dev``, ``proc``, ``sys``, ``etc/resolv.conf``, ``build/*``): ``/bin/sh`` (dash's, made by its
    postinst) and the ``cc`` and ``c++`` alternatives (made by update-alternatives)."""
    for mount in ("dev", "proc", "sys", *(f"build/{d}" for d in BUILD_MOUNTS)):
        builder.dir(mount)
    builder.data("etc/resolv.conf", b"")  # the host's is mounted over it when builds may use the network
    for link, target in (("sh", "dash"), ("cc", "gcc"), ("c++", "g++")):
        builder.symlink(f"usr/bin/{link}", target)


def alternative_links(
    builder: TreeBuilder, found: Iterable[alternatives.Alternative], *, rewrite: Callable[[str], str | None]
) -> list[str]:
    """The links of :func:`.alternatives.choose` made in ``builder`` (relative, paths placed by
    ``rewrite`` as the packages' files were); returns the links made."""

    def holds(path: str) -> bool:
        where = rewrite(path)
        return where is not None and builder.get(where) is not None

    made: list[str] = []
    for link, path in alternatives.choose(found, holds=holds).items():
        at, to = rewrite(link), rewrite(path)
        if at is None or to is None or at == to:
            continue
        builder.symlink(at, posixpath.relpath("/" + to, "/" + posixpath.dirname(at)))
        made.append(at)
    return made


def ca_bundle(builder: TreeBuilder) -> int:
    """Write the CA bundle from the certificates under usr/share/ca-certificates; return how many."""
    certs = sorted(
        (p for p in builder.freeze().paths() if p.startswith(_CA_DIR) and p.endswith(".crt")),
        key=lambda p: p.encode(),
    )
    parts: list[bytes] = []
    for path in certs:
        entry = builder.get(path)
        if entry is None or entry.kind is not Kind.FILE or entry.source is None:
            continue
        with entry.source.open() as f:
            pem = f.read()
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            continue
        parts.append(pem if pem.endswith(b"\n") else pem + b"\n")
    builder.data(CA_BUNDLE, b"".join(parts))
    builder.symlink("usr/lib/ssl/cert.pem", "/" + CA_BUNDLE)
    builder.symlink("usr/lib/ssl/certs", "/etc/ssl/certs")
    return len(parts)


def python_links(builder: TreeBuilder, python_xy: str) -> None:
    builder.symlink("usr/bin/python3", f"python{python_xy}")
    builder.symlink("usr/bin/python", f"python{python_xy}")


def status_entry(
    builder: TreeBuilder, name: str, control: Control, installed: frozenset[str], *, hashes: bool = True
) -> None:
    """Record package ``name`` the distroless way; md5sums lines only for installed files; and,
    with ``hashes`` (an image's files: what ``verify`` reads), the sha256 of each."""
    text = control.control if control.control.endswith(b"\n") else control.control + b"\n"
    builder.file(f"var/lib/dpkg/status.d/{name}", Bytes(text), len(text))
    kept: list[bytes] = []
    for line in control.md5sums.splitlines():
        _, _, path = line.decode("utf-8", errors="replace").partition("  ")
        where = usrmerge(path.strip().removeprefix("./"))
        if where is not None and where in installed:
            kept.append(line + b"\n")
    if kept:
        data = b"".join(kept)
        builder.file(f"var/lib/dpkg/status.d/{name}.md5sums", Bytes(data), len(data))
    sums = sha256sums(builder, installed) if hashes else b""
    if sums:
        builder.file(f"{STATUS_DIR}/{name}{SHA256SUMS}", Bytes(sums), len(sums))


def sha256sums(builder: TreeBuilder, installed: frozenset[str]) -> bytes:
    """``<hex>  <path>`` lines for the regular files among ``installed``, sorted by path bytes."""
    lines: list[bytes] = []
    for path in sorted(installed, key=lambda p: p.encode()):
        entry = builder.get(path)
        if entry is None or entry.kind is not Kind.FILE or entry.source is None:
            continue
        h = hashlib.sha256()
        with entry.source.open() as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {path}\n".encode())
    return b"".join(lines)
