"""Synthetic images for the inspect tests, written with slimline's own layer and layout writers,
and an independent reader of what a layout holds (Python's tarfile over its blobs).

:class:`World` describes each layer as plain data (path -> bytes, plus whiteouts), so a test
derives every expected figure from the same data the image was made from, never from
slimline's readers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimline import layers
from slimline.cache.store import Cache
from slimline.layers.filetree import Kind, TreeBuilder
from slimline.oci import layout
from slimline.oci.image import Config, History, Image, Platform
from slimline.oci.reference import OciRef


@dataclass
class Spec:
    files: dict[str, bytes]
    removes: tuple[str, ...] = ()  # plain whiteouts: paths of lower layers
    opaque: tuple[str, ...] = ()  # directories whose lower entries are hidden
    links: dict[str, str] = field(default_factory=dict)  # symlinks: path -> target
    hardlinks: dict[str, str] = field(default_factory=dict)  # path -> the file it links to
    created_by: str = ""


def status_stanza(name: str, version: str, *, status: str = "install ok installed", kib: int = 1) -> str:
    return (
        f"Package: {name}\nStatus: {status}\nVersion: {version}\nArchitecture: amd64\n"
        f"Installed-Size: {kib}\nDescription: {name}\n continuation line: not a field\n"
    )


def dist_info(
    site: str, name: str, version: str, files: dict[str, bytes], *, dir_name: str
) -> dict[str, bytes]:
    """A dist-info beside ``files`` (paths relative to ``site``; may start with ../), RECORD listing all."""
    info = f"{dir_name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nlong description\n".encode()
    out = {
        f"{site}/{rel}" if not rel.startswith("../") else _join(site, rel): data
        for rel, data in files.items()
    }
    out[f"{site}/{info}/METADATA"] = meta
    rows = [f"{rel},sha256=x,{len(data)}" for rel, data in files.items()]
    rows += [f"{info}/METADATA,,{len(meta)}", f"{info}/RECORD,,"]
    out[f"{site}/{info}/RECORD"] = ("\n".join(rows) + "\n").encode()
    return out


def _join(site: str, rel: str) -> str:
    parts = site.split("/")
    for part in rel.split("/"):
        if part == "..":
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def build(
    cache: Cache, specs: list[Spec], *, labels: dict[str, str] | None = None, dirs: bool = True
) -> Image:
    """An image of ``specs`` (one layer each); without ``dirs`` its layers list no directory."""
    made = []
    for spec in specs:
        tree = TreeBuilder()
        for path, data in spec.files.items():
            tree.data(path, data)
        for path, target in spec.links.items():
            tree.symlink(path, target)
        for path, target in spec.hardlinks.items():
            tree.hardlink(path, target)
        for gone in spec.removes:
            head, _, name = gone.rpartition("/")
            tree.data(f"{head}/.wh.{name}" if head else f".wh.{name}", b"")
        for d in spec.opaque:
            tree.data(f"{d}/.wh..wh..opq", b"")
        frozen = tree.freeze()
        if not dirs:
            frozen = frozen.without([e.path for e in frozen.entries() if e.kind is Kind.DIR])
        made.append(layers.write(frozen, cache=cache))
    return Image(
        platform=Platform.parse("linux/amd64"),
        layers=tuple(made),
        config=Config(
            env=("PATH=/app/.venv/bin:/usr/bin",),
            entrypoint=("/app/.venv/bin/python", "-m", "app"),
            user="65532",
            labels=labels or {},
            exposed_ports=("8000/tcp",),
        ),
        history=tuple(History(s.created_by) for s in specs),
        annotations={
            "org.opencontainers.image.base.name": "debian:bookworm",
            "org.opencontainers.image.base.digest": "sha256:" + "ab" * 32,
        },
    )


def write_layout(image: Image, path: Path, tag: str) -> str:
    layout.write([image], OciRef(path, tag), name=None)
    return f"oci:{path}:{tag}"


def final_files(specs: list[Spec]) -> dict[str, bytes]:
    """The file system a container sees, from the specs alone (whiteouts applied by hand)."""
    fs: dict[str, bytes] = {}
    for spec in specs:
        hidden = [*spec.removes, *spec.opaque]
        fs = {p: d for p, d in fs.items() if not any(p == h or p.startswith(h + "/") for h in hidden)}
        fs.update(spec.files)
    return fs


REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class Blobs:
    """A layout's image as Python's tarfile reads it: each layer's regular members (path -> size,
    sha256) in order."""

    layers: list[dict[str, tuple[int, str]]] = field(default_factory=list)
    compressed: list[int] = field(default_factory=list)


def manifest(path: Path, tag: str) -> dict[str, Any]:
    """The image manifest a layout's index tags ``tag``."""
    index = json.loads((path / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag)
    found: dict[str, Any] = json.loads(_blob(path, entry["digest"]).read_bytes())
    return found


def read_layout(path: Path, tag: str) -> Blobs:
    out = Blobs()
    for desc in manifest(path, tag)["layers"]:
        out.compressed.append(desc["size"])
        members: dict[str, tuple[int, str]] = {}
        opener = gzip.open if desc["mediaType"].endswith("gzip") else open
        with opener(_blob(path, desc["digest"]), "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for m in tar:
                if m.isreg():
                    f = tar.extractfile(m)
                    data = f.read() if f is not None else b""
                    members[m.name.removeprefix("./")] = (m.size, hashlib.sha256(data).hexdigest())
        out.layers.append(members)
    return out


def _blob(path: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return path / "blobs" / algorithm / hexdigest
