"""detect: the target of a base image from its own files (layers, whiteouts, databases), offline.

The image layouts imitate Debian, distroless, the official python images and Alpine; the
glibc and dpkg data are this machine's real files (a Debian system), used as fixture material.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slimline import layers
from slimline.base import detect
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci.image import Config, Image, Layer, Platform
from slimline.target import Target

HOST_LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
DPKG_STATUS = Path("/var/lib/dpkg/status")


def stanza(package: str) -> str:
    """The host's dpkg stanza of ``package`` (real data)."""
    blocks = DPKG_STATUS.read_text().split("\n\n")
    return next(b for b in blocks if b.startswith(f"Package: {package}\n")) + "\n"


def version_of(package: str) -> str:
    m = re.search(r"^Version: (.*)$", stanza(package), flags=re.M)
    assert m is not None
    return m.group(1)


def image(
    tmp_path: Path,
    *trees: TreeBuilder,
    env: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
    arch: str = "amd64",
) -> Image:
    cache = Cache(tmp_path / "cache")
    built: tuple[Layer, ...] = tuple(layers.write(t.freeze(), cache=cache) for t in trees)
    return Image(platform=Platform.parse(arch), layers=built, config=Config(env=env, labels=labels or {}))


def debian_tree(*, status: bool = True) -> TreeBuilder:
    t = TreeBuilder()
    t.symlink("bin", "usr/bin")
    t.symlink("lib", "usr/lib")
    t.data("usr/bin/python3.11", b"\x7fELF fake interpreter", mode=0o755)
    t.symlink("usr/bin/python3", "python3.11")
    t.data("usr/lib/x86_64-linux-gnu/libc.so.6", HOST_LIBC.read_bytes(), mode=0o755)
    if status:
        t.data("var/lib/dpkg/status", (stanza("libc6") + "\n" + stanza("libpython3.11-minimal")).encode())
    return t


def test_debian_layout_reads_dpkg(tmp_path: Path) -> None:
    got = detect.detect(image(tmp_path, debian_tree()))
    py = re.match(r"3\.11\.(\d+)", version_of("libpython3.11-minimal"))
    libc = re.match(r"(\d+)\.(\d+)", version_of("libc6"))
    assert py is not None and libc is not None
    assert got == Target(
        platform=Platform("amd64"),
        python_version=(3, 11, int(py.group(1))),
        interpreter="/usr/bin/python3.11",
        libc="glibc",
        libc_version=(int(libc.group(1)), int(libc.group(2))),
    )


def test_without_dpkg_glibc_comes_from_libc_so(tmp_path: Path) -> None:
    got = detect.detect(image(tmp_path, debian_tree(status=False)))
    libc = re.match(r"(\d+)\.(\d+)", version_of("libc6"))
    assert libc is not None
    assert got.libc_version == (int(libc.group(1)), int(libc.group(2)))
    assert got.python_version == (3, 11, 0)  # no database: patch unknown


def test_distroless_status_d_and_old_glibc_symlink(tmp_path: Path) -> None:
    t = TreeBuilder()
    t.data("usr/bin/python3.11", b"py", mode=0o755)
    t.symlink("usr/bin/python3", "/usr/bin/python3.11")
    t.symlink("lib/x86_64-linux-gnu/libc.so.6", "libc-2.31.so")
    t.data("lib/x86_64-linux-gnu/libc-2.31.so", b"x")
    t.data(
        "var/lib/dpkg/status.d/python3.11-minimal",
        b"Package: python3.11-minimal\nVersion: 3.11.2-6+deb12u6\n",
    )
    t.data("var/lib/dpkg/status.d/python3.11-minimal.md5sums", b"00  usr/bin/python3.11\n")
    got = detect.detect(image(tmp_path, t, env=("PATH=/usr/local/bin:/usr/bin",)))
    assert (got.python_version, got.libc_version, got.interpreter) == (
        (3, 11, 2),
        (2, 31),
        "/usr/bin/python3.11",
    )


