"""File trees: what a layer holds, before it is a tar.

A :class:`FileTree` is an immutable mapping from a normalised relative POSIX path
("app/.venv/bin/python", never a leading "/" or "./", never "..") to an :class:`Entry`.
File contents are not held in the tree: an entry holds a :class:`Source` that opens a
fresh binary stream each time it is asked (the caller closes it), so trees of large wheels
cost little memory.  Build trees with :class:`TreeBuilder`, which adds missing parent
directories (root-owned, 0755) and refuses paths that escape the root.
"""

from __future__ import annotations

import enum
import io
import posixpath
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Protocol

from slimline.errors import UnsafePath

__all__ = [
    "Bytes",
    "Entry",
    "FileOnDisk",
    "FileTree",
    "Kind",
    "Source",
    "TreeBuilder",
    "ZipMember",
    "ancestors",
    "normalise",
]


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


class Source(Protocol):
    """Something that can open the bytes of one file, as often as asked."""

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True, slots=True)
class Bytes:
    data: bytes

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True, slots=True)
class FileOnDisk:
    path: Path

    def open(self) -> BinaryIO:
        return self.path.open("rb")


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One member of a zip file (a wheel) on disk; read lazily."""

    archive: Path
    name: str

    def open(self) -> BinaryIO:
        """A streaming reader of the member (the caller closes it).

        The zip's central directory is read once per archive and process (see :func:`_zip`),
        not once per member: a wheel such as numpy's holds over a thousand files.
        """
        return _zip(self.archive).open(self.name)  # type: ignore[return-value]


_ZIPS: OrderedDict[tuple[Path, int, int], zipfile.ZipFile] = OrderedDict()
_ZIPS_LOCK = threading.Lock()
_ZIPS_MAX = 64


def _zip(path: Path) -> zipfile.ZipFile:
    """A shared, open :class:`zipfile.ZipFile` for ``path`` (keyed by its size and mtime too).

    ZipFile guards its shared file handle with a lock, so members may be read from several
    threads.  Evicting closes the ZipFile, which keeps its file open until the members
    already opened from it are closed.
    """
    st = path.stat()
    key = (path, st.st_mtime_ns, st.st_size)
    with _ZIPS_LOCK:
        zf = _ZIPS.get(key)
        if zf is not None:
            _ZIPS.move_to_end(key)
            return zf
        zf = zipfile.ZipFile(path)
        _ZIPS[key] = zf
        while len(_ZIPS) > _ZIPS_MAX:
            _ZIPS.popitem(last=False)[1].close()
        return zf


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in a tree.  ``mode`` holds permission bits only (including setuid/sticky)."""

    path: str
    kind: Kind
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    source: Source | None = field(default=None, compare=False)
    target: str = ""  # symlink target (as written) or hardlink target (a path in the same tree)

    def with_owner(self, uid: int, gid: int) -> Entry:
        return replace(self, uid=uid, gid=gid)


def ancestors(path: str) -> list[str]:
    """The directories above ``path`` (a normalised tree path), outermost first: ``a/b/c`` ->
    ``["a", "a/b"]``."""
    out = []
    parent = posixpath.dirname(path)
    while parent:
        out.append(parent)
        parent = posixpath.dirname(parent)
    return out[::-1]


def normalise(path: str, *, archive: str = "file tree") -> str:
    """Return ``path`` as a relative POSIX path inside the root, or raise :class:`UnsafePath`.

    Leading "/" and "./" are stripped; "a/../b" collapses to "b"; "../x" or a path that
    normalises to nothing (the root itself) is refused.
    """
    raw = path.replace("\\", "/") if "\\" in path and "/" not in path else path
    stripped = raw.lstrip("/")
    if stripped.startswith("./"):
        stripped = stripped[2:]
    norm = posixpath.normpath(stripped) if stripped else ""
    if norm in ("", ".") or norm == ".." or norm.startswith("../") or "\x00" in norm:
        raise UnsafePath(path=path, archive=archive)
    return norm


@dataclass(frozen=True, slots=True)
class FileTree:
    """An immutable set of entries keyed by path."""

    _entries: Mapping[str, Entry] = field(default_factory=dict)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def paths(self) -> Iterator[str]:
        return iter(self._entries)

    def entries(self) -> list[Entry]:
        """Entries sorted by UTF-8 path bytes; a directory sorts before what it contains."""
        return sorted(self._entries.values(), key=lambda e: _sort_key(e.path))

    def file_bytes(self) -> int:
        """The bytes of its regular files (a layer's uncompressed content, less tar headers)."""
        return sum(e.size for e in self._entries.values() if e.kind is Kind.FILE)

    def merge(self, other: FileTree) -> FileTree:
        """Entries of both; ``other`` wins where a path is in both."""
        return FileTree({**self._entries, **other._entries})

    def without(self, paths: Iterable[str]) -> FileTree:
        drop = set(paths)
        return FileTree({p: e for p, e in self._entries.items() if p not in drop})

    def payload_size(self) -> int:
        return sum(e.size for e in self._entries.values() if e.kind is Kind.FILE)


def _sort_key(path: str) -> tuple[bytes, ...]:
    return tuple(part.encode() for part in path.split("/"))


class TreeBuilder:
    """Collects entries, then :meth:`freeze` gives a :class:`FileTree`.  Later adds replace earlier ones."""

    def __init__(self, *, uid: int = 0, gid: int = 0, archive: str = "file tree") -> None:
        self._entries: dict[str, Entry] = {}
        self._uid = uid
        self._gid = gid
        self._archive = archive

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def _parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        missing: list[str] = []
        while parent and parent not in self._entries:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for p in reversed(missing):
            self._entries[p] = Entry(p, Kind.DIR, 0o755, self._uid, self._gid)

    def _put(self, entry: Entry) -> None:
        self._parents(entry.path)
        self._entries[entry.path] = entry

    def add(self, entry: Entry) -> None:
        """Add a ready entry (its path is normalised and checked)."""
        self._put(replace(entry, path=normalise(entry.path, archive=self._archive)))

    def file(self, path: str, source: Source, size: int, *, mode: int = 0o644) -> None:
        p = normalise(path, archive=self._archive)
        self._put(Entry(p, Kind.FILE, mode, self._uid, self._gid, size, source))

    def data(self, path: str, data: bytes, *, mode: int = 0o644) -> None:
        self.file(path, Bytes(data), len(data), mode=mode)

    def dir(self, path: str, *, mode: int = 0o755) -> None:
        p = normalise(path, archive=self._archive)
        self._put(Entry(p, Kind.DIR, mode, self._uid, self._gid))

    def symlink(self, path: str, target: str) -> None:
        p = normalise(path, archive=self._archive)
        self._put(Entry(p, Kind.SYMLINK, 0o777, self._uid, self._gid, target=target))

    def hardlink(self, path: str, target: str) -> None:
        p = normalise(path, archive=self._archive)
        t = normalise(target, archive=self._archive)
        self._put(Entry(p, Kind.HARDLINK, 0o644, self._uid, self._gid, target=t))

    def remove(self, path: str) -> None:
        self._entries.pop(path, None)

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def freeze(self) -> FileTree:
        return FileTree(dict(self._entries))
