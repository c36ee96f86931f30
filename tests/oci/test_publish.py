"""publish(): every --to output written, checked up front, one stdout line each."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import SlimlineError
from slimline.oci import archive, layout, publish, transports
from slimline.oci.image import Image, Platform
from slimline.oci.reference import ArchiveRef, DaemonRef, OciRef, parse
from slimline.oci.validate import validate
from tests.oci.helpers import make_image


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
    lines = publish.publish([img], refs, name="demo:1.0", ctx=Context(cache, report))
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
        publish.publish(images, refs, name=None, ctx=Context(cache, Recorder()))
    assert not (tmp_path / "lay").exists() and not (tmp_path / "a.tar").exists()
    (digest,) = publish.publish(images, refs[:1], name=None, ctx=Context(cache, Recorder()))
    index = json.loads((tmp_path / "lay" / "index.json").read_bytes())
    assert index["manifests"][0]["digest"] == digest  # the image index that lists both platforms


def test_a_base_reference_is_not_an_output(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    img = make_image(cache)
    with pytest.raises(SlimlineError, match="cannot be an output"):
        publish.publish([img], [parse("debian:bookworm", role="base")], name=None, ctx=Context(cache))


def test_a_transport_in_the_table_is_used_for_its_reference_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cache")
    img = make_image(cache)
    seen: list[tuple[int, object, str | None]] = []

    def writer(images: Sequence[Image], ref: object, name: str | None, ctx: Context) -> str:
        seen.append((len(images), ref, name))
        return "line"

    monkeypatch.setitem(transports.TRANSPORTS, DaemonRef, transports.Transport(None, writer))
    ref = parse("docker-daemon:app:1", role="output")
    assert publish.publish([img], [ref], name="app:1", ctx=Context(cache, Recorder())) == ["line"]
    assert seen == [(1, ref, "app:1")]
    with pytest.raises(SlimlineError, match="cannot be a base"):
        transports.read(ref, platform=Platform.parse("linux/amd64"), ctx=Context(cache))
