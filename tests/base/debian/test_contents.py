"""Which package ships a library: the archive's Contents index, read the way the module says."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from slimline.base.debian import contents
from slimline.base.debian.base import BaseSettings, DebianRef, library_packages
from slimline.base.debian.errors import ResolveError
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.oci.image import Platform
from tests.support import cache_dir

INDEX = b"""\
usr/lib/x86_64-linux-gnu/libldap-2.5.so.0                   net/libldap-2.5-0
usr/lib/x86_64-linux-gnu/libldap-2.5.so.0.1.11              net/libldap-2.5-0
usr/lib/python3/dist-packages/fake/libldap-2.5.so.0         python/python3-fake
usr/share/doc/libfoo/libfoo.so.1                            doc/libfoo-doc
usr/lib/libfoo.so.1                                         libs/libfoo1,libs/libfoo1-extra
lib/x86_64-linux-gnu/libold.so.3                            oldlibs/libold3
"""


def test_the_index_is_streamed_and_only_library_directories_count() -> None:
    raw = io.BytesIO(gzip.compress(INDEX))
    wanted = frozenset({"libldap-2.5.so.0", "libfoo.so.1", "libold.so.3", "libnothere.so.9"})
    found = contents._scan(raw, wanted, what="main/Contents-amd64.gz")
    assert found == {"libldap-2.5.so.0": "libldap-2.5-0", "libfoo.so.1": "libfoo1", "libold.so.3": "libold3"}


def test_a_broken_index_is_an_error_that_says_which() -> None:
    with pytest.raises(ResolveError, match=r"Contents-amd64\.gz"):
        contents._scan(io.BytesIO(b"not gzip"), frozenset({"x.so.1"}), what="main/Contents-amd64.gz")


@pytest.mark.network
def test_the_real_index_names_the_package_of_a_soname(tmp_path: Path) -> None:
    ctx = Context(Cache(cache_dir()))
    found = library_packages(
        DebianRef.parse("debian:bookworm"),
        platform=Platform.parse("linux/amd64"),
        settings=BaseSettings(),
        sonames=["libldap-2.5.so.0", "libpq.so.5", "libno-such-thing.so.7"],
        ctx=ctx,
    )
    assert found == {"libldap-2.5.so.0": "libldap-2.5-0", "libpq.so.5": "libpq5"}
