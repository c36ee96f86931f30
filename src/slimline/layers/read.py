"""Layer blobs back to streams of tar members, and to in-memory trees."""

from __future__ import annotations

import contextlib
import gzip
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from slimline.errors import SlimlineError
from slimline.layers.filetree import Bytes, Entry, FileTree, Kind
from slimline.oci.image import Layer

__all__ = ["members", "read_tree", "walk"]


@contextlib.contextmanager
def members(layer: Layer) -> Iterator[tarfile.TarFile]:
    """Open a layer's blob as a streaming tar reader (members in archive order)."""
    with layer.open() as raw:
        stream: Any
        if layer.media_type.endswith("gzip") or _is_gzip(raw):
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif layer.media_type.endswith("zstd"):
            import zstandard

            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = raw
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            yield tar


def read_tree(layer: Layer) -> FileTree:
    """A layer's members as an in-memory tree (file contents held as bytes): for small layers
    that are to be written again with a few files changed.  Whiteouts are kept as files."""
    out: dict[str, Entry] = {}
    with members(layer) as tar:
        for m in tar:
            path = m.name.removeprefix("./").lstrip("/").rstrip("/")
            if not path:
                continue
            mode = m.mode & 0o7777
            if m.isreg():
                f = tar.extractfile(m)
                data = f.read() if f is not None else b""
                out[path] = Entry(path, Kind.FILE, mode, m.uid, m.gid, len(data), Bytes(data))
            elif m.isdir():
                out[path] = Entry(path, Kind.DIR, mode, m.uid, m.gid)
            elif m.issym():
                out[path] = Entry(path, Kind.SYMLINK, mode, m.uid, m.gid, target=m.linkname)
            elif m.islnk():
                out[path] = Entry(path, Kind.HARDLINK, mode, m.uid, m.gid, target=m.linkname)
            else:
                raise SlimlineError(
                    f"{path}: unsupported member type in {layer.digest}", doing="reading a layer"
                )
    return FileTree(out)


def walk(layers: Iterable[Layer]) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """Every member of ``layers`` (base first), as ``(path, member, tar)`` with ``path`` relative
    (no leading "./" or "/").  ``tar.extractfile(member)`` is valid until the next item."""
    for layer in layers:
        with members(layer) as tar:
            for member in tar:
                yield member.name.removeprefix("./").lstrip("/"), member, tar


def _is_gzip(raw: BinaryIO) -> bool:
    head = raw.read(2)
    raw.seek(0)
    return head == b"\x1f\x8b"
