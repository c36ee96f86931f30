"""What :mod:`slimline.oci.validate` reads: an image's files by name, and each layer in one pass.

:class:`Dir` and :class:`Tar` give the files of a written image (an OCI layout directory, or a
docker-archive or OCI archive tar) by their names inside it: ``size(name)`` (None: absent) and
``open(name)``; in a tar, names are normalised (``./``, leading ``/``) and links inside the
archive are followed.  :func:`scan_layer` reads a layer blob once: its compression is recognised
from its first bytes (and must be the one its media type names), the uncompressed bytes are
hashed (the diff_id) while the tar stream is listed for entries that escape the root, whiteouts
that name nothing and duplicate paths.  Nothing here raises for a broken image: problems are
returned as lines for the checker to collect.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import zstandard

from slimline.cache.store import CHUNK
from slimline.oci.whiteout import is_malformed_whiteout

__all__ = ["Dir", "Source", "Tar", "scan_layer"]

_MAX_LISTED = 5  # duplicate paths named per layer


class Dir:
    """The files of an image directory (an OCI layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def size(self, name: str) -> int | None:
        p = self.root / name
        return p.stat().st_size if p.is_file() else None

    def open(self, name: str) -> BinaryIO:
        return (self.root / name).open("rb")


class Tar:
    """The regular files of an image tar, by normalised name; links inside the tar are followed."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members = {_norm(m.name): m for m in tar.getmembers()}

    def _resolve(self, name: str) -> tarfile.TarInfo | None:
        info = self.members.get(_norm(name))
        for _ in range(8):  # follow links inside the archive
            if info is None or info.isfile():
                return info
            if not (info.issym() or info.islnk()):
                return None
            base = posixpath.dirname(info.name) if info.issym() else ""
            info = self.members.get(_norm(posixpath.join(base, info.linkname)))
        return None

    def size(self, name: str) -> int | None:
        info = self._resolve(name)
        return info.size if info is not None else None

    def open(self, name: str) -> BinaryIO:
        info = self._resolve(name)
        f = self.tar.extractfile(info) if info is not None else None
        if f is None:
            raise FileNotFoundError(name)
        return f  # type: ignore[return-value]


Source = Dir | Tar


def _norm(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Hashing(io.RawIOBase):
    def __init__(self, stream: _Readable) -> None:
        self._s = stream
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._s.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)
        self.size += n
        return n


def scan_layer(src: Source, name: str, media: str | None, where: str) -> tuple[str | None, list[str]]:
    """Read the layer blob ``name`` once: (its diff_id, None if it could not be read; the problems
    found, each starting with ``where``).  ``media`` None (a legacy archive) accepts any compression."""
    problems: list[str] = []
    with src.open(name) as raw, contextlib.ExitStack() as stack:
        head = raw.read(4)
        raw_all = io.BufferedReader(_Prefixed(head, raw), CHUNK)
        gz, zst = head.startswith(b"\x1f\x8b"), head.startswith(b"\x28\xb5\x2f\xfd")
        if media is not None:
            wants = "gzip" if media.endswith("gzip") else "zstd" if media.endswith("zstd") else "tar"
            has = "gzip" if gz else "zstd" if zst else "tar"
            if wants != has:
                problems.append(f"{where}: media type {media} but the blob is {has}")
                return None, problems
        stream: IO[bytes] | gzip.GzipFile
        if gz:
            stream = stack.enter_context(gzip.GzipFile(fileobj=raw_all, mode="rb"))
        elif zst:
            stream = stack.enter_context(
                zstandard.ZstdDecompressor().stream_reader(raw_all, read_across_frames=True)
            )
        else:
            stream = raw_all
        hashing = _Hashing(stream)
        try:
            _paths(hashing, where, problems)
            while hashing.read(CHUNK):
                pass
        except (OSError, EOFError, tarfile.TarError, zstandard.ZstdError) as err:
            problems.append(f"{where}: cannot read the layer: {err}")
            return None, problems
    return f"sha256:{hashing.hash.hexdigest()}", problems


def _paths(stream: BinaryIO | _Hashing, where: str, problems: list[str]) -> None:
    """List the tar ``stream``'s entries; problems are appended as they are met (a tar that
    breaks off keeps those found before)."""
    seen: set[str] = set()
    dups: list[str] = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in _members(tar):
            path = _norm(member.name)
            if path == ".":
                continue
            if path == ".." or path.startswith("../"):
                problems.append(f"{where}: entry {member.name!r} escapes the root")
            if is_malformed_whiteout(path):  # ".wh.", ".wh..", ".wh...": a whiteout of nothing
                problems.append(f"{where}: entry {member.name!r} is a whiteout that names no entry")
            if path in seen:
                dups.append(path)
            seen.add(path)
    if dups:
        listed = ", ".join(dups[:_MAX_LISTED]) + (" ..." if len(dups) > _MAX_LISTED else "")
        problems.append(f"{where}: {len(dups)} duplicate path(s) in the layer: {listed}")


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tar.next()) is not None:
        yield member


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream`` (what was peeked is given back)."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head, self._s = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._s.read(len(b))
        b[: len(data)] = data
        return len(data)
