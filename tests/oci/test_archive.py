"""docker-archive tars: written (OCI layout + manifest.json), loaded by podman, read back in every form."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.errors import HashMismatch
from slimline.oci import archive, layout
from slimline.oci.image import LAYER_GZIP, LAYER_TAR, Platform
from slimline.oci.reference import ArchiveRef, OciRef
from slimline.oci.validate import validate
from tests.oci.helpers import Podman, make_image, sha256
from tests.support import run, tool

AMD64 = Platform.parse("linux/amd64")


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def _member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_writes_an_oci_layout_plus_manifest_json_deterministically(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    assert archive.write(img, ArchiveRef(a, "localhost/demo:1.0")) == img.digest
    archive.write(img, ArchiveRef(b, None), name="demo:1.0")  # the same name, given the other way
    assert a.read_bytes() == b.read_bytes()
    cfg, layers = img.config_descriptor.digest[7:], [x.digest[7:] for x in img.layers]
    with tarfile.open(a) as tar:
        members = tar.getmembers()
    blobs = [f"blobs/sha256/{h}" for h in sorted({cfg, img.digest[7:], *layers})]
    assert [m.name for m in members] == [
        "blobs",
        "blobs/sha256",
        *blobs,
        "index.json",
        "manifest.json",
        "oci-layout",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert json.loads(_member(a, "manifest.json")) == [
        {
            "Config": f"blobs/sha256/{cfg}",
            "RepoTags": ["localhost/demo:1.0"],
            "Layers": [f"blobs/sha256/{h}" for h in layers],
        },
    ]
    index = json.loads(_member(a, "index.json"))
    assert index["manifests"][0]["digest"] == img.digest
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "localhost/demo:1.0",
        "org.opencontainers.image.ref.name": "localhost/demo:1.0",
    }
    checked = validate(a)
    assert checked.manifests == (img.digest,) and checked.archive_images == 1 and checked.layers == 2


def test_an_unnamed_archive_has_no_repo_tags(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "a.tar"
    archive.write(make_image(cache), ArchiveRef(out, None))
    assert json.loads(_member(out, "manifest.json"))[0]["RepoTags"] == []
    assert "annotations" not in json.loads(_member(out, "index.json"))["manifests"][0]


def test_read_back_and_verify(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    out = tmp_path / "a.tar"
    archive.write(img, ArchiveRef(out, "localhost/demo:1.0"))
    fresh = Cache(tmp_path / "fresh")
    back = archive.read(ArchiveRef(out, "localhost/demo:1.0"), platform=AMD64, cache=fresh)
    assert back.digest == img.digest  # gzip layers are recognised as gzip, the config is canonical
    assert all(x.path.is_relative_to(fresh.root) for x in back.layers)
    assert archive.read(ArchiveRef(out, None), platform=AMD64, cache=fresh).digest == img.digest
    with pytest.raises(archive.ArchiveError, match="no image named localhost/other:1"):
        archive.read(ArchiveRef(out, "localhost/other:1"), platform=AMD64, cache=fresh)
    with pytest.raises(layout.PlatformMismatch):
        archive.read(ArchiveRef(out, None), platform=Platform.parse("linux/arm64"), cache=fresh)


def test_a_failed_write_leaves_the_previous_archive_as_it_was(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "a.tar"
    archive.write(make_image(cache, marker="a"), ArchiveRef(out, "localhost/demo:1"))
    before = out.read_bytes()
    good = make_image(cache, marker="b")
    wrong = tmp_path / "wrong.blob"
    wrong.write_bytes(b"\0" * good.layers[1].size)
    bad = replace(good, layers=(good.layers[0], replace(good.layers[1], path=wrong)))
    with pytest.raises(HashMismatch):
        archive.write(bad, ArchiveRef(out, "localhost/demo:1"))
    assert out.read_bytes() == before
    short = replace(good, layers=(good.layers[0], replace(good.layers[1], size=good.layers[1].size + 1)))
    with pytest.raises(HashMismatch, match="bytes"):
        archive.write(short, ArchiveRef(out, "localhost/demo:1"))
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar", "cache", "wrong.blob"]


def _legacy_archive(path: Path, *, layer_tar: bytes, diff_id: str, compress: bool) -> None:
    """A docker-save (pre-25) style archive: <id>/layer.tar, <id>.json, manifest.json."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/x"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    blob = gzip.compress(layer_tar, mtime=0) if compress else layer_tar
    files = {
        f"{sha256(config)[7:]}.json": config,
        "abc123/layer.tar": blob,
        "abc123/VERSION": b"1.0",
        "manifest.json": json.dumps(
            [{"Config": f"{sha256(config)[7:]}.json", "RepoTags": ["app:1"], "Layers": ["abc123/layer.tar"]}]
        ).encode(),
    }
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _small_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    return buf.getvalue()


