"""The Debian base built from the real Debian archive, run with real podman; tampering refused.

The mirror is found the way slimline finds it (host apt sources, or SLIMLINE_DEBIAN_MIRROR).
Downloads go to the suite's shared cache (SLIMLINE_CACHE_DIR, else /tmp/slimline-test-cache);
tampering tests use a fresh cache seeded with already verified blobs, and a proxy on
127.0.0.1 that changes one file of the real mirror on its way through.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from slimline import layers
from slimline.base import dpkg, native, rootfs
from slimline.base.debian import mirror
from slimline.base.debian.base import BaseSettings, DebianRef, build, resolve
from slimline.base.debian.errors import ReleaseError, SignatureError
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import HashMismatch
from slimline.http import RELEASE_CAP, Http
from slimline.oci.image import Image, Layer, Platform
from slimline.target import Target
from tests.base.debian.helpers import flip_last_byte, mirror_proxy, write_layout
from tests.support import Lines, cache_dir, podman, podman_run

pytestmark = pytest.mark.network

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")

CHECK = r"""
import ssl, sqlite3, ctypes, decimal, zoneinfo, json, os, stat, sys, locale, datetime
out = {
    "uid": os.getuid(), "gid": os.getgid(), "version": sys.version.split()[0],
    "certs": ssl.create_default_context().cert_store_stats(),
    "tmp": oct(stat.S_IMODE(os.stat("/tmp").st_mode)),
    "sqlite": sqlite3.sqlite_version, "decimal": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")),
    "paris": datetime.datetime(2024, 7, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).utcoffset().seconds,
    "libc": ctypes.CDLL("libc.so.6").strlen(b"four"),
    "encoding": locale.getpreferredencoding(),
    "os_release": open("/etc/os-release").read(),
    "status": sorted(os.listdir("/var/lib/dpkg/status.d")),
    "libc6": open("/var/lib/dpkg/status.d/libc6").read(),
    "shell": os.path.exists("/bin/sh") or os.path.exists("/usr/bin/bash"),
    "python3": os.readlink("/usr/bin/python3"),
    "copyright": os.path.exists("/usr/share/doc/libc6/copyright"),
    "docs": os.path.exists("/usr/share/doc/libc6/changelog.Debian.gz") or os.path.exists("/usr/share/man"),
    "ensurepip": os.path.exists(f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}/ensurepip"),
    "home": os.path.expanduser("~"),
}
print(json.dumps(out))
"""


@dataclass
class Built:
    image: Image
    target: Target
    reports: list[str]
    cache: Cache


def _build(
    ref: str, platform: Platform, settings: BaseSettings | None = None, cache: Cache | None = None
) -> Built:
    reports = Lines()
    cache = cache or Cache(cache_dir())
    image, target, _ = build(
        DebianRef.parse(ref),
        platform=platform,
        settings=settings or BaseSettings(),
        ctx=Context(cache, reports),
    )
    return Built(image, target, reports.lines, cache)


@pytest.fixture(scope="module")
def bookworm() -> Built:
    return _build("debian:bookworm", AMD64)


@pytest.fixture(scope="module")
def upstream() -> str:
    return mirror.find(mirror=None, security_mirror=None).archive


def run_check(image: Image, tmp_path: Path, *, platform: Platform = AMD64) -> dict[str, object]:
    ref = write_layout(image, tmp_path / "layout")
    try:
        proc = podman_run(ref, "-c", CHECK, flags=["--platform", str(platform)])
    finally:
        podman("rmi", "-f", image.config_descriptor.digest.split(":")[1], check=False)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def layer_files(image: Image) -> dict[str, bytes | None]:
    """Every path in the image's layers (later layers win); file contents only for small files."""
    out: dict[str, bytes | None] = {}
    for layer in image.layers:
        with layers.members(layer) as tar:
            for info in tar:
                f = tar.extractfile(info) if info.isfile() and info.size < 1_000_000 else None
                out[info.name] = f.read() if f else None
    return out


