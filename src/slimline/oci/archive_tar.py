"""The docker-archive tar, written deterministically: the same blobs give the same bytes.

:func:`write_tar` writes members in a fixed order (``blobs/``, ``blobs/sha256/``, the blobs by
name, ``index.json``, ``manifest.json``, ``oci-layout``), each with mtime 0, owner 0:0 without
names, mode 0644 (0755 for directories), in PAX format (extended headers only where USTAR cannot
hold a value).  Layers are streamed from their files; their size and sha256 are checked while
they are copied (:func:`slimline.oci.blobs.blob_mismatch` otherwise).  The tar goes to a temp
file beside ``dest`` that is renamed over it, so ``dest`` is never half-written.  What the
blobs and the two JSON files hold is :mod:`slimline.oci.archive`'s business.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from slimline.cache.store import atomic_write
from slimline.oci import image as oci
from slimline.oci.blobs import LAYOUT_FILE, blob_mismatch, open_layer

__all__ = ["write_tar"]


def write_tar(
    dest: Path, blobs: Mapping[str, bytes | oci.Layer], index: bytes, manifest_json: bytes, *, doing: str
) -> None:
    """Write the tar ``dest``: ``blobs`` (sha256 hex -> bytes, or a layer to stream) under
    ``blobs/sha256/``, then ``index.json``, ``manifest.json`` and ``oci-layout``."""
    with atomic_write(dest) as out, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("blobs/", 0, directory=True))
        tar.addfile(_info("blobs/sha256/", 0, directory=True))
        for hexdigest in sorted(blobs):
            blob = blobs[hexdigest]
            if isinstance(blob, bytes):
                tar.addfile(_info(f"blobs/sha256/{hexdigest}", len(blob)), io.BytesIO(blob))
            else:
                _add_layer(tar, blob, f"blobs/sha256/{hexdigest}", source=doing)
        for member, data in (
            ("index.json", index),
            ("manifest.json", manifest_json),
            ("oci-layout", LAYOUT_FILE),
        ):
            tar.addfile(_info(member, len(data)), io.BytesIO(data))


def _info(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info


class _HashingReader(io.RawIOBase):
    def __init__(self, stream: BinaryIO) -> None:
        self._s = stream
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._s.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data


def _add_layer(tar: tarfile.TarFile, layer: oci.Layer, member: str, *, source: str) -> None:
    what = f"layer {layer.digest}"
    stream = open_layer(layer, doing=source)
    with stream:
        actual = os.fstat(stream.fileno()).st_size
        if actual != layer.size:
            raise blob_mismatch(
                what=what, source=str(layer.path), expected=f"{layer.size} bytes", actual=f"{actual} bytes"
            )
        reader = _HashingReader(stream)
        tar.addfile(_info(member, layer.size), reader)
    if reader.size != layer.size or f"sha256:{reader.hash.hexdigest()}" != layer.digest:
        raise blob_mismatch(
            what=what,
            source=str(layer.path),
            expected=layer.digest,
            actual=f"sha256:{reader.hash.hexdigest()}",
        )
