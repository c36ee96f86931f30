"""Images to verify, and the tools to tamper with them: a base laid out as slimline's Debian
assembly lays one (users, os-release, CA bundle, dpkg records with sha256sums), builds of the
in-tree test project on it through the command line, and edits of one file in a layer of an
``oci:`` layout that keep every digest consistent (the layer blob, the manifest's descriptor,
the config's diff_id, index.json), so that only the contents' check can notice them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slimline import cli, layers
from slimline.base.debian import assemble
from slimline.base.debian.deb import Control
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci import layout, reference
from slimline.oci.image import Config, History, Image, Platform
from slimline.target import LABEL_INTERPRETER, LABEL_LIBC, LABEL_PYTHON

CERT = b"-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
PACKAGES: dict[str, dict[str, bytes]] = {
    "python3.11-minimal": {
        "usr/bin/python3.11": b"#!/bin/false\n",
        "usr/lib/python3.11/os.py": b"import sys\nsep = '/'\n",
    },
    "libc6": {"usr/lib/x86_64-linux-gnu/libc.so.6": b"GNU C Library (Debian GLIBC 2.36-9) stable release\n"},
    "ca-certificates": {"usr/share/ca-certificates/mozilla/Test_Root.crt": CERT},
}


def recorded_base(cache: Cache, dest: Path, *, platforms: tuple[str, ...] = ("linux/amd64",)) -> str:
    """A base as slimline's Debian assembly lays one, with fake packages, for ``platforms``; its
    ``oci:`` ref relative to ``dest``'s parent."""
    b = TreeBuilder()
    assemble.static_files(b, version="12.8", codename="bookworm", merged=())
    for package, files in PACKAGES.items():
        for path, data in files.items():
            b.data(path, data, mode=0o755 if "/bin/" in path else 0o644)
        control = Control(control=f"Package: {package}\nVersion: 1.0\n".encode(), md5sums=b"")
        assemble.status_entry(b, package, control, frozenset(files))
    assemble.ca_bundle(b)
    assemble.python_links(b, "3.11")
    labels = {
        LABEL_PYTHON: "3.11.2",
        LABEL_INTERPRETER: "/usr/bin/python3.11",
        LABEL_LIBC: "glibc-2.36",
        "dev.slimline.debian.suite": "bookworm",
    }
    images = [
        Image(
            platform=Platform.parse(platform),
            layers=(layers.write(b.freeze(), cache=cache),),
            config=Config(env=("PATH=/usr/bin:/bin",), labels=labels, user="65532"),
            history=(History("slimline debian:bookworm: files (3 packages)"),),
        )
        for platform in platforms
    ]
    layout.write(images, reference.OciRef(dest, "base"))
    return f"oci:{dest.name}:base"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def build(capsys: pytest.CaptureFixture[str], root: Path, base: str, out: Path, cache_dir: Path) -> str:
    code, stdout, err = run(
        capsys, "build", str(root), "--base", base, "--to", f"oci:{out}:t", "--cache-dir", str(cache_dir)
    )
    assert code == 0, err
    return stdout.strip().splitlines()[-1]


def _blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _put(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(root, digest).write_bytes(data)
    return digest


def manifest_of(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((root / "index.json").read_text())
    manifest = json.loads(_blob(root, index["manifests"][0]["digest"]).read_bytes())
    return manifest, json.loads(_blob(root, manifest["config"]["digest"]).read_bytes())


def replace_layer(root: Path, position: int, tar_bytes: bytes) -> None:
    """Put the uncompressed tar ``tar_bytes`` at ``position`` of the layout's one image, gzip'd,
    every digest that names it rewritten (blob, descriptor, diff_id, config, manifest, index)."""
    manifest, config = manifest_of(root)
    blob = gzip.compress(tar_bytes, mtime=0)
    manifest["layers"][position].update(digest=_put(root, blob), size=len(blob))
    config["rootfs"]["diff_ids"][position] = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    config_bytes = json.dumps(config).encode()
    manifest["config"].update(digest=_put(root, config_bytes), size=len(config_bytes))
    manifest_bytes = json.dumps(manifest).encode()
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=_put(root, manifest_bytes), size=len(manifest_bytes))
    (root / "index.json").write_text(json.dumps(index))


def layer_tar(root: Path, position: int) -> bytes:
    manifest, _ = manifest_of(root)
    return gzip.decompress(_blob(root, manifest["layers"][position]["digest"]).read_bytes())


def edit_file(root: Path, path: str, change: Callable[[bytes], bytes]) -> int:
    """Change the bytes of ``path`` in the topmost layer that holds it; returns that layer's position."""
    manifest, _ = manifest_of(root)
    for position in reversed(range(len(manifest["layers"]))):
        out = io.BytesIO()
        found = False
        with (
            tarfile.open(fileobj=io.BytesIO(layer_tar(root, position))) as src,
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
        ):
            for m in src:
                data = src.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
                if m.name == path and data is not None:
                    data, found = change(data), True
                    m.size = len(data)
                dst.addfile(m, io.BytesIO(data) if data is not None else None)
        if found:
            replace_layer(root, position, out.getvalue())
            return position
    raise AssertionError(f"{path} is in no layer")


def add_file(root: Path, path: str, data: bytes) -> None:
    """Add a file to the top layer."""
    manifest, _ = manifest_of(root)
    top = len(manifest["layers"]) - 1
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(layer_tar(root, top))) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for m in src:
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        info = tarfile.TarInfo(path)
        info.size = len(data)
        dst.addfile(info, io.BytesIO(data))
    replace_layer(root, top, out.getvalue())


def flip(data: bytes) -> bytes:
    """The same bytes with the last one changed."""
    return data[:-1] + bytes([data[-1] ^ 0x01])