def official_tree() -> TreeBuilder:
    t = debian_tree()
    t.data("usr/local/bin/python3.12", b"py", mode=0o755)
    t.symlink("usr/local/bin/python3", "python3.12")
    return t


def test_official_image_prefers_path_order_and_python_version_env(tmp_path: Path) -> None:
    env = ("PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON_VERSION=3.12.7")
    got = detect.detect(image(tmp_path, official_tree(), env=env))
    assert (got.interpreter, got.python_version) == ("/usr/local/bin/python3.12", (3, 12, 7))


def test_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    env = ("PYTHON_VERSION=3.12.7",)
    wh = TreeBuilder()
    wh.data("usr/local/bin/.wh.python3.12", b"")
    wh.data("usr/local/bin/.wh.python3", b"")
    assert (
        detect.detect(image(tmp_path / "a", official_tree(), wh, env=env)).interpreter
        == "/usr/bin/python3.11"
    )
    opq = TreeBuilder()
    opq.data("usr/local/bin/.wh..wh..opq", b"")
    opq.data("usr/local/bin/tool", b"x")
    assert (
        detect.detect(image(tmp_path / "b", official_tree(), opq, env=env)).interpreter
        == "/usr/bin/python3.11"
    )
    gone = TreeBuilder()
    gone.data("usr/.wh.local", b"")
    readd = TreeBuilder()  # a later layer puts a different interpreter back
    readd.data("usr/local/bin/python3.13", b"py", mode=0o755)
    got = detect.detect(image(tmp_path / "c", official_tree(), gone, readd))
    assert (got.interpreter, got.python_version[:2]) == ("/usr/local/bin/python3.13", (3, 13))


def test_alpine_musl(tmp_path: Path) -> None:
    t = TreeBuilder()
    t.data("lib/ld-musl-aarch64.so.1", b"\x7fELF musl", mode=0o755)
    t.symlink("lib/libc.musl-aarch64.so.1", "ld-musl-aarch64.so.1")
    t.data("lib/apk/db/installed", b"C:Q1x\nP:musl\nV:1.2.5-r0\nA:aarch64\n\nP:python3\nV:3.12.8-r1\n\n")
    t.data("usr/bin/python3.12", b"py", mode=0o755)
    t.symlink("usr/bin/python3", "python3.12")
    got = detect.detect(image(tmp_path, t, arch="arm64"))
    assert got == Target(
        platform=Platform.parse("linux/arm64"),
        python_version=(3, 12, 8),
        interpreter="/usr/bin/python3.12",
        libc="musl",
        libc_version=(1, 2),
    )


def test_labels_are_the_fast_path(tmp_path: Path) -> None:
    want = Target(
        platform=Platform("amd64"),
        python_version=(3, 13, 5),
        interpreter="/usr/bin/python3.13",
        libc="glibc",
        libc_version=(2, 41),
    )
    got = detect.detect(image(tmp_path, TreeBuilder(), labels=want.labels()))
    assert got == want
    broken = {**want.labels(), "dev.slimline.libc": "glibc"}
    assert detect.target_from_labels(image(tmp_path, TreeBuilder(), labels=broken)) is None


def test_no_python(tmp_path: Path) -> None:
    t = TreeBuilder()
    t.data("usr/lib/x86_64-linux-gnu/libc.so.6", HOST_LIBC.read_bytes())
    t.data("usr/bin/python2.7", b"old")
    with pytest.raises(detect.DetectError, match="no Python interpreter") as info:
        detect.detect(image(tmp_path, t))
    assert "pick a Python base" in str(info.value)


def test_no_libc(tmp_path: Path) -> None:
    t = TreeBuilder()
    t.data("usr/bin/python3.12", b"py", mode=0o755)
    with pytest.raises(detect.DetectError, match="C library"):
        detect.detect(image(tmp_path, t))