@pytest.mark.container
def test_bookworm_base_runs_in_podman(bookworm: Built, tmp_path: Path) -> None:
    target, config = bookworm.target, bookworm.image.config
    assert target.python_version[:2] == (3, 11) and target.libc_version == (2, 36)
    assert target.interpreter == "/usr/bin/python3.11"
    assert (
        config.user == "65532" and config.entrypoint == ("/usr/bin/python3.11",) and config.working_dir == "/"
    )
    assert config.env_map()["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert config.env_map()["LANG"] == "C.UTF-8"
    assert config.labels["dev.slimline.python.version"] == ".".join(map(str, target.python_version))
    assert len(bookworm.image.layers) == len(bookworm.image.history) == 3

    out = run_check(bookworm.image, tmp_path)
    assert (out["uid"], out["gid"], out["home"]) == (65532, 65532, "/home/nonroot")
    assert out["version"] == ".".join(map(str, target.python_version))
    certs = out["certs"]
    assert isinstance(certs, dict) and certs["x509_ca"] >= 100  # the Mozilla roots
    assert out["tmp"] == "0o1777"
    assert out["decimal"] == "0.3" and out["paris"] == 7200 and out["libc"] == 4
    assert out["encoding"] == "utf-8"
    assert "ID=debian" in str(out["os_release"]) and 'VERSION_ID="12"' in str(out["os_release"])
    status = out["status"]
    assert isinstance(status, list)
    for pkg in (
        "libc6",
        "libc6.md5sums",
        "libpython3.11-stdlib",
        "python3.11-minimal",
        "ca-certificates",
        "tzdata",
    ):
        assert pkg in status
    assert "dpkg" not in status and "debconf" not in status and "perl-base" not in status
    assert "Package: libc6\n" in str(out["libc6"]) and "\nVersion: 2.36-" in str(out["libc6"])
    assert out["shell"] is False and out["python3"] == "python3.11"
    assert out["copyright"] is True and out["docs"] is False and out["ensurepip"] is False


def test_left_out_packages_are_reported(bookworm: Built) -> None:
    left = [r for r in bookworm.reports if r.startswith("left out ")]
    names = {r.split()[2] for r in left}
    assert {"debconf", "dpkg", "openssl"} <= names, bookworm.reports
    assert any("needed by ca-certificates" in r or "ca-certificates," in r for r in left)


def test_same_archive_state_gives_the_same_digest_and_what_it_holds_is_noted(
    bookworm: Built, tmp_path: Path
) -> None:
    warm = _build("debian:bookworm", AMD64)
    assert warm.image.digest == bookworm.image.digest
    # Cold assembly in a fresh cache that holds only the verified downloads (no layers, no resolution).
    fresh = Cache(tmp_path / "cache")
    base = resolve(
        DebianRef("bookworm"), platform=AMD64, settings=BaseSettings(), ctx=Context(bookworm.cache)
    )
    shas = [p.sha256 for p in base.resolution.packages] + [
        i.sha256 for s in base.archive.suites for i in s.indexes
    ]
    for sha in shas:
        src = bookworm.cache.blob_path(sha)
        assert src.is_file(), sha
        fresh.blob_path(sha).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, fresh.blob_path(sha))
    cold = _build("debian:bookworm", AMD64, cache=fresh)
    assert [lay.digest for lay in cold.image.layers] == [lay.digest for lay in bookworm.image.layers]
    assert cold.image.digest == bookworm.image.digest
    assert any(r.startswith("assembling layer") for r in cold.reports)
    # what the assembly noted of its libraries and packages is what reading its layers back gives
    for kind in (keys.BASE_SONAMES, keys.DPKG_INSTALLED):
        assert len(list((fresh.root / kind).iterdir())) == 1, kind
    read = Cache(tmp_path / "read")
    sonames = native.sonames(cold.image, cache=read)
    assert {"libc.so.6", "libz.so.1", "libssl.so.3"} <= sonames
    assert native.sonames(cold.image, cache=fresh) == sonames
    installed = dpkg.installed(cold.image, cache=read)
    assert {"libc6", "python3.11-minimal", "ca-certificates"} <= installed
    assert dpkg.installed(cold.image, cache=fresh) == installed
    # and its file system, written from its trees, is what unpacking its layers writes
    written = list((fresh.root / keys.ROOTFS).iterdir())
    assert len(written) == 1 and rootfs.cached(cold.image, cache=fresh) == written[0]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    rootfs.unpack(cold.image, unpacked)
    assert _files(written[0]) == _files(unpacked)


