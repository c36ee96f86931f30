"""What a base lacks for the wheels' native code: the libraries it has, the packages to add."""

from __future__ import annotations

from pathlib import Path

from slimline import layers
from slimline.base import native
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci.image import Config, History, Image, Platform


def _base(cache: Cache, *, dpkg: bool) -> Image:
    files = TreeBuilder()
    files.data("usr/lib/x86_64-linux-gnu/libc.so.6", b"libc")
    files.data("usr/lib/x86_64-linux-gnu/libz.so.1.2.13", b"zlib")
    files.symlink("usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2.13")
    files.data("usr/share/doc/libfake.so.9", b"not in a lib directory")
    if dpkg:
        files.data("var/lib/dpkg/status.d/zlib1g", b"Package: zlib1g\nVersion: 1\n")
        files.data("var/lib/dpkg/status.d/libc6", b"Package: libc6\nVersion: 1\n")
    gone = TreeBuilder()
    gone.data("usr/lib/x86_64-linux-gnu/.wh.libc.so.6", b"")  # a later layer deletes it
    return Image(
        platform=Platform.parse("linux/amd64"),
        layers=(layers.write(files.freeze(), cache=cache), layers.write(gone.freeze(), cache=cache)),
        config=Config(),
        history=(History("files"), History("whiteout")),
    )


def test_sonames_are_what_the_final_file_system_has_in_lib_directories(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    found = native.sonames(_base(cache, dpkg=True), cache=cache)
    assert found == {"libz.so.1", "libz.so.1.2.13"}  # libc.so.6 was whited out; the doc file is no library


def test_missing_packages_and_unprovided_libraries(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    image = _base(cache, dpkg=True)
    needs: dict[str, dict[str, str | None]] = {
        "numpy": {"libz.so.1": "zlib1g", "libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1"},
        "python-ldap": {"libldap-2.5.so.0": "libldap-2.5-0", "liblber-2.5.so.0": "libldap-2.5-0"},
        "weird": {"libnowhere.so.3": None, "libc.so.6": None},
    }
    lacking = native.missing(image, needs, cache=cache)
    assert lacking.add == {
        "libgcc-s1": ("numpy",),
        "libldap-2.5-0": ("python-ldap",),  # named once though two of its libraries are linked
        "libstdc++6": ("numpy",),
    }
    assert lacking.unprovided == {"weird": ("libc.so.6", "libnowhere.so.3")}
