"""layers.read.final_files: the file system a container of a stack of layers sees (OCI whiteouts),
and the scans of a base that use it (users, dpkg, stdlib bytecode); rootfs shares its whiteout names.

Layers are real blobs written by ``layers.write`` from a :class:`TreeBuilder`, except where a
member no builder would write (a ".." path) is needed: then a raw tar.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from slimline import layers
from slimline.base import dpkg, rootfs, users
from slimline.cache.store import Cache
from slimline.errors import UnsafePath
from slimline.layers import read
from slimline.layers.filetree import Kind, TreeBuilder
from slimline.layers.read import FinalEntry, TooLarge, final_files
from slimline.oci.image import LAYER_TAR, Image, Layer, Platform
from slimline.oci.whiteout import is_malformed_whiteout, is_opaque, is_whiteout, whiteout_target
from slimline.target import Target
from slimline.trees.bytecode import stdlib_tree
from slimline.trees.compiler import HostCompiler

EVERYTHING = 1 << 20


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def stack(cache: Cache, *trees: TreeBuilder) -> tuple[Layer, ...]:
    return tuple(layers.write(t.freeze(), cache=cache) for t in trees)


def view(cache: Cache, *trees: TreeBuilder, max_size: int = EVERYTHING) -> dict[str, FinalEntry]:
    return dict(final_files(stack(cache, *trees), wanted=lambda _: True, max_size=max_size))


def data(fs: dict[str, FinalEntry]) -> dict[str, bytes | None]:
    """Regular files and their bytes."""
    return {p: e.data for p, e in fs.items() if e.kind is Kind.FILE}


def raw_layer(tmp_path: Path, name: str, files: dict[str, bytes]) -> Layer:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    blob = tmp_path / name
    blob.write_bytes(buf.getvalue())
    return Layer(f"sha256:{name}", f"sha256:{name}", len(buf.getvalue()), LAYER_TAR, blob)


def test_whiteout_names_are_parsed_in_one_place() -> None:
    assert whiteout_target("etc/.wh.passwd") == "etc/passwd" and whiteout_target(".wh.x") == "x"
    assert whiteout_target("a/.wh..hidden") == "a/.hidden"
    for name in ("a/b", "a/.wh..wh..opq", ".wh..wh.plnk", ".wh.", "a/.wh..", "a/.wh..."):
        assert whiteout_target(name) is None, name
    assert is_opaque("a/.wh..wh..opq") and not is_opaque("a/.wh.x")
    assert all(is_whiteout(n) for n in (".wh.x", "a/.wh..wh..opq", ".wh..wh.plnk", "a/.wh..."))
    assert not is_whiteout("a/wh.x") and not is_whiteout("a/.wh.x/b")
    assert [n for n in (".wh.", "a/.wh..", "a/.wh...", "a/.wh..x") if is_malformed_whiteout(n)] == [
        ".wh.",
        "a/.wh..",
        "a/.wh...",
    ]


def test_a_later_whiteout_deletes_a_file_and_a_whole_directory(cache: Cache) -> None:
    lower = TreeBuilder()
    lower.data("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    lower.data("etc/hosts", b"127.0.0.1 localhost\n")
    lower.data("usr/lib/x/a.py", b"a")
    lower.data("usr/lib/x/sub/b", b"b")
    lower.data("usr/lib/xy", b"a sibling whose name starts the same")
    upper = TreeBuilder()
    upper.data("etc/.wh.passwd", b"")
    upper.data("usr/lib/.wh.x", b"")
    fs = view(cache, lower, upper)
    assert data(fs) == {
        "etc/hosts": b"127.0.0.1 localhost\n",
        "usr/lib/xy": b"a sibling whose name starts the same",
    }
    assert {"etc", "usr", "usr/lib"} <= set(fs) and not any(".wh." in p for p in fs)
    assert not any(p.startswith("usr/lib/x/") or p == "usr/lib/x" for p in fs)


def test_a_whiteout_does_not_remove_its_own_layers_entry(cache: Cache) -> None:
    lower = TreeBuilder()
    lower.data("gone", b"old")
    upper = TreeBuilder()
    upper.data(".wh.gone", b"")
    upper.data("gone", b"new")  # the spec: a whiteout applies to lower layers only
    assert data(view(cache, lower, upper)) == {"gone": b"new"}


def test_an_opaque_directory_hides_lower_entries_but_keeps_itself(cache: Cache) -> None:
    lower = TreeBuilder()
    lower.dir("opq", mode=0o700)
    lower.data("opq/old", b"old")
    lower.data("opq/sub/deep", b"deep")
    lower.data("opqx/kept", b"a sibling with the same prefix")
    upper = TreeBuilder()
    upper.data("opq/.wh..wh..opq", b"")
    fs = view(cache, lower, upper)
    assert fs["opq"].kind is Kind.DIR
    assert sorted(p for p in fs if p.startswith("opq")) == ["opq", "opqx", "opqx/kept"]


def test_entries_of_the_opaque_layer_stay_before_and_after_the_marker(cache: Cache) -> None:
    lower = TreeBuilder()
    lower.data("opq/old", b"lower")
    lower.data("opq/-early", b"lower")
    lower.data("opq/other", b"lower, hidden")
    upper = TreeBuilder()
    upper.data("opq/-early", b"upper, before the marker")
    upper.data("opq/.wh..wh..opq", b"")
    upper.data("opq/old", b"upper, re-added after the marker")
    layers_ = stack(cache, lower, upper)
    order = [name for name, _, _ in layers.walk(layers_[1:])]
    assert order.index("opq/-early") < order.index("opq/.wh..wh..opq") < order.index("opq/old")
    fs = final_files(layers_, wanted=lambda _: True, max_size=EVERYTHING)
    assert data(dict(fs)) == {
        "opq/-early": b"upper, before the marker",
        "opq/old": b"upper, re-added after the marker",
    }


def test_whiteouts_aiming_at_the_directory_or_its_parent_have_no_effect(cache: Cache, tmp_path: Path) -> None:
    lower = TreeBuilder()
    lower.data("a/file", b"kept")
    lower.data("top", b"kept too")
    upper = TreeBuilder()
    for name in ("a/.wh...", "a/.wh..", "a/.wh.", ".wh...", ".wh..", ".wh."):
        upper.data(name, b"")
    image = Image(Platform("amd64"), stack(cache, lower, upper))
    fs = final_files(image.layers, wanted=lambda _: True, max_size=EVERYTHING)
    assert data(dict(fs)) == {"a/file": b"kept", "top": b"kept too"} and set(fs) == {"a", "a/file", "top"}
    # rootfs shares the parsing: nothing above or at its root is removed either
    sentinel = tmp_path / "beside" / "sentinel"
    sentinel.parent.mkdir()
    sentinel.write_text("host file")
    root = tmp_path / "beside" / "root"
    root.mkdir()
    rootfs.unpack(image, root)
    assert sentinel.read_text() == "host file"
    assert (root / "a" / "file").read_bytes() == b"kept" and (root / "top").read_bytes() == b"kept too"


def test_a_path_with_dotdot_is_refused(tmp_path: Path, cache: Cache) -> None:
    good = stack(cache, TreeBuilder())
    evil = raw_layer(tmp_path, "evil", {"usr/../../etc/passwd": b"x"})
    with pytest.raises(UnsafePath, match="escapes the root"):
        final_files((*good, evil), wanted=lambda _: True, max_size=EVERYTHING)


def test_the_size_cap_and_the_predicate_choose_which_bytes_are_kept(cache: Cache) -> None:
    t = TreeBuilder()
    t.data("small", b"x" * 10)
    t.data("at-cap", b"y" * 16)
    t.data("big", b"z" * 17)
    t.data("unwanted", b"w")
    fs = final_files(stack(cache, t), wanted=lambda p: p != "unwanted", max_size=16)
    assert {p: (e.size, e.data) for p, e in fs.items()} == {
        "small": (10, b"x" * 10),
        "at-cap": (16, b"y" * 16),
        "big": (17, None),
        "unwanted": (1, None),
    }


def test_wanted_bytes_and_paths_are_capped_all_together(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = TreeBuilder()
    for i in range(4):
        t.data(f"f{i}", b"x" * 10)
    layer = stack(cache, t)
    assert len(final_files(layer, wanted=lambda _: True, max_size=10, max_total=40)) == 4
    with pytest.raises(TooLarge, match="more than 39 bytes") as info:
        final_files(layer, wanted=lambda _: True, max_size=10, max_total=39)
    assert info.value.path == "f3"
    assert final_files(layer, wanted=lambda p: p == "f0", max_size=10, max_total=10)["f0"].data == b"x" * 10
    monkeypatch.setattr(read, "MAX_ENTRIES", 3)
    with pytest.raises(TooLarge, match="more than 3 paths"):
        final_files(layer, wanted=lambda _: False, max_size=0)


def test_links_replacements_and_re_adding_below_a_whiteout(cache: Cache) -> None:
    lower = TreeBuilder()
    lower.data("lib/real.so", b"ELF")
    lower.hardlink("lib/txt-hard.so", "lib/real.so")
    lower.symlink("lib/soft.so", "real.so")
    lower.data("d/child", b"below a directory that becomes a file")
    lower.data("w/old", b"old")
    middle = TreeBuilder()
    middle.data("d", b"now a file")
    middle.data(".wh.w", b"")
    upper = TreeBuilder()
    upper.data("w/new", b"new")
    fs = view(cache, lower, middle, upper)
    assert fs["lib/txt-hard.so"] == FinalEntry("lib/txt-hard.so", Kind.HARDLINK, "lib/real.so", 3, b"ELF")
    assert fs["lib/soft.so"] == FinalEntry("lib/soft.so", Kind.SYMLINK, "real.so")
    assert fs["d"].data == b"now a file" and "d/child" not in fs
    assert "w/old" not in fs and fs["w/new"].data == b"new" and fs["w"].kind is Kind.DIR


def test_base_scans_see_the_final_file_system(cache: Cache) -> None:
    lower = TreeBuilder()
    lower.data("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    lower.data("var/lib/dpkg/status.d/libc6", b"Package: libc6\n")
    lower.data("var/lib/dpkg/status.d/removed", b"Package: removed\n")
    upper = TreeBuilder()
    upper.data("etc/passwd", b"nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")
    upper.data("etc/.wh..wh..opq", b"")  # after the new passwd in the tar: it stays
    upper.data("var/lib/dpkg/status.d/.wh.removed", b"")
    image = Image(Platform("amd64"), stack(cache, lower, upper))
    assert users.passwd_of(image).startswith(b"nonroot:")
    assert users.default_user(image, cache=cache) == "65532:65532"
    assert dpkg.installed(image, cache=cache) == {"libc6"}
    gone = TreeBuilder()
    gone.data("etc/.wh.passwd", b"")
    assert users.passwd_of(Image(Platform("amd64"), (*image.layers, *stack(cache, gone)))) == b""


def test_stdlib_bytecode_skips_deleted_modules_and_whiteout_names(cache: Cache) -> None:
    minor = sys.version_info.minor
    target = Target(Platform("amd64"), (3, minor, 0), f"/usr/bin/python3.{minor}", "glibc", (2, 36))
    lib = f"usr/lib/python3.{minor}"
    lower = TreeBuilder()
    lower.data(f"{lib}/keep.py", b"x = 1\n")
    lower.data(f"{lib}/gone.py", b"y = 2\n")
    upper = TreeBuilder()
    upper.data(f"{lib}/.wh.gone.py", b"")
    compiler = HostCompiler(target)
    tree = stdlib_tree(Image(Platform("amd64"), stack(cache, lower, upper)), target=target, compiler=compiler)
    assert sorted(p for p in tree.paths() if p.endswith(".pyc")) == [
        f"{lib}/__pycache__/keep.{compiler.cache_tag}.pyc"
    ]
