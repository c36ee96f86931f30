"""One pass over an image's layers: what each layer holds, and the final file system.

Contract of :func:`scan`: each layer blob is decompressed and streamed once
(:func:`slimline.layers.read.final_files`, the one reader that applies whiteouts), base first.
What is kept: one :class:`Member` per tar member that is not a whiteout (path, kind, size and,
with ``hashes``, the sha256 of a regular file's bytes, hashed as they stream), the final file
system, and the bytes of the few small files the package tables need (dist-info ``RECORD``,
``METADATA`` and slim mode's ``SLIMLINE-DROPPED``, dpkg records).  Memory is bounded: at most
:data:`MAX_MEMBERS` members in all layers, and :func:`final_files`'s own caps on paths and on the
bytes held.

Sizes are the tar headers' (a regular file's content bytes); hard links, directories and
symlinks count 0 bytes.  A final path's layer (:attr:`Scan.origin`) is the last layer that has a
member at that path: a later whiteout or opaque directory would have removed it from the final
file system, so the last member is the one a container sees.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from slimline.cache.store import CHUNK
from slimline.layers.filetree import Kind
from slimline.layers.read import FinalEntry, TooLarge, final_files
from slimline.oci.image import Image, Layer
from slimline.trees.slim import DROPPED

__all__ = [
    "MAX_MEMBERS",
    "MAX_WANTED_FILE",
    "LayerScan",
    "Member",
    "Scan",
    "files",
    "layer_history",
    "scan",
    "wanted",
]

MAX_MEMBERS = 2_000_000  # tar members kept for all layers together (about 150 bytes each)
MAX_WANTED_FILE = 64 << 20  # a dpkg status file or RECORD larger than this is not read

_DPKG = "var/lib/dpkg/"


class Member(NamedTuple):
    path: str  # relative, no leading "/"
    kind: Kind | None  # None: a device node or a fifo
    size: int  # a regular file's bytes; 0 for every other kind
    digest: str = ""  # "sha256:<hex>" of a regular file's bytes, when hashed


@dataclass(frozen=True)
class LayerScan:
    index: int  # 1-based, base first
    layer: Layer
    created_by: str  # the config history's entry for this layer ("" when it has none)
    members: tuple[Member, ...]

    @property
    def unpacked(self) -> int:
        """The bytes of its regular files (what unpacking it writes, without metadata)."""
        return sum(m.size for m in self.members)


@dataclass(frozen=True)
class Scan:
    layers: tuple[LayerScan, ...]
    final: Mapping[str, FinalEntry]
    origin: Mapping[str, int] = field(default_factory=dict)  # final path -> 1-based layer index
    digests: Mapping[str, str] = field(default_factory=dict)  # final regular file -> sha256 (hashes)

    @property
    def unpacked(self) -> int:
        return sum(layer.unpacked for layer in self.layers)

    @property
    def final_size(self) -> int:
        """The bytes of the final file system's regular files (hard links not counted again)."""
        return sum(e.size for e in self.final.values() if e.kind is Kind.FILE)


def wanted(path: str) -> bool:
    """The files whose bytes the package tables read."""
    if path.startswith(_DPKG):
        rest = path[len(_DPKG) :]
        return (
            rest == "status"
            or rest.startswith("status.d/")
            or (rest.startswith("info/") and rest.endswith(".list"))
        )
    head, _, name = path.rpartition("/")
    return head.endswith(".dist-info") and name in ("RECORD", "METADATA", DROPPED)


def layer_history(image: Image) -> list[str]:
    """Each layer's ``created_by`` from the config history (entries marked ``empty_layer``
    made no layer); "" for layers the history does not cover."""
    said = [h.created_by for h in image.history if not h.empty_layer]
    return [said[i] if i < len(said) else "" for i in range(len(image.layers))]


class _Collector:
    def __init__(self, count: int, *, hashes: bool) -> None:
        self.members: list[list[Member]] = [[] for _ in range(count)]
        self.hashes = hashes
        self.total = 0

    def __call__(self, index: int, entry: FinalEntry, m: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        self.total += 1
        if self.total > MAX_MEMBERS:
            raise TooLarge(f"the image's layers hold more than {MAX_MEMBERS} entries", path=entry.path)
        size = m.size if m.isreg() else 0
        digest = ""
        if self.hashes and m.isreg():
            digest = _hash(entry, m, tar)
        self.members[index].append(Member(entry.path, entry.kind, size, digest))


def _hash(entry: FinalEntry, m: tarfile.TarInfo, tar: tarfile.TarFile) -> str:
    h = hashlib.sha256()
    if entry.data is not None:
        h.update(entry.data)
    else:
        f = tar.extractfile(m)
        while f is not None and (chunk := f.read(CHUNK)):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def scan(image: Image, *, hashes: bool = False) -> Scan:
    """Read ``image``'s layers once (see the module's contract)."""
    collect = _Collector(len(image.layers), hashes=hashes)
    final = final_files(image.layers, wanted=wanted, max_size=MAX_WANTED_FILE, seen=collect)
    history = layer_history(image)
    layers = tuple(
        LayerScan(i + 1, layer, history[i], tuple(collect.members[i])) for i, layer in enumerate(image.layers)
    )
    origin: dict[str, int] = {}
    digests: dict[str, str] = {}
    for layer_scan in layers:
        for m in layer_scan.members:
            if m.path in final:
                origin[m.path] = layer_scan.index
                if m.digest:
                    digests[m.path] = m.digest
                else:
                    digests.pop(m.path, None)
    return Scan(layers, final, origin, digests)


def files(scan: Scan) -> Iterator[tuple[int, Member, bool]]:
    """Every layer's regular files of more than 0 bytes, base first, as (1-based layer index,
    member, wasted): wasted when no container sees these bytes, because a later layer (or a
    later entry of the same layer) replaced or removed the path."""
    for s in scan.layers:
        last = {m.path: i for i, m in enumerate(s.members)}
        for i, m in enumerate(s.members):
            if m.kind is Kind.FILE and m.size > 0:
                yield s.index, m, scan.origin.get(m.path) != s.index or last[m.path] != i
