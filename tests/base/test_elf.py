"""ELF needs and dpkg records, checked against real binaries, readelf and real layers."""

from __future__ import annotations

import re
import shutil
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from slimline import layers
from slimline.base import dpkg
from slimline.base.elf import debian_packages, needed, wheel_needs
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci.image import Image, Platform

HOST_LIBS = ["libstdc++.so.6", "libssl.so.3", "libz.so.1"]


def _host_lib(name: str) -> Path:
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/x86_64-linux-gnu"):
        p = Path(d) / name
        if p.exists():
            return p.resolve()
    raise AssertionError(f"{name} is not installed on this host")


def _readelf_needed(path: Path) -> list[str]:
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is required"
    out = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


@pytest.mark.parametrize("name", HOST_LIBS)
def test_needed_agrees_with_readelf(name: str) -> None:
    path = _host_lib(name)
    assert needed(path.read_bytes()) == _readelf_needed(path)


def test_not_elf_and_truncated_elf_give_nothing() -> None:
    data = _host_lib("libz.so.1").read_bytes()
    assert needed(b"#!/bin/sh\n") == []
    assert needed(data[:200]) == []


def test_wheel_needs_leaves_out_what_the_wheel_ships(tmp_path: Path) -> None:
    stdcpp = _host_lib("libstdc++.so.6")
    wheel = tmp_path / "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(stdcpp, "demo/_native.cpython-311-x86_64-linux-gnu.so")
        zf.write(_host_lib("libz.so.1"), "demo.libs/libgcc_s.so.1")  # a bundled copy under that name
        zf.writestr("demo/__init__.py", "")
    got = wheel_needs(wheel)
    assert got == frozenset(_readelf_needed(stdcpp)) - {"libgcc_s.so.1"}
    assert "libgcc-s1" not in debian_packages(got)


def test_wheel_needs_streams_each_elf_file(tmp_path: Path) -> None:
    # a 40 MB shared library (its bytes padded past the end) is never held whole
    stdcpp = _host_lib("libstdc++.so.6")
    wheel = tmp_path / "big-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf, zf.open("big/_native.so", "w", force_zip64=True) as member:
        member.write(stdcpp.read_bytes())
        for _ in range(40):
            member.write(bytes(1 << 20))
    tracemalloc.start()
    try:
        got = wheel_needs(wheel)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == frozenset(_readelf_needed(stdcpp))
    assert peak < 8 << 20, f"{peak >> 20} MiB traced"


def test_installed_reads_status_and_status_d(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    lower = TreeBuilder()
    lower.data(
        "var/lib/dpkg/status",
        (
            b"Package: libc6\nStatus: install ok installed\nVersion: 2.36\n\n"
            b"Package: removed-one\nStatus: deinstall ok config-files\n\n"
            b"Package: libssl3:amd64\nStatus: install ok installed\n"
        ),
    )
    upper = TreeBuilder()
    upper.data("var/lib/dpkg/status.d/libstdc++6", b"Package: libstdc++6\n")
    upper.data("var/lib/dpkg/status.d/libstdc++6.md5sums", b"")
    upper.data("var/lib/dpkg/status.d/python3.11-minimal", b"Package: python3.11-minimal\n")
    upper.data("var/lib/dpkg/status.d/python3.11-minimal.md5sums", b"")
    image = Image(
        platform=Platform("amd64"),
        layers=(layers.write(lower.freeze(), cache=cache), layers.write(upper.freeze(), cache=cache)),
    )
    found = {"libc6", "libssl3", "libstdc++6", "python3.11-minimal"}  # names may hold dots
    assert dpkg.installed(image, cache=cache) == found
    assert dpkg.installed(image, cache=cache) == found  # memoised