@pytest.mark.parametrize("compress", [False, True])
def test_reads_the_legacy_form(tmp_path: Path, cache: Cache, compress: bool) -> None:
    layer = _small_tar()
    path = tmp_path / "legacy.tar"
    _legacy_archive(path, layer_tar=layer, diff_id=sha256(layer), compress=compress)
    # The archive's RepoTag is the short "app:1".
    img = archive.read(ArchiveRef(path, "localhost/app:1"), platform=AMD64, cache=cache)
    (got,) = img.layers
    assert got.diff_id == sha256(layer)
    if compress:
        assert got.media_type == LAYER_GZIP and got.digest == sha256(got.path.read_bytes())
    else:
        assert got.media_type == LAYER_TAR and got.digest == got.diff_id
    assert img.config.cmd == ("/x",)


def test_a_layer_that_does_not_match_its_diff_id_is_refused(tmp_path: Path, cache: Cache) -> None:
    path = tmp_path / "legacy.tar"
    _legacy_archive(path, layer_tar=_small_tar(), diff_id="sha256:" + "0" * 64, compress=True)
    with pytest.raises(HashMismatch, match="uncompressed"):
        archive.read(ArchiveRef(path, None), platform=AMD64, cache=cache)


@pytest.mark.container
def test_skopeo_inspect_agrees_with_the_oci_layout(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    tar, lay = tmp_path / "a.tar", tmp_path / "lay"
    archive.write(img, ArchiveRef(tar, "localhost/demo:1.0"))
    layout.write([img], OciRef(lay, "v1"))
    from_tar = json.loads(run([tool("skopeo"), "inspect", f"docker-archive:{tar}"]).stdout)
    from_dir = json.loads(run([tool("skopeo"), "inspect", f"oci:{lay}:v1"]).stdout)
    # A docker-archive is read as Docker schema 2 with uncompressed layers: layer digests are the diff_ids.
    assert from_tar["Layers"] == [x.diff_id for x in img.layers]
    assert from_dir["Layers"] == [x.digest for x in img.layers]
    for key in ("Architecture", "Os", "Env", "Created"):
        assert from_tar[key] == from_dir[key]
    config = run([tool("skopeo"), "inspect", "--config", "--raw", f"docker-archive:{tar}"]).stdout.encode()
    assert sha256(config) == img.config_descriptor.digest


@pytest.mark.container
def test_podman_loads_it_under_its_name_and_saves_forms_we_read(tmp_path: Path, cache: Cache) -> None:
    with Podman(tmp_path / "podman") as podman:
        _podman_round_trip(podman, tmp_path, cache)


def _podman_round_trip(podman: Podman, tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    other = make_image(cache, marker="other")
    tar = tmp_path / "a.tar"
    archive.write(img, ArchiveRef(tar, "localhost/demo:1.0"))
    assert "Loaded image: localhost/demo:1.0" in podman("load", "-i", str(tar)).stdout
    archive.write(other, ArchiveRef(tmp_path / "b.tar", None), name="other:2")
    assert "Loaded image: localhost/other:2" in podman("load", "-i", str(tmp_path / "b.tar")).stdout
    (info,) = json.loads(podman("image", "inspect", "localhost/demo:1.0").stdout)
    assert info["Digest"] == img.digest
    assert info["Id"] == img.config_descriptor.digest.removeprefix("sha256:")
    assert info["RootFS"]["Layers"] == [x.diff_id for x in img.layers]

    # podman save writes the legacy form (<diff-id>.tar layers, <id>/layer.tar links); -m: two images in one.
    saved = tmp_path / "saved.tar"
    podman("save", "-m", "-o", str(saved), "localhost/demo:1.0", "localhost/other:2")
    fresh = Cache(tmp_path / "fresh")
    back = archive.read(ArchiveRef(saved, "localhost/other:2"), platform=AMD64, cache=fresh)
    assert back.config_bytes == other.config_bytes
    assert [x.diff_id for x in back.layers] == [x.diff_id for x in other.layers]
    assert all(x.media_type == LAYER_TAR and x.digest == x.diff_id for x in back.layers)
    with pytest.raises(archive.ArchiveError, match="holds 2 images"):
        archive.read(ArchiveRef(saved, None), platform=AMD64, cache=fresh)
    validate(saved)


@pytest.mark.container
def test_skopeo_copies_both_ways(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    lay = tmp_path / "lay"
    layout.write([img], OciRef(lay, "v1"))
    sk_tar = tmp_path / "sk.tar"
    run([tool("skopeo"), "copy", f"oci:{lay}:v1", f"docker-archive:{sk_tar}:foo/bar:2"])
    back = archive.read(
        ArchiveRef(sk_tar, "docker.io/foo/bar:2"), platform=AMD64, cache=Cache(tmp_path / "c1")
    )
    assert back.config_bytes == img.config_bytes
    assert [x.diff_id for x in back.layers] == [x.diff_id for x in img.layers]
    validate(sk_tar)

    ours = tmp_path / "ours.tar"
    archive.write(img, ArchiveRef(ours, "localhost/demo:1.0"))
    sk_lay = tmp_path / "sk-lay"
    run([tool("skopeo"), "copy", f"docker-archive:{ours}", f"oci:{sk_lay}:x"])
    again = layout.read(OciRef(sk_lay, "x"), platform=AMD64, cache=Cache(tmp_path / "c2"))
    assert again.config_bytes == img.config_bytes
    assert [x.diff_id for x in again.layers] == [x.diff_id for x in img.layers]
    validate(sk_lay)