def _files(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path below ``root``: its kind, permission bits and contents (a link's target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            out[str(path.relative_to(root))] = ("link", 0, os.readlink(path))
        elif path.is_dir():
            out[str(path.relative_to(root))] = ("dir", st.st_mode & 0o7777, "")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = ("file", st.st_mode & 0o7777, digest)
    return out


def test_layers_hold_what_the_policy_promises(bookworm: Built) -> None:
    files = layer_files(bookworm.image)
    assert (
        "usr/lib/x86_64-linux-gnu/libc.so.6" in files
        and "lib" in files
        and "lib/x86_64-linux-gnu" not in files
    )
    assert "usr/lib64/ld-linux-x86-64.so.2" in files
    assert not [
        p for p in files if p.startswith(("usr/share/man/", "usr/share/locale/", "usr/share/lintian/"))
    ]
    assert not [p for p in files if "/gconv/" in p]
    passwd = files["etc/passwd"]
    assert passwd is not None and b"nonroot:x:65532:65532:" in passwd and passwd.startswith(b"root:x:0:0:")
    bundle = files["etc/ssl/certs/ca-certificates.crt"]
    assert bundle is not None and bundle.count(b"-----BEGIN CERTIFICATE-----") >= 100
    # the parts of CPython 3.11's standard library that Debian ships apart: in the interpreter's layer
    python = next(names for names in map(_names, bookworm.image.layers) if "usr/bin/python3.11" in names)
    assert {"usr/lib/python3.11/distutils/util.py", "usr/lib/python3.11/lib2to3/pytree.py"} <= python
    assert "var/lib/dpkg/status.d/python3-lib2to3" in python


def _names(layer: Layer) -> set[str]:
    with layers.members(layer) as tar:
        return {info.name for info in tar}


def seeded_cache(source: Cache, dest: Path, *, skip: set[str]) -> Cache:
    """A fresh cache holding the verified downloads and resolution of ``source`` (minus ``skip``)."""
    base = resolve(
        DebianRef("bookworm"),
        platform=AMD64,
        settings=BaseSettings(security_mirror=""),
        ctx=Context(source, given_http=Http()),
    )
    fresh = Cache(dest)
    shas = [p.sha256 for p in base.resolution.packages if p.name not in skip]
    shas += [i.sha256 for s in base.archive.suites for i in s.indexes]
    for sha in shas:
        if source.blob_path(sha).is_file():
            fresh.blob_path(sha).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.blob_path(sha), fresh.blob_path(sha))
    shutil.copytree(source.root / "debian-resolve", dest / "debian-resolve")
    return fresh


def no_partial_files(cache: Cache) -> bool:
    return not list(cache.root.rglob("*.part"))


def test_tampered_packages_index_is_refused(upstream: str, tmp_path: Path) -> None:
    def rewrite(path: str, body: bytes) -> bytes:
        return flip_last_byte(body) if "/main/binary-amd64/" in path and "/bookworm/" in path else body

    cache = Cache(tmp_path / "cache")
    with mirror_proxy(upstream, rewrite) as proxy, pytest.raises(HashMismatch) as info:
        build(
            DebianRef("bookworm"),
            platform=AMD64,
            settings=BaseSettings(mirror=proxy.url, security_mirror=""),
            ctx=Context(cache, given_http=Http()),
        )
    assert "bookworm/main/binary-amd64/Packages" in str(info.value)
    assert info.value.expected != info.value.actual
    assert not cache.has_blob(info.value.actual.removeprefix("sha256:"))
    assert not cache.has_blob(info.value.expected.removeprefix("sha256:"))
    assert no_partial_files(cache)
    assert not (cache.root / "debian-resolve").exists() and not (cache.root / "layers").exists()


def test_tampered_deb_is_refused(upstream: str, bookworm: Built, tmp_path: Path) -> None:
    def rewrite(path: str, body: bytes) -> bytes:
        return flip_last_byte(body) if path.rsplit("/", 1)[-1].startswith("netbase_") else body

    cache = seeded_cache(bookworm.cache, tmp_path / "cache", skip={"netbase"})
    with mirror_proxy(upstream, rewrite) as proxy, pytest.raises(HashMismatch) as info:
        build(
            DebianRef("bookworm"),
            platform=AMD64,
            settings=BaseSettings(mirror=proxy.url, security_mirror=""),
            ctx=Context(cache, given_http=Http()),
        )
    assert info.value.package == "netbase" and "netbase_" in str(info.value)
    assert any(p.endswith(".deb") and "netbase_" in p for p in proxy.requests)
    netbase = resolve(
        DebianRef("bookworm"),
        platform=AMD64,
        settings=BaseSettings(security_mirror=""),
        ctx=Context(cache, given_http=Http()),
    ).package("netbase")
    assert not cache.has_blob(netbase.sha256) and no_partial_files(cache)
    assert not cache.has_blob(info.value.actual.removeprefix("sha256:"))


def test_tampered_or_replayed_inrelease_is_refused(upstream: str, tmp_path: Path) -> None:
    http = Http()
    trixie = http.get_bytes(f"{upstream}/dists/trixie/InRelease", cap=RELEASE_CAP)

    def tamper(path: str, body: bytes) -> bytes:
        return body.replace(b"Origin: Debian", b"Origin: Debiam", 1) if path.endswith("/InRelease") else body

    def replay(path: str, body: bytes) -> bytes:
        return trixie if path.endswith("/bookworm/InRelease") else body

    with mirror_proxy(upstream, tamper) as proxy, pytest.raises(SignatureError) as sig:
        build(
            DebianRef("bookworm"),
            platform=AMD64,
            settings=BaseSettings(mirror=proxy.url, security_mirror=""),
            ctx=Context(Cache(tmp_path / "a"), given_http=http),
        )
    assert "bad signature" in str(sig.value) and "InRelease" in str(sig.value)
    with mirror_proxy(upstream, replay) as proxy, pytest.raises(ReleaseError) as rel:
        build(
            DebianRef("bookworm"),
            platform=AMD64,
            settings=BaseSettings(mirror=proxy.url, security_mirror=""),
            ctx=Context(Cache(tmp_path / "b"), given_http=http),
        )
    assert "not 'bookworm'" in str(rel.value)


@pytest.mark.container
def test_trixie_base_with_merged_usr_runs(tmp_path: Path) -> None:
    trixie = _build("debian:trixie/python3.13", AMD64)
    assert trixie.target.python_version[:2] == (3, 13) and trixie.target.libc_version[0] == 2
    out = run_check(trixie.image, tmp_path)
    assert out["uid"] == 65532 and out["python3"] == "python3.13"
    certs = out["certs"]
    assert isinstance(certs, dict) and certs["x509_ca"] >= 100
    assert 'VERSION_ID="13"' in str(out["os_release"]) and "libssl3t64" in str(out["status"])


@pytest.mark.container
def test_extra_packages_get_their_own_layer(bookworm: Built, tmp_path: Path) -> None:
    """libblas3's library is found only through the link its postinst makes with
    update-alternatives: the base makes it, so the loader finds libblas.so.3."""
    extra = _build("debian:bookworm", AMD64, BaseSettings(packages=("libpq5", "libblas3")))
    assert [lay.digest for lay in extra.image.layers[:3]] == [lay.digest for lay in bookworm.image.layers]
    assert len(extra.image.layers) == 4 and "extras" in extra.image.history[3].created_by
    ref = write_layout(extra.image, tmp_path / "layout")
    code = "import ctypes; ctypes.CDLL('libpq.so.5'); ctypes.CDLL('libblas.so.3'); print('pq blas ok')"
    try:
        proc = podman_run(ref, "-c", code)
    finally:
        podman("rmi", "-f", extra.image.config_descriptor.digest.split(":")[1], check=False)
    assert "pq blas ok" in proc.stdout


@pytest.fixture(scope="module")
def arm64() -> Built:
    return _build("debian:bookworm", ARM64)


def test_arm64_base_has_aarch64_binaries(arm64: Built) -> None:
    assert arm64.image.platform == ARM64 and arm64.target.machine == "aarch64"
    files: dict[str, bytes | None] = {}
    for layer in arm64.image.layers:
        with layers.members(layer) as tar:
            for info in tar:
                if info.name == "usr/bin/python3.11":
                    f = tar.extractfile(info)
                    files[info.name] = f.read(64) if f else None
                else:
                    files[info.name] = None
    head = files["usr/bin/python3.11"]
    assert (
        head is not None and head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183
    )  # EM_AARCH64
    assert "usr/lib/ld-linux-aarch64.so.1" in files and "lib64" not in files


def _qemu_aarch64() -> bool:
    return Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").is_file()


@pytest.mark.container
def test_arm64_base_runs_under_qemu(arm64: Built, tmp_path: Path) -> None:
    if not _qemu_aarch64():
        pytest.skip("binfmt_misc has no qemu-aarch64 handler (see TESTING.md, 'Other architectures')")
    out = run_check(arm64.image, tmp_path, platform=ARM64)
    assert out["uid"] == 65532 and out["version"] == ".".join(map(str, arm64.target.python_version))
