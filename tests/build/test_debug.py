"""The debug variant: busybox's applets read from its binary, the layer made from a ``.deb``,
the variant's layers shared with the image, debug outputs named, and the whole path (full build,
memo) in-process on a synthetic base with the busybox layer's pin served from the cache."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from slimline import cli, layers
from slimline.build import debug
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.layers.filetree import Kind
from slimline.oci import layout, reference, validate
from slimline.oci.image import Platform
from slimline.oci.reference import ArchiveRef, DaemonRef, OciRef, RegistryRef
from slimline.project.settings import DebianSettings
from tests.artifacts.helpers import LocalIndex
from tests.base.debian.helpers import Member, make_deb
from tests.build.helpers import make_base, write_project

NAMES = [b"[", b"[[", b"ash", b"busybox", b"cat", b"ls", b"sh"]


def _binary(names: list[bytes] = NAMES) -> bytes:
    """A stand-in for busybox: code bytes, then the applet name table as busybox lays it out."""
    return b"\x7fELF\x02\x01" + bytes(range(200)) + b" " + b"\0".join(names) + b"\0\0/var/log/wtmp\0-/bin\0"


def _deb(tmp_path: Path, binary: bytes, where: str = "./usr/bin/busybox") -> Path:
    members = [
        Member("./usr", "dir", mode=0o755),
        Member("./usr/bin", "dir", mode=0o755),
        Member("./bin", "dir"),
    ]
    members += [
        Member(where, data=binary, mode=0o755),
        Member("./usr/share/doc/busybox-static/copyright", data=b"c"),
    ]
    return make_deb(tmp_path / "busybox-static.deb", members)


def test_applets_are_read_from_the_name_table() -> None:
    assert debug.applets(_binary()) == [n.decode() for n in NAMES]
    assert debug.applets(b"\x7fELF no table here") == []


@pytest.mark.parametrize("where", ["./usr/bin/busybox", "./bin/busybox"])
def test_the_layer_holds_busybox_and_a_link_per_applet(tmp_path: Path, where: str) -> None:
    tree = debug.busybox_tree(_deb(tmp_path, _binary(), where))
    entries = {e.path: e for e in tree.entries()}
    assert set(entries) == {"busybox", *(f"busybox/{n.decode()}" for n in NAMES if n != b"busybox")} | {
        "busybox/busybox"
    }
    binary = entries["busybox/busybox"]
    assert (binary.kind, binary.mode, binary.uid, binary.size) == (Kind.FILE, 0o755, 0, len(_binary()))
    assert entries["busybox/sh"].kind is Kind.SYMLINK and entries["busybox/sh"].target == "busybox"


def test_a_busybox_without_sh_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SlimlineError, match="no sh applet"):
        debug.busybox_tree(_deb(tmp_path, _binary([b"[", b"[[", b"cat"])))


def test_debug_outputs_are_named_beside_the_plain_ones(tmp_path: Path) -> None:
    assert debug.debug_ref(OciRef(tmp_path, "1.0")) == OciRef(tmp_path, "1.0-debug")
    assert debug.debug_ref(OciRef(tmp_path)) == OciRef(tmp_path, "debug")
    assert debug.debug_ref(RegistryRef("127.0.0.1:5000", "app", "v1")) == RegistryRef(
        "127.0.0.1:5000", "app", "v1-debug"
    )
    assert debug.debug_ref(DaemonRef("docker.io/library/app:v1")) == DaemonRef(
        "docker.io/library/app:v1-debug"
    )
    archive = debug.debug_ref(ArchiveRef(tmp_path / "app.tar", "localhost/app:v1"))
    assert archive == ArchiveRef(tmp_path / "app-debug.tar", "localhost/app:v1-debug")
    assert debug.debug_name("app:1.0") == "app:1.0-debug"
    assert debug.debug_name("127.0.0.1:5000/app") == "127.0.0.1:5000/app:latest-debug"


def _seed_pin(cache: Cache, tmp_path: Path) -> str:
    """The busybox layer made from a generated .deb and pinned as a build would pin the
    archive's (so the in-process build needs no archive); returns the layer's digest."""
    layer = layers.write(
        debug.busybox_tree(_deb(tmp_path, _binary())), cache=cache, compression=layers.Compression("gzip", 1)
    )
    settings = replace(DebianSettings().for_image(), packages=(debug.PACKAGE,), exclude=())
    key = debug._pin_key(
        debug.DEFAULT_SUITE, Platform.parse("linux/amd64"), settings, layers.Compression("gzip", 1)
    )
    cache.write_meta(
        keys.DEBIAN_PINS, key, json.dumps({"layer": layers.record(layer), "pinned_at": time.time()}).encode()
    )
    return layer.digest


def _build(
    root: Path, base: str, out: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    argv = [
        "build",
        str(root),
        "--base",
        base,
        "--to",
        f"oci:{out}:t",
        "--cache-dir",
        str(cache_dir),
        "--debug",
    ]
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.strip().splitlines()


def test_the_debug_image_is_the_image_plus_one_layer(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    cache = Cache(cache_dir)
    base = make_base(cache, tmp_path / "base")
    busybox = _seed_pin(cache, tmp_path)
    root = write_project(tmp_path / "proj", index.url, package=True)
    out = tmp_path / "out"

    plain, debugged = _build(root, base, out, cache_dir, capsys)
    validate.validate(out)
    amd64 = Platform.parse("linux/amd64")
    image = layout.read(OciRef(out, "t"), platform=amd64, cache=cache)
    variant = layout.read(OciRef(out, "t-debug"), platform=amd64, cache=cache)
    assert (image.digest, variant.digest) == (plain, debugged)
    assert [la.digest for la in variant.layers] == [*(la.digest for la in image.layers), busybox]
    env = dict(e.split("=", 1) for e in variant.config.env)
    assert env["PATH"] == dict(e.split("=", 1) for e in image.config.env)["PATH"] + ":/busybox"
    assert variant.config.entrypoint == image.config.entrypoint and variant.config.user == image.config.user

    # the memo's rebuild after an edit and a full build agree on both images
    source = root / "hello_app" / "__init__.py"
    source.write_text(source.read_text() + "# edited\n")
    edited = _build(root, base, out, cache_dir, capsys)
    assert edited[1] != debugged
    monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
    assert _build(root, base, out, cache_dir, capsys) == edited
    reference.parse(f"oci:{out}:t-debug", role="base")  # the tag is a valid reference
