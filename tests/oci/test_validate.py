"""validate(): every problem in a broken layout or archive is found and listed."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.oci import archive, layout
from slimline.oci.image import DOCKER_LAYER_GZIP, LAYER_GZIP, Image, Layer
from slimline.oci.reference import ArchiveRef, OciRef
from slimline.oci.validate import ValidationError, validate
from tests.oci.helpers import make_image, sha256


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def _problems(path: Path, *, deep: bool = True) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate(path, deep=deep)
    assert str(info.value).count("\n    - ") == len(info.value.problems)  # each problem is listed
    return list(info.value.problems)


def _raw_layer(
    cache: Cache, tar_bytes: bytes, *, media_type: str = LAYER_GZIP, compress: bool = True
) -> Layer:
    blob = gzip.compress(tar_bytes, mtime=0) if compress else tar_bytes
    hexdigest, size = cache.put_stream(io.BytesIO(blob))
    return Layer(f"sha256:{hexdigest}", sha256(tar_bytes), size, media_type, cache.blob_path(hexdigest))


def _tar(*names: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def _with_layer(img: Image, layer: Layer) -> Image:
    return replace(img, layers=(*img.layers, layer), history=(*img.history, img.history[0]))


def test_a_good_layout_passes_and_says_what_it_checked(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    layout.write([img], OciRef(tmp_path / "out", "v1"))
    checked = validate(tmp_path / "out")
    assert checked.manifests == (img.digest,)
    assert checked.blobs == 4 and checked.layers == 2


def test_a_corrupted_blob_is_caught(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    out = tmp_path / "out"
    layout.write([img], OciRef(out, "v1"))
    blob = out / "blobs" / "sha256" / img.layers[1].digest[7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    (problem,) = _problems(out)
    assert f"blob {img.layers[1].digest} has sha256:" in problem and "layers[1]" in problem

    blob.write_bytes(bytes(data[:-1]))
    (problem,) = _problems(out)
    assert f"has {len(data) - 1} bytes, the descriptor says {len(data)}" in problem

    blob.unlink()
    (problem,) = _problems(out)
    assert "is missing" in problem


def test_diff_ids_that_do_not_match_the_layers(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    wrong = replace(img.layers[1], diff_id="sha256:" + "0" * 64)
    out = tmp_path / "out"
    layout.write([replace(img, layers=(img.layers[0], wrong))], OciRef(out, "v1"))
    (problem,) = _problems(out)
    assert f"uncompressed layer has {img.layers[1].diff_id}, the config's diff_id is sha256:000" in problem
    assert validate(out, deep=False).layers == 0  # not deep: blobs only

    tar = tmp_path / "a.tar"
    archive.write(replace(img, layers=(img.layers[0], wrong)), ArchiveRef(tar, "localhost/a:1"))
    problems = _problems(tar)  # the layer is reached from index.json and from manifest.json
    assert [p.split()[0] for p in problems] == ["index.json", "manifest.json[0]"]
    assert all("the config's diff_id is sha256:000" in p for p in problems)


def test_duplicate_paths_and_wrong_media_types(tmp_path: Path, cache: Cache) -> None:
    img = make_image(cache)
    dup = _raw_layer(cache, _tar("a.txt", "./b/c", "a.txt", "b/c"))
    plain = _raw_layer(cache, _tar("d.txt"), compress=False)  # an uncompressed tar, labelled gzip
    docker = replace(_raw_layer(cache, _tar("e.txt")), media_type=DOCKER_LAYER_GZIP)
    out = tmp_path / "out"
    layout.write([_with_layer(_with_layer(_with_layer(img, dup), plain), docker)], OciRef(out, "v1"))
    problems = _problems(out)
    assert len(problems) == 3
    assert "2 duplicate path(s) in the layer: a.txt, b/c" in problems[0]
    assert f"media type {LAYER_GZIP} but the blob is tar" in problems[1]
    assert (
        f"media type {DOCKER_LAYER_GZIP} does not belong in a application/vnd.oci.image.manifest"
        in problems[2]
    )


def test_archive_problems(tmp_path: Path, cache: Cache) -> None:
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        }
    ).encode()
    files = {
        "cfg.json": config,
        "manifest.json": json.dumps(
            [{"Config": "cfg.json", "RepoTags": ["app:1", "Bad Name"], "Layers": ["missing/layer.tar"]}]
        ).encode(),
    }
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    problems = _problems(path)
    assert len(problems) == 3
    assert "'app:1' is not fully qualified (docker.io/library/app:1?)" in problems[0]
    assert "'Bad Name' is not an image name" in problems[1]
    assert "missing/layer.tar" in problems[2] and "missing from the archive" in problems[2]


def test_not_an_image_at_all(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    assert "neither an OCI layout" in _problems(tmp_path / "x")[0]
    (tmp_path / "y").write_text("not a tar")
    assert "not a directory or a readable tar" in _problems(tmp_path / "y")[0]
