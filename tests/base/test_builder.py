"""The builder: its packages named for the libraries that wheels built in it link; its files
written once, begun early."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from slimline.base import builder
from slimline.oci.image import Platform
from slimline.target import Target


def test_providers_follow_the_soname_link_to_the_file_a_package_lists(tmp_path: Path) -> None:
    root = tmp_path / "root"
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libldap-2.5.so.0.1.11").write_bytes(b"elf")
    (lib / "libldap-2.5.so.0").symlink_to("libldap-2.5.so.0.1.11")
    (lib / "libldap.so").symlink_to("libldap-2.5.so.0")  # the -dev package's link
    records = root / "var/lib/dpkg/status.d"
    records.mkdir(parents=True)
    (records / "libldap-2.5-0.md5sums").write_text("0123  usr/lib/x86_64-linux-gnu/libldap-2.5.so.0.1.11\n")
    (records / "libldap-dev.md5sums").write_text("4567  usr/include/ldap.h\n")
    assert builder.providers(root, ["libldap-2.5.so.0", "libnothere.so.1"]) == {
        "libldap-2.5.so.0": "libldap-2.5-0"
    }


def test_a_builder_for_python_x_y_asks_for_its_headers_and_the_tools() -> None:
    wanted = builder.packages("3.13", ("libpq-dev",))
    assert wanted[:3] == ("python3.13", "python3.13-dev", "build-essential")
    assert "pkg-config" in wanted and "dash" in wanted and wanted[-1] == "libpq-dev"


def _builder(make: Callable[[], Path]) -> builder.Builder:
    target = Target(Platform("amd64"), (3, 11, 2), "/usr/bin/python3.11", "glibc", (2, 36))
    return builder.Builder("id", target, target.interpreter, (), False, make)


def test_a_begun_builder_is_written_once_on_a_thread_and_every_build_gets_it(tmp_path: Path) -> None:
    release = threading.Event()
    writers: list[str] = []

    def make() -> Path:
        writers.append(threading.current_thread().name)
        released.append(release.wait(timeout=5))
        return tmp_path

    released: list[bool] = []
    b = _builder(make)
    b.begin()
    b.begin()  # begun already: returns at once, while the thread writes
    release.set()
    assert b.root == tmp_path and b.root == tmp_path
    assert writers == ["slimline-builder"] and released == [True]


def test_when_writing_a_begun_builder_fails_every_build_gets_that_error() -> None:
    calls: list[int] = []

    def make() -> Path:
        calls.append(1)
        raise RuntimeError("a .deb did not match its hash")

    b = _builder(make)
    b.begin()
    for _ in range(2):
        with pytest.raises(RuntimeError, match="did not match"):
            _ = b.root
    assert calls == [1]  # not written again
