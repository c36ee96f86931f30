"""publish(): every --to output written, checked up front, one stdout line each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.oci import archive, layout, publish
from slimline.oci.image import Image, Platform
from slimline.oci.reference import ArchiveRef, DaemonRef, OciRef, parse
from slimline.oci.validate import validate
from tests.oci_helpers import make_image


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, text: str) -> None:
        self.lines.append(f"step {text}")

    def detail(self, text: str) -> None:
        self.lines.append(f"detail {text}")

    def done(self, text: str) -> None:
        self.lines.append(f"done {text}")


def test_publishes_to_a_layout_and_an_archive(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    img = make_image(cache)
    refs = [
        parse(f"oci:{tmp_path / 'lay'}:v1", role="output"),
        parse(f"docker-archive:{tmp_path / 'a.tar'}", role="output"),
    ]
    report = Recorder()
    lines = publish.publish([img], refs, name="demo:1.0", report=report)
    assert lines == [img.digest, img.digest]
    assert report.lines[0] == f"step writing oci:{tmp_path / 'lay'}:v1"
    assert report.lines[-1].startswith("done wrote docker-archive:") and img.digest in report.lines[-1]
    validate(tmp_path / "lay")
    validate(tmp_path / "a.tar")
    amd64 = Platform.parse("linux/amd64")
    tar_ref, dir_ref = parse(f"docker-archive:{tmp_path / 'a.tar'}:demo:1.0", role="base"), refs[0]
    assert isinstance(tar_ref, ArchiveRef) and isinstance(dir_ref, OciRef)
    assert archive.read(tar_ref, platform=amd64, cache=cache).digest == img.digest
    assert layout.read(dir_ref, platform=amd64, cache=cache).digest == img.digest


def test_checks_every_output_before_writing_any(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    images = [make_image(cache), make_image(cache, platform="linux/arm64")]
    refs = [
        parse(f"oci:{tmp_path / 'lay'}:v1", role="output"),
        parse(f"docker-archive:{tmp_path / 'a.tar'}", role="output"),
    ]
    with pytest.raises(SlimlineError, match="holds one platform, but the build made 2"):
        publish.publish(images, refs, report=Recorder())
    assert not (tmp_path / "lay").exists() and not (tmp_path / "a.tar").exists()
    (digest,) = publish.publish(images, refs[:1], report=Recorder())
    index = json.loads((tmp_path / "lay" / "index.json").read_bytes())
    assert index["manifests"][0]["digest"] == digest  # the image index that lists both platforms


def test_a_base_reference_is_not_an_output(tmp_path: Path) -> None:
    img = make_image(Cache(tmp_path / "cache"))
    with pytest.raises(SlimlineError, match="cannot be an output"):
        publish.publish([img], [parse("debian:bookworm", role="base")], report=Recorder())


def test_a_registered_writer_is_used_for_its_reference_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = make_image(Cache(tmp_path / "cache"))
    seen: list[tuple[int, object, str | None]] = []

    def writer(images: Sequence[Image], ref: object, ctx: publish.Context) -> str:
        seen.append((len(images), ref, ctx.name))
        return "line"

    monkeypatch.setitem(publish.WRITERS, DaemonRef, writer)
    ref = parse("docker-daemon:app:1", role="output")
    assert publish.publish([img], [ref], name="app:1", report=Recorder()) == ["line"]
    assert seen == [(1, ref, "app:1")]
