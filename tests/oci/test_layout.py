"""OCI image layouts: written, read back, checked with the real skopeo and umoci, replaced atomically."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest

from slimline.cache.store import Cache
from slimline.errors import HashMismatch, SlimlineError
from slimline.oci import layout, swap
from slimline.oci.image import INDEX, LAYER_TAR, MANIFEST, Layer, Platform
from slimline.oci.reference import OciRef
from slimline.oci.validate import validate
from tests.oci.helpers import FILES, make_image, tree_bytes
from tests.support import run, skopeo_inspect, tool

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def _index(path: Path) -> dict[str, object]:
    return dict(json.loads((path / "index.json").read_bytes()))


def _tags(path: Path) -> dict[str, str]:
    entries = _index(path)["manifests"]
    assert isinstance(entries, list)
    return {e["annotations"]["org.opencontainers.image.ref.name"]: e["digest"] for e in entries}


def test_write_then_read_gives_the_same_image_with_layers_in_the_cache(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    out = tmp_path / "out"
    digest = layout.write([img], OciRef(out, "v1"), name="demo:1.0")
    assert digest == img.digest
    entry = _index(out)["manifests"][0]  # type: ignore[index]
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": "v1",
        "io.containerd.image.name": "localhost/demo:v1",
    }
    assert entry["mediaType"] == MANIFEST and entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert json.loads((out / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert validate(out).manifests == (img.digest,)

    other = Cache(tmp_path / "other-cache")
    back = layout.read(OciRef(out, "v1"), platform=AMD64, cache=other)
    assert back.digest == img.digest and back.config_bytes == img.config_bytes
    for layer in back.layers:
        assert layer.path.parent == other.root / "blobs" / "sha256"
        assert layer.path.is_file()


def test_writing_the_same_image_twice_gives_identical_bytes(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    layout.write([img], OciRef(tmp_path / "a", "v1"))
    layout.write([img], OciRef(tmp_path / "b", "v1"))
    layout.write([img], OciRef(tmp_path / "b", "v1"))  # rewriting in place changes nothing
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


@pytest.mark.container
def test_skopeo_and_umoci_accept_the_layout(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    out = tmp_path / "out"
    layout.write([img], OciRef(out, "v1"))
    info = json.loads(run([tool("skopeo"), "inspect", f"oci:{out}:v1"]).stdout)
    assert info["Digest"] == img.digest
    assert info["Layers"] == [layer.digest for layer in img.layers]
    assert info["Architecture"] == "amd64" and info["Env"] == ["PATH=/usr/bin:/bin"]

    bundle = tmp_path / "bundle"
    run([tool("umoci"), "unpack", "--image", f"{out}:v1", str(bundle)])
    rootfs = bundle / "rootfs"
    for path, data in FILES.items():
        assert (rootfs / path).read_bytes() == data
    assert os.readlink(rootfs / "bin") == "usr/bin"
    assert stat.S_IMODE((rootfs / "usr/bin/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777
    config = json.loads((bundle / "config.json").read_bytes())
    assert config["process"]["args"] == ["/usr/bin/tool"] and config["process"]["cwd"] == "/app"


@pytest.mark.container
def test_two_tags_in_one_layout_and_replacing_one_keeps_the_other(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "out"
    a, b, c = (make_image(cache, marker=m) for m in ("a", "b", "c"))
    layout.write([a], OciRef(out, "v1"))
    layout.write([b], OciRef(out, "v2"))
    assert _tags(out) == {"v1": a.digest, "v2": b.digest}
    assert skopeo_inspect(f"oci:{out}:v1")["config"] == a.config_descriptor.to_json()
    assert skopeo_inspect(f"oci:{out}:v2")["config"] == b.config_descriptor.to_json()

    layout.write([c], OciRef(out, "v1"))  # v1 moves to c; a's own blobs are collected
    assert _tags(out) == {"v1": c.digest, "v2": b.digest}
    assert list(_tags(out)) == ["v1", "v2"]  # the replaced entry keeps its place
    blobs = {p.name for p in (out / "blobs" / "sha256").iterdir()}
    assert a.digest.removeprefix("sha256:") not in blobs
    assert a.layers[1].digest.removeprefix("sha256:") not in blobs
    assert a.layers[0].digest.removeprefix("sha256:") in blobs  # shared with b and c
    validate(out)
    assert skopeo_inspect(f"oci:{out}:v2")["layers"] == [layer.descriptor().to_json() for layer in b.layers]


@pytest.mark.container
def test_several_platforms_go_into_an_image_index(tmp_path: Path, cache: Cache) -> None:
    amd, arm = make_image(cache), make_image(cache, platform="linux/arm64")
    out = tmp_path / "out"
    digest = layout.write([amd, arm], OciRef(out, "multi"))
    entry = _index(out)["manifests"][0]  # type: ignore[index]
    assert entry["mediaType"] == INDEX and entry["digest"] == digest
    raw = skopeo_inspect(f"oci:{out}:multi")
    assert raw["mediaType"] == INDEX
    assert [m["platform"] for m in raw["manifests"]] == [  # type: ignore[attr-defined]
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    info = json.loads(run([tool("skopeo"), "--override-arch", "arm64", "inspect", f"oci:{out}:multi"]).stdout)
    assert info["Digest"] == digest  # skopeo reports the digest of what the tag names: the index
    assert info["Architecture"] == "arm64" and info["Layers"] == [x.digest for x in arm.layers]

    back = layout.read(OciRef(out, "multi"), platform=ARM64, cache=cache)
    assert back.digest == arm.digest
    with pytest.raises(layout.PlatformMismatch) as err:
        layout.read(OciRef(out, "multi"), platform=Platform.parse("linux/s390x"), cache=cache)
    assert err.value.available == ("linux/amd64", "linux/arm64/v8")
    layout.write([arm], OciRef(out, "arm-only"))
    with pytest.raises(layout.PlatformMismatch, match="no image for linux/amd64"):
        layout.read(OciRef(out, "arm-only"), platform=AMD64, cache=cache)


def test_choosing_by_tag_and_the_errors_when_it_is_missing_or_ambiguous(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "out"
    a = make_image(cache, marker="a")
    layout.write([a], OciRef(out, None))
    assert layout.read(OciRef(out, None), platform=AMD64, cache=cache).digest == a.digest  # the only entry
    layout.write([make_image(cache, marker="b")], OciRef(out, "v2"))
    with pytest.raises(layout.LayoutError, match="holds 2 images"):
        layout.read(OciRef(out, None), platform=AMD64, cache=cache)
    with pytest.raises(layout.LayoutError, match=r"no image tagged 'nope' \(tags: v2\)"):
        layout.read(OciRef(out, "nope"), platform=AMD64, cache=cache)
    with pytest.raises(layout.LayoutError, match="not an OCI image layout"):
        layout.read(OciRef(tmp_path, "v1"), platform=AMD64, cache=cache)


@pytest.mark.container
def test_reads_a_layout_skopeo_wrote_and_adds_a_tag_skopeo_still_reads(tmp_path: Path, cache: Cache) -> None:
    ours = tmp_path / "ours"
    img = make_image(cache)
    layout.write([img], OciRef(ours, "v1"))
    theirs = tmp_path / "theirs"
    run([tool("skopeo"), "copy", f"oci:{ours}:v1", f"oci:{theirs}:sk"])

    fresh = Cache(tmp_path / "fresh")
    back = layout.read(OciRef(theirs, "sk"), platform=AMD64, cache=fresh)
    assert [x.diff_id for x in back.layers] == [x.diff_id for x in img.layers]
    assert all(x.path.is_relative_to(fresh.root) for x in back.layers)

    other = make_image(cache, marker="other")
    layout.write([other], OciRef(theirs, "mine"))
    assert skopeo_inspect(f"oci:{theirs}:sk")["layers"] == [x.descriptor().to_json() for x in img.layers]
    assert skopeo_inspect(f"oci:{theirs}:mine")["config"] == other.config_descriptor.to_json()
    validate(theirs)


def test_a_failed_write_leaves_the_previous_layout_byte_identical(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "out"
    layout.write([make_image(cache, marker="a")], OciRef(out, "v1"))
    before = tree_bytes(out)
    good = make_image(cache, marker="b")

    # A layer whose file no longer holds the bytes its digest names: caught while copying.
    wrong = tmp_path / "wrong.blob"
    wrong.write_bytes(b"x" * good.layers[1].size)
    corrupt = replace(good, layers=(good.layers[0], replace(good.layers[1], path=wrong)))
    with pytest.raises(HashMismatch, match="expected sha256:") as err:
        layout.write([corrupt], OciRef(out, "v1"))
    assert "poetry lock" not in str(err.value) and err.value.expected == good.layers[1].digest
    assert tree_bytes(out) == before

    # A layer whose file is gone.  (Layer 1 is shared with the layout's image: it is linked from there.)
    gone = replace(good, layers=(good.layers[0], replace(good.layers[1], path=tmp_path / "missing")))
    with pytest.raises(SlimlineError, match="cannot read layer"):
        layout.write([gone], OciRef(out, "v2"))
    assert tree_bytes(out) == before

    # An interruption (Ctrl-C) while a layer is being read.
    class Interrupting(Layer):
        def open(self) -> BinaryIO:
            raise KeyboardInterrupt

    x = good.layers[1]
    interrupted = replace(
        good, layers=(good.layers[0], Interrupting(x.digest, x.diff_id, x.size, x.media_type, x.path))
    )
    with pytest.raises(KeyboardInterrupt):
        layout.write([interrupted], OciRef(out, "v1"))
    assert tree_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out", "wrong.blob"]  # no temp dirs left


def test_an_old_layout_left_mid_swap_is_restored_first(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "out"
    a = make_image(cache, marker="a")
    layout.write([a], OciRef(out, "v1"))
    os.rename(out, tmp_path / ".out.slimline-old-12345")  # as if killed between the two renames
    (tmp_path / ".out.slimline-new-abcd").mkdir()  # and an unfinished new layout
    b = make_image(cache, marker="b")
    layout.write([b], OciRef(out, "v2"))
    assert _tags(out) == {"v1": a.digest, "v2": b.digest}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]


def test_without_renameat2_the_two_rename_swap_gives_the_same_result(
    tmp_path: Path, cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_image(cache, marker="a"), make_image(cache, marker="b")
    layout.write([a], OciRef(tmp_path / "x", "v1"))
    layout.write([b], OciRef(tmp_path / "x", "v2"))
    monkeypatch.setattr(swap, "exchange", lambda new, dest: False)  # a kernel or filesystem without it
    layout.write([a], OciRef(tmp_path / "y", "v1"))
    layout.write([b], OciRef(tmp_path / "y", "v2"))
    assert tree_bytes(tmp_path / "x") == tree_bytes(tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "x", "y"]


def test_refuses_to_replace_what_is_not_a_layout(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    busy = tmp_path / "src"
    busy.mkdir()
    (busy / "keep.py").write_text("precious")
    with pytest.raises(layout.LayoutError, match="not an OCI image layout; refusing"):
        layout.write([img], OciRef(busy, "v1"))
    assert (busy / "keep.py").read_text() == "precious"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(layout.LayoutError, match="not a directory"):
        layout.write([img], OciRef(afile, "v1"))
    empty = tmp_path / "empty"
    empty.mkdir()
    layout.write([img], OciRef(empty, "v1"))
    validate(empty)


def test_extra_files_in_a_layout_survive_a_write(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "out"
    layout.write([make_image(cache, marker="a")], OciRef(out, "v1"))
    (out / "README").write_text("kept")
    layout.write([make_image(cache, marker="b")], OciRef(out, "v2"))
    assert (out / "README").read_text() == "kept"


def test_read_verifies_blobs(tmp_path: Path, cache: Cache) -> None:
    out = tmp_path / "out"
    img = make_image(cache, compression=None)
    layout.write([img], OciRef(out, "v1"))
    blob = out / "blobs" / "sha256" / img.layers[1].digest.removeprefix("sha256:")
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(HashMismatch, match=r"layer 2 .* expected sha256:"):
        layout.read(OciRef(out, "v1"), platform=AMD64, cache=Cache(tmp_path / "fresh"))
    assert not any((tmp_path / "fresh" / "blobs" / "sha256").glob(img.layers[1].digest[7:]))


def test_uncompressed_layers_round_trip(tmp_path: Path, cache: Cache) -> None:
    from slimline.layers.compress import Compression

    img = make_image(cache, compression=Compression("none"))
    assert all(x.media_type == LAYER_TAR and x.digest == x.diff_id for x in img.layers)
    layout.write([img], OciRef(tmp_path / "out", "v1"))
    validate(tmp_path / "out")
