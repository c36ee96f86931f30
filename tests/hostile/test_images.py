"""The hostile corpus for bases: images, their media and what slimline does with their files.

Each case writes a base that lies or aims outside (an OCI layout, a docker archive or a static
registry on 127.0.0.1), runs the real command line on it in a child with limited address space,
and checks that it is refused with one clear ``slimline: error:`` line (no traceback), or
contained; that the output was not written; that the child's peak memory stayed under
:data:`~tests.hostile.helpers.PEAK_LIMIT`; and that nothing outside the directories slimline
owns (the cache, its temp dir, the output) was written, touched or deleted (the sentinel files
aimed at carry an old mtime).  A few cases drive :mod:`slimline.base.rootfs` in-process.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slimline import layers
from slimline.base import rootfs
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.layers.read import final_files
from slimline.oci import validate
from slimline.oci.image import Image, Layer, Platform
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.build.helpers import write_project
from tests.hostile.helpers import (
    BASE_FILES,
    LAYER_GZIP,
    MIB,
    OLD,
    PEAK_LIMIT,
    Blob,
    Place,
    Run,
    big,
    directory,
    docker_archive,
    file,
    hardlink,
    layer,
    oci_layout,
    place,
    raw_blob,
    registry_paths,
    run_slimline,
    sha,
    snapshot,
    static_registry,
    symlink,
)

DIGEST_RULE = "sha256:<64 lowercase hex digits>"
# A build of these small images peaks near 35 MiB; a case whose hostile part is bigger than this
# bound proves that part was streamed or skipped, never held.
SMALL = 100 * MIB
# 64 characters that pass a length check and climb from blobs/sha256/ of the cache to the sentinel
CLIMB = "../../../" + "./" * 20 + "sentinel/victim"
assert len(CLIMB) == 64


@pytest.fixture
def p(tmp_path: Path) -> Iterator[Place]:
    """The case's directories; at the end, the files the images aim at are unchanged (each run of
    slimline also checks that nothing outside its own directories changed: :func:`run_slimline`)."""
    here = place(tmp_path)
    before = snapshot(here.sentinel)
    yield here
    assert snapshot(here.sentinel) == before, "a file aimed at by the image changed"
    assert os.stat(here.sentinel / "victim").st_mtime == OLD


def base_layer(p: Place, *extra: Any, name: str = "base.tar.gz") -> Blob:
    return layer(p.inputs / name, [*BASE_FILES, *extra])


def base_cmd(p: Place, ref: str, *flags: str) -> Run:
    return run_slimline(p, "base", ref, "--to", f"oci:{p.out}:t", *flags)


def refused(p: Place, ref: str, *phrases: str) -> Run:
    """``slimline base REF`` refuses with every phrase; the output was not written."""
    result = base_cmd(p, ref)
    result.refused(*phrases)
    assert not p.out.exists()
    assert result.peak < PEAK_LIMIT, result.peak
    return result


# --- digests in descriptors -----------------------------------------------------------------------


def test_a_layer_digest_with_dotdot_is_refused_before_it_names_a_file(p: Place) -> None:
    good = base_layer(p)
    ref = oci_layout(
        p.inputs / "img", [good], manifest=lambda m: m["layers"][0].update(digest=f"sha256:{CLIMB}")
    )
    refused(p, ref, DIGEST_RULE)


def test_a_layer_digest_of_another_algorithm_is_refused(p: Place) -> None:
    good = base_layer(p)
    ref = oci_layout(
        p.inputs / "img", [good], manifest=lambda m: m["layers"][0].update(digest="sha512:" + "ab" * 64)
    )
    refused(p, ref, DIGEST_RULE)


def test_an_uppercase_layer_digest_is_refused(p: Place) -> None:
    good = base_layer(p)
    upper = "sha256:" + good.digest.removeprefix("sha256:").upper()
    (p.inputs / "img" / "blobs" / "sha256").mkdir(parents=True)
    (p.inputs / "img" / "blobs" / "sha256" / upper[7:]).write_bytes(good.path.read_bytes())
    ref = oci_layout(p.inputs / "img", [good], manifest=lambda m: m["layers"][0].update(digest=upper))
    refused(p, ref, DIGEST_RULE)


def test_a_config_digest_with_dotdot_is_refused(p: Place) -> None:
    good = base_layer(p)
    ref = oci_layout(
        p.inputs / "img", [good], manifest=lambda m: m["config"].update(digest=f"sha256:{CLIMB}")
    )
    refused(p, ref, DIGEST_RULE)


def test_an_index_entry_with_a_dotdot_digest_is_refused(p: Place) -> None:
    def bend(index: dict[str, Any]) -> None:
        index["manifests"][0]["digest"] = "sha256:../../../sentinel/x"

    ref = oci_layout(p.inputs / "img", [base_layer(p)], index=bend)
    refused(p, ref, DIGEST_RULE)


def test_a_malformed_diff_id_is_refused(p: Place) -> None:
    ref = oci_layout(
        p.inputs / "img", [base_layer(p)], config=lambda c: c["rootfs"].update(diff_ids=["sha256:../x"])
    )
    refused(p, ref, DIGEST_RULE)


# --- what descriptors and configs promise -----------------------------------------------------------


def test_a_wrong_diff_id_is_refused_naming_the_layer(p: Place) -> None:
    other = sha(b"not this layer")
    ref = oci_layout(p.inputs / "img", [base_layer(p)], config=lambda c: c["rootfs"].update(diff_ids=[other]))
    refused(p, ref, "layer 1", "diff_id", other)


def test_a_layer_smaller_than_its_descriptor_says_is_refused(p: Place) -> None:
    good = base_layer(p)
    ref = oci_layout(p.inputs / "img", [good], manifest=lambda m: m["layers"][0].update(size=good.size + 1))
    refused(p, ref, f"{good.size + 1} bytes")


def test_a_negative_layer_size_is_refused(p: Place) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p)], manifest=lambda m: m["layers"][0].update(size=-1))
    refused(p, ref, "size")


def test_a_layer_size_that_is_a_string_is_refused(p: Place) -> None:
    good = base_layer(p)
    ref = oci_layout(p.inputs / "img", [good], manifest=lambda m: m["layers"][0].update(size=str(good.size)))
    refused(p, ref, "size")


def test_a_layer_descriptor_without_a_digest_is_refused(p: Place) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p)], manifest=lambda m: m["layers"][0].pop("digest"))
    refused(p, ref, "digest")


def test_a_diff_id_that_is_not_a_string_is_refused(p: Place) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p)], config=lambda c: c["rootfs"].update(diff_ids=[7]))
    refused(p, ref, DIGEST_RULE)


def test_more_layers_than_diff_ids_are_refused(p: Place) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p)], config=lambda c: c["rootfs"].update(diff_ids=[]))
    refused(p, ref, "diff_ids")


def test_an_unknown_layer_media_type_is_refused(p: Place) -> None:
    ref = oci_layout(
        p.inputs / "img",
        [base_layer(p)],
        manifest=lambda m: m["layers"][0].update(mediaType="application/vnd.example.layer.v1.tar+lz4"),
    )
    refused(p, ref, "media type", "application/vnd.example.layer.v1.tar+lz4")


def test_a_gzip_media_type_on_uncompressed_bytes_is_refused(p: Place) -> None:
    plain = layer(p.inputs / "plain.tar", BASE_FILES, gzipped=False)
    ref = oci_layout(
        p.inputs / "img", [plain], manifest=lambda m: m["layers"][0].update(mediaType=LAYER_GZIP)
    )
    refused(p, ref, "layer 1", "gzip")


def test_a_config_of_another_media_type_is_refused(p: Place) -> None:
    ref = oci_layout(
        p.inputs / "img",
        [base_layer(p)],
        manifest=lambda m: m["config"].update(mediaType="application/vnd.cncf.helm.config.v1+json"),
    )
    refused(p, ref, "application/vnd.cncf.helm.config.v1+json")


def test_a_corrupt_gzip_stream_is_refused(p: Place) -> None:
    data = gzip.compress(b"x" * 4096)[:20] + b"\xff" * 64
    blob = raw_blob(p.inputs / "corrupt.gz", data, diff_id=sha(b"whatever"))
    refused(p, oci_layout(p.inputs / "img", [blob]), "layer 1", "gzip")


# --- layout files -----------------------------------------------------------------------------------


def test_an_index_json_that_is_not_json_is_refused(p: Place) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p)])
    (p.inputs / "img" / "index.json").write_bytes(b'{"manifests": [')
    refused(p, ref, "index.json", "not JSON")


def test_a_huge_index_json_is_refused_without_reading_it(p: Place) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p)])
    with (p.inputs / "img" / "index.json").open("r+b") as f:
        f.truncate(4 << 30)  # sparse: 4 GiB that cost no disk
    refused(p, ref, "index.json", "larger than")


def test_a_manifest_naming_a_missing_layer_is_refused(p: Place) -> None:
    good = base_layer(p)
    ref = oci_layout(p.inputs / "img", [good])
    (p.inputs / "img" / "blobs" / "sha256" / good.digest[7:]).unlink()
    refused(p, ref, "missing")


def test_an_index_naming_a_missing_manifest_is_refused(p: Place) -> None:
    def bend(index: dict[str, Any]) -> None:
        index["manifests"][0]["digest"] = sha(b"no such manifest")

    refused(p, oci_layout(p.inputs / "img", [base_layer(p)], index=bend), "missing")


# --- gzip bombs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Blob:
    """A gzip layer that inflates 2.3 MiB into 512 MiB (one file of zeros), with a diff_id that is
    not its own (nobody computes a bomb's real one)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.tar.gz"
    made = layer(path, [big("zeros", 512 * MIB, b"\0")])
    return Blob(made.path, made.digest, sha(b"a claim"), made.size, made.media_type)


def test_a_gzip_bomb_in_a_layout_is_refused_in_bounded_memory(p: Place, bomb: Blob) -> None:
    result = refused(p, oci_layout(p.inputs / "img", [base_layer(p), bomb]), "layer 2", "diff_id")
    assert result.peak < SMALL, result.peak


def test_a_gzip_bomb_in_a_docker_archive_is_refused_in_bounded_memory(p: Place, bomb: Blob) -> None:
    result = refused(p, docker_archive(p.inputs / "img.tar", [base_layer(p), bomb]), "layer 2", "diff_id")
    assert result.peak < SMALL, result.peak


# --- docker archives --------------------------------------------------------------------------------


def test_a_docker_archive_layer_path_with_dotdot_is_refused(p: Place) -> None:
    ref = docker_archive(
        p.inputs / "img.tar", [base_layer(p)], entry=lambda e: e.update(Layers=["../../sentinel/victim"])
    )
    refused(p, ref, "missing")


def test_a_docker_archive_layer_path_that_is_absolute_is_refused(p: Place) -> None:
    ref = docker_archive(
        p.inputs / "img.tar", [base_layer(p)], entry=lambda e: e.update(Layers=["/etc/passwd"])
    )
    refused(p, ref, "missing")


def test_a_docker_archive_layer_that_is_a_symlink_out_of_the_archive_is_refused(p: Place) -> None:
    link = tarfile.TarInfo("evil.tar")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../sentinel/victim"
    ref = docker_archive(
        p.inputs / "img.tar", [base_layer(p)], entry=lambda e: e.update(Layers=["evil.tar"]), extra=[link]
    )
    refused(p, ref, "evil.tar")


def test_a_docker_archive_with_a_wrong_diff_id_is_refused(p: Place) -> None:
    other = sha(b"not this layer")
    ref = docker_archive(
        p.inputs / "img.tar", [base_layer(p)], config=lambda c: c["rootfs"].update(diff_ids=[other])
    )
    refused(p, ref, "layer 1", other)


def test_a_docker_archive_manifest_that_is_not_json_is_refused(p: Place) -> None:
    path = p.inputs / "img.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"[{,"))
    refused(p, f"docker-archive:{path}", "manifest.json", "not JSON")


# --- registries -------------------------------------------------------------------------------------


def test_a_registry_layer_digest_that_climbs_out_of_the_cache_is_refused(p: Place) -> None:
    good = base_layer(p)
    paths = registry_paths(
        "hostile", [good], manifest=lambda m: m["layers"][0].update(digest=f"sha256:{CLIMB}")
    )
    with static_registry(paths) as host:
        refused(p, f"{host}/hostile:latest", DIGEST_RULE)


def test_a_registry_image_with_a_wrong_diff_id_is_refused(p: Place) -> None:
    other = sha(b"not this layer")
    paths = registry_paths("hostile", [base_layer(p)], config=lambda c: c["rootfs"].update(diff_ids=[other]))
    with static_registry(paths) as host:
        refused(p, f"{host}/hostile:latest", "layer 1", "diff_id", other)


def test_a_registry_layer_of_an_unknown_media_type_is_refused(p: Place) -> None:
    paths = registry_paths(
        "hostile", [base_layer(p)], manifest=lambda m: m["layers"][0].update(mediaType="text/html")
    )
    with static_registry(paths) as host:
        refused(p, f"{host}/hostile:latest", "media type", "text/html")


# --- the files of a base, read by a build -----------------------------------------------------------


@pytest.fixture(scope="module")
def index() -> Iterator[LocalIndex]:
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        yield idx


def build(p: Place, index: LocalIndex, ref: str, *flags: str) -> Run:
    proj = p.inputs / "proj"
    if not proj.exists():
        write_project(proj, index.url, package=False)
    return run_slimline(p, "build", str(proj), "--base", ref, "--to", f"oci:{p.out}:t", *flags)


def test_a_layer_member_with_dotdot_fails_the_build(p: Place, index: LocalIndex) -> None:
    ref = oci_layout(p.inputs / "img", [base_layer(p, file("../../sentinel/victim", b"owned\n"))])
    build(p, index, ref).refused("escapes the root", "../../sentinel/victim")
    assert not p.out.exists()


def test_absolute_member_names_stay_inside_the_image(p: Place, index: LocalIndex) -> None:
    host_passwd = os.stat("/etc/passwd")
    files = [m for m in BASE_FILES if m.name != "etc/passwd"]
    hostile = layer(
        p.inputs / "abs.tar.gz", [*files, file("/etc/passwd", b"nonroot:x:65532:65532::/:/bin/sh\n")]
    )
    build(p, index, oci_layout(p.inputs / "img", [hostile])).ok()
    validate.validate(p.out)
    assert os.stat("/etc/passwd").st_mtime_ns == host_passwd.st_mtime_ns


def test_a_huge_etc_passwd_is_not_read(p: Place, index: LocalIndex) -> None:
    files = [m for m in BASE_FILES if m.name != "etc/passwd"]
    hostile = layer(
        p.inputs / "passwd.tar.gz", [*files, big("etc/passwd", 40 * MIB, b"u:x:1:1::/:/bin/sh\n")]
    )
    result = build(p, index, oci_layout(p.inputs / "img", [hostile]))
    result.refused("etc/passwd", "--user")
    assert result.peak < SMALL, result.peak
    assert not p.out.exists()


def test_python_files_outside_the_standard_library_are_not_read_for_bytecode(
    p: Place, index: LocalIndex
) -> None:
    junk = [big(f"opt/junk/m{i}.py", 15 * MIB, b"# junk\n") for i in range(10)]
    stdlib = [file("usr/lib/python3.11/os.py", b"import sys\n")]
    hostile = layer(p.inputs / "junk.tar.gz", [*BASE_FILES, *stdlib, *junk])
    result = build(p, index, oci_layout(p.inputs / "img", [hostile]), "--bytecode")
    result.ok()
    assert result.peak < SMALL, result.peak
    validate.validate(p.out)


def test_a_standard_library_too_big_to_compile_is_refused(p: Place, index: LocalIndex) -> None:
    stdlib = [big(f"usr/lib/python3.11/m{i}.py", 15 * MIB, b"# big\n") for i in range(10)]
    hostile = layer(p.inputs / "stdlib.tar.gz", [*BASE_FILES, *stdlib])
    result = build(p, index, oci_layout(p.inputs / "img", [hostile]), "--bytecode")
    result.refused("bytecode")
    assert result.peak < PEAK_LIMIT, result.peak


def test_a_layer_that_is_not_a_tar_fails_the_build_clearly(p: Place, index: LocalIndex) -> None:
    garbage = b"\x01not a tar at all" * 100
    blob = raw_blob(p.inputs / "garbage.gz", gzip.compress(garbage, mtime=0), diff_id=sha(garbage))
    build(p, index, oci_layout(p.inputs / "img", [base_layer(p), blob])).refused("layer", "tar")


# --- unpacking a base on the host (base.rootfs, for the base's own interpreter) ----------------


def _image(cache: Cache, tmp: Path, *stack: list[Any]) -> Image:
    """An image whose layers are written by hand from member lists (nothing refused on the way)."""
    made: list[Layer] = []
    tmp.mkdir(parents=True, exist_ok=True)
    for i, members in enumerate(stack):
        b = layer(tmp / f"l{i}.tar.gz", members)
        hexdigest, _ = cache.put_stream(b.path.open("rb"))
        made.append(Layer(b.digest, b.diff_id, b.size, b.media_type, cache.blob_path(hexdigest)))
    return Image(platform=Platform.parse("linux/amd64"), layers=tuple(made))


def _unpack(p: Place, *stack: list[Any]) -> Path:
    dest = p.tmp / "rootfs"
    dest.mkdir()
    rootfs.unpack(_image(Cache(p.cache), p.tmp, *stack), dest)
    return dest


def test_whiteouts_naming_the_directory_or_its_parent_remove_nothing(p: Place) -> None:
    dest = _unpack(
        p,
        [directory("a"), directory("a/b"), file("a/b/keep", b"1"), file("a/top", b"2")],
        [file("a/b/.wh..", b""), file("a/b/.wh...", b""), file("a/.wh.", b"")],
    )
    assert (dest / "a" / "b" / "keep").read_bytes() == b"1"
    assert (dest / "a" / "top").read_bytes() == b"2"
    again = _image(
        Cache(p.cache), p.tmp / "second", [file("x/y", b"1")], [file("x/.wh...", b""), file("x/.wh..", b"")]
    )
    fs = final_files(again.layers, wanted=lambda _: False, max_size=0)
    assert "x/y" in fs


def test_writes_through_an_absolute_symlink_stay_inside(p: Place) -> None:
    dest = _unpack(
        p, [symlink("evil", str(p.sentinel)), file("evil/victim", b"owned\n"), file("evil/new", b"x")]
    )
    assert (dest / str(p.sentinel).lstrip("/") / "victim").read_bytes() == b"owned\n"


def test_writes_through_a_climbing_symlink_stay_inside(p: Place) -> None:
    dest = _unpack(p, [symlink("up", "../../../../../../.."), file("up/sentinel/victim", b"owned\n")])
    assert (dest / "sentinel" / "victim").read_bytes() == b"owned\n"


def test_a_whiteout_through_a_symlink_removes_nothing_outside(p: Place) -> None:
    _unpack(
        p, [symlink("evil", str(p.sentinel))], [file("evil/.wh.victim", b""), file("evil/.wh..wh..opq", b"")]
    )


def test_hard_links_out_of_the_image_are_refused(p: Place) -> None:
    with pytest.raises(SlimlineError, match="escapes the root"):
        _unpack(p, [hardlink("h", "../../sentinel/victim")])
    (p.tmp / "rootfs").rmdir()
    with pytest.raises(SlimlineError, match="not a file here"):
        _unpack(p, [symlink("s", str(p.sentinel)), hardlink("h", "s/victim")])


def test_setuid_bits_of_a_base_are_kept_in_its_layers_and_dropped_on_the_host(p: Place) -> None:
    """Base layers are copied byte for byte (as other image tools do); only the host copy made
    to run the base's interpreter loses setuid and setgid."""
    suid = base_layer(p, file("usr/bin/su", b"#!/bin/false\n", 0o4755), file("usr/bin/sg", b"x", 0o2755))
    base_cmd(p, oci_layout(p.inputs / "img", [suid])).ok()
    validate.validate(p.out)
    assert (p.out / "blobs" / "sha256" / suid.digest[7:]).read_bytes() == suid.path.read_bytes()
    with layers.members(Layer(suid.digest, suid.diff_id, suid.size, suid.media_type, suid.path)) as tar:
        modes = {m.name: m.mode for m in tar}
    assert modes["usr/bin/su"] == 0o4755
    dest = _unpack(p, [file("usr/bin/su", b"x", 0o4755)])
    assert os.stat(dest / "usr" / "bin" / "su").st_mode & 0o7777 == 0o755
