"""An image's final file system read in one pass over its layers, every regular file hashed.

Contract of :func:`scan`: each layer blob is streamed once (through
:func:`slimline.layers.read.final_files`, which applies whiteouts); every regular file gets a
:class:`Digest` (sha256, size, its first 16 bytes, and for a ``.py`` file of at most
:data:`MAX_SOURCE` bytes its PEP 552 source hash, keyed by the magic number of the image's
Python (:func:`magic_of`: SipHash-1-3 since 3.11, computed here for any of those)); only the small
files the checks read whole (:func:`wanted`: RECORDs, dist-info records, dpkg records, files
slimline generates, CA certificates) are held, at most :data:`MAX_HELD` bytes together.
"""

from __future__ import annotations

import _imp
import functools
import hashlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from slimline.layers.read import FinalEntry, final_files
from slimline.oci.image import Image
from slimline.target import LABEL_PYTHON
from slimline.trees import artifactrecord
from slimline.trees.slim import DROPPED

__all__ = ["MAX_HELD", "MAX_SOURCE", "Digest", "Scan", "magic_of", "scan", "wanted"]

MAX_SOURCE = 16 << 20  # a bigger .py file gets no source hash (its .pyc is checked by name)
MAX_HELD = 256 << 20  # bytes of wanted files held at once
MAX_FILE = 64 << 20  # a wanted file bigger than this is not held (the check then reports it)
STATUS_DIR = "var/lib/dpkg/status.d/"
CERTS = "usr/share/ca-certificates/"
_CHUNK = 1 << 20
# the .pyc magic numbers of final CPython releases whose source hashes this host computes alike
# (3.11: checked against importlib; 3.13: against a Debian image's own .pyc files)
_MAGIC = {"3.11": 3495, "3.12": 3531, "3.13": 3571}


@dataclass(frozen=True, slots=True)
class Digest:
    sha256: str  # lower-case hex
    size: int
    head: bytes  # the first 16 bytes (a .pyc's header)
    source_hash: bytes | None  # importlib.util.source_hash of a .py file, else None


def magic_of(image: Image) -> bytes | None:
    """The ``.pyc`` magic number of the image's Python (from slimline's labels), when known."""
    version = image.config.labels.get(LABEL_PYTHON, "")
    xy = ".".join(version.split(".")[:2])
    if xy == f"{sys.version_info[0]}.{sys.version_info[1]}":
        return importlib.util.MAGIC_NUMBER
    number = _MAGIC.get(xy)
    return number.to_bytes(2, "little") + b"\r\n" if number is not None else None


def summarise(path: str, stream: IO[bytes], *, magic: bytes | None = None) -> Digest:
    """One file's :class:`Digest`, its bytes read in chunks (a ``.py`` file's kept until hashed
    with ``magic``'s key; without one, no source hash)."""
    h = hashlib.sha256()
    size, head = 0, b""
    keep = path.endswith(".py") and magic is not None
    parts: list[bytes] = []
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        if len(head) < 16:
            head = (head + chunk)[:16]
        size += len(chunk)
        if keep:
            parts.append(chunk)
            keep = size <= MAX_SOURCE
    key = int.from_bytes(magic or b"", "little")
    source_hash = bytes(_imp.source_hash(key, b"".join(parts))) if keep else None
    return Digest(h.hexdigest(), size, head, source_hash)


def wanted(path: str) -> bool:
    """The files the checks read whole."""
    name = path.rpartition("/")[2]
    if ".dist-info/" in path and name in ("RECORD", artifactrecord.FILENAME, "direct_url.json", DROPPED):
        return path.endswith(f".dist-info/{name}") and path.count(".dist-info/") == 1
    return (
        path.startswith(STATUS_DIR)
        or name == "pyvenv.cfg"
        or path.startswith("etc/")
        or (path.startswith(CERTS) and path.endswith(".crt"))
    )


@dataclass(frozen=True, slots=True)
class Scan:
    image: Image
    files: Mapping[str, FinalEntry]  # the final file system (every kind of entry)
    created_by: tuple[str, ...]  # per layer (base first): its history's created_by, "" if none
    magic: bytes | None = None  # the magic number source hashes were computed for

    def digest(self, path: str) -> Digest | None:
        entry = self.files.get(path)
        summary = entry.summary if entry is not None else None
        return summary if isinstance(summary, Digest) else None

    def data(self, path: str) -> bytes | None:
        entry = self.files.get(path)
        return entry.data if entry is not None else None


def scan(image: Image) -> Scan:
    magic = magic_of(image)
    files = final_files(
        image.layers,
        wanted=wanted,
        max_size=MAX_FILE,
        max_total=MAX_HELD,
        summarise=functools.partial(summarise, magic=magic),
    )
    history = [h.created_by for h in image.history if not h.empty_layer]
    created_by = tuple(history[i] if i < len(history) else "" for i in range(len(image.layers)))
    return Scan(image, files, created_by, magic)
