"""build.dependencies: which builder package ships a library, asked only of a builder a build had written."""

from __future__ import annotations

from pathlib import Path

from slimline.artifacts.targetbuild import TargetBuilds
from slimline.base.builder import Builder
from slimline.build.dependencies import _providers
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.oci.image import Platform
from slimline.target import Target


def _builds(tmp_path: Path, written: list[int]) -> TargetBuilds:
    root = tmp_path / "root"
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libfoo.so.1").write_bytes(b"elf")
    records = root / "var/lib/dpkg/status.d"
    records.mkdir(parents=True)
    (records / "libfoo1.md5sums").write_text("0123  usr/lib/x86_64-linux-gnu/libfoo.so.1\n")

    def write_root() -> Path:
        written.append(1)
        return root

    target = Target(Platform("amd64"), (3, 11, 2), "/usr/bin/python3.11", "glibc", (2, 36))
    builder = Builder("id", target, target.interpreter, (), False, write_root)
    ctx = Context(Cache(tmp_path / "cache"))
    return TargetBuilds(lambda: builder, ctx=ctx, index_url="http://127.0.0.1:9/", index_auth=None)


def test_a_builder_only_resolved_is_not_written_to_look_up_a_library(tmp_path: Path) -> None:
    written: list[int] = []
    builds = _builds(tmp_path, written)
    _ = builds.builder  # resolved (as prepare() does early), its files not asked for
    assert _providers(builds)(["libfoo.so.1"]) == {}
    assert written == []


def test_a_builder_a_build_had_written_names_the_package(tmp_path: Path) -> None:
    written: list[int] = []
    builds = _builds(tmp_path, written)
    _ = builds.builder.root  # a build in it
    assert _providers(builds)(["libfoo.so.1"]) == {"libfoo.so.1": "libfoo1"}
    assert written == [1]
