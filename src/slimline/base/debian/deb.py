"""Reading ``.deb`` files in pure Python: the ``ar`` container, ``control.tar``, ``data.tar``.

A ``.deb`` is an ``ar`` archive holding ``debian-binary``, ``control.tar.*`` and
``data.tar.*`` (xz, zstd, gzip, bzip2 or none).  :func:`unpack` reads ``data.tar``
(:func:`read_data`; :func:`prefetch` does that for many packages on worker threads) and
installs it into a :class:`slimline.layers.filetree.TreeBuilder` (:func:`install`):

* every member path is normalised; one that escapes the root (``../x``) or lies below a
  symlink already in the tree is refused (:class:`slimline.errors.UnsafePath`, :class:`DebError`);
* hard links become copies of their target (layers never need cross-layer links);
* setuid/setgid bits are dropped; device nodes and FIFOs are skipped and listed;
* ``rewrite`` maps each path (merged-/usr: ``lib/x`` -> ``usr/lib/x``; returning ``None``
  skips the entry) and ``keep`` decides what is installed (docs, man pages ... are not).
  A symlink that is moved keeps pointing at the same file.

File contents are read into memory (a package's ``data.tar`` is decompressed whole; see
:func:`read_data`).
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import os
import posixpath
import tarfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import zstandard

from slimline.base.debian.errors import DebError
from slimline.errors import UnsafePath
from slimline.layers.filetree import Bytes, Entry, Kind, TreeBuilder, normalise

__all__ = [
    "ArMember",
    "Control",
    "Member",
    "Unpacked",
    "ar_members",
    "install",
    "open_member",
    "prefetch",
    "read_control",
    "read_data",
    "unpack",
]

AR_MAGIC = b"!<arch>\n"
_HEADER = 60


@dataclass(frozen=True, slots=True)
class ArMember:
    name: str
    offset: int  # of the data, from the start of the file
    size: int


def ar_members(f: BinaryIO, *, package: str) -> list[ArMember]:
    """The members of an ``ar`` archive (common/GNU format), in order.  ``f`` must be seekable."""
    if f.read(len(AR_MAGIC)) != AR_MAGIC:
        raise DebError(package, "not an ar archive (bad magic)")
    out: list[ArMember] = []
    pos = len(AR_MAGIC)
    while True:
        f.seek(pos)
        header = f.read(_HEADER)
        if not header:
            return out
        if len(header) < _HEADER or header[58:60] != b"`\n":
            raise DebError(package, f"truncated or corrupt ar member header at byte {pos}")
        name = header[0:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(package, f"bad ar member size at byte {pos}") from None
        start = pos + _HEADER
        end = f.seek(0, io.SEEK_END)
        if start + size > end:
            raise DebError(package, f"ar member {name!r} runs past the end of the file")
        out.append(ArMember(name=name, offset=start, size=size))
        pos = start + size + (size & 1)


class _Slice(io.RawIOBase):
    """A read-only window ``[offset, offset+size)`` of a seekable file."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self._f, self._pos, self._end = f, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._end - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._pos)
        data = self._f.read(n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_member(f: BinaryIO, member: ArMember, *, package: str) -> BinaryIO:
    """A decompressed stream of a ``*.tar[.xz|.zst|.gz|.bz2]`` member."""
    raw = cast(BinaryIO, io.BufferedReader(_Slice(f, member.offset, member.size), buffer_size=1 << 16))
    name = member.name
    if name.endswith(".tar"):
        return raw
    if name.endswith(".tar.xz"):
        return cast(BinaryIO, lzma.LZMAFile(raw))
    if name.endswith(".tar.zst"):
        return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    if name.endswith(".tar.gz"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if name.endswith(".tar.bz2"):
        return cast(BinaryIO, bz2.BZ2File(raw))
    raise DebError(package, f"unsupported compression of member {name!r}")


def _find(members: list[ArMember], stem: str, *, package: str) -> ArMember:
    for m in members:
        if m.name == stem or m.name.startswith(stem + "."):
            return m
    raise DebError(package, f"no {stem} member (members: {', '.join(m.name for m in members)})")


def _tar_errors(package: str) -> tuple[type[BaseException], ...]:
    return (tarfile.TarError, lzma.LZMAError, zstandard.ZstdError, EOFError, OSError)


@contextmanager
def _member_tar(path: Path, prefix: str, *, package: str) -> Iterator[tarfile.TarFile]:
    """The ``.deb``'s ``control.tar*`` or ``data.tar*`` as a streaming tar reader.

    Read errors raised while the caller iterates are reported as :class:`DebError` naming the
    member; :class:`UnsafePath` passes through unchanged.
    """
    with path.open("rb") as f:
        member = _find(ar_members(f, package=package), prefix, package=package)
        with (
            _read_errors(prefix, package=package),
            open_member(f, member, package=package) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            yield tar


@contextmanager
def _read_errors(prefix: str, *, package: str) -> Iterator[None]:
    """Errors of reading the member ``prefix`` (``data.tar``) raised as :class:`DebError` naming
    it; :class:`UnsafePath` and :class:`DebError` pass through unchanged."""
    try:
        yield
    except (UnsafePath, DebError):
        raise
    except _tar_errors(package) as err:
        raise DebError(package, f"cannot read {prefix}: {err}") from err


MAX_SCRIPT = 16 << 20  # a control.tar member read whole: more is refused as not a control file


@dataclass(frozen=True, slots=True)
class Control:
    control: bytes  # the package's control file, as shipped
    md5sums: bytes  # "md5  path" lines (may be empty)
    postinst: bytes = b""  # its postinst script (never run: read for its update-alternatives calls)


def read_control(path: Path, *, package: str) -> Control:
    files: dict[str, bytes] = {}
    with _member_tar(path, "control.tar", package=package) as tar:
        for info in tar:
            name = info.name.removeprefix("./")
            if info.isfile() and name in ("control", "md5sums", "postinst") and info.size <= MAX_SCRIPT:
                handle = tar.extractfile(info)
                files[name] = handle.read() if handle else b""
    if "control" not in files:
        raise DebError(package, "control.tar has no control file")
    return Control(
        control=files["control"], md5sums=files.get("md5sums", b""), postinst=files.get("postinst", b"")
    )


@dataclass(frozen=True, slots=True)
class Unpacked:
    paths: frozenset[str]  # every path installed (after rewrite), dirs included
    dropped: int  # entries left out by ``keep``
    skipped: tuple[str, ...] = field(default=())  # device nodes / FIFOs not installed


Rewrite = Callable[[str], "str | None"]


def _moved_link_target(old: str, new: str, target: str, rewrite: Rewrite) -> str:
    """Keep a relative symlink that moved from ``old`` to ``new`` pointing at the same file."""
    if target.startswith("/"):
        return target
    absolute = posixpath.normpath(posixpath.join("/", posixpath.dirname(old), target)).lstrip("/")
    if not absolute or absolute.startswith(".."):
        return target
    canonical = rewrite(absolute) or absolute
    return posixpath.relpath("/" + canonical, "/" + posixpath.dirname(new))


def _below_symlink(builder: TreeBuilder, path: str) -> str | None:
    parent = posixpath.dirname(path)
    while parent:
        entry = builder.get(parent)
        if entry is not None and entry.kind is Kind.SYMLINK:
            return parent
        parent = posixpath.dirname(parent)
    return None


Member = tuple[tarfile.TarInfo, "bytes | None"]  # a data.tar entry and, for a regular file, its bytes


MAX_DATA = 4 << 30  # bytes of a decompressed data.tar, held in memory at once: more is refused


def read_data(path: Path, *, package: str) -> list[Member]:
    """Every entry of the ``.deb``'s ``data.tar``, with regular files' bytes: the decompression
    half of :func:`unpack`, which needs no tree and so runs on any thread (xz, zstd and gzip
    decompression release the GIL).

    The ``data.tar`` is decompressed whole (at most :data:`MAX_DATA` bytes, else
    :class:`DebError`) and its entries are read from memory: one pass of the decompressor
    instead of many small reads through a stream reader's buffers, which took a sixth of the
    time of unpacking a builder's packages.  A tar that ends inside a file is refused."""
    with path.open("rb") as f:
        member = _find(ar_members(f, package=package), "data.tar", package=package)
        with _read_errors("data.tar", package=package):
            return _entries(_decompressed(f, member, package=package), package=package)


def _decompressed(f: BinaryIO, member: ArMember, *, package: str) -> bytes:
    """``member`` (a ``*.tar[.xz|...]``) decompressed, at most :data:`MAX_DATA` bytes."""
    if member.name.endswith(".tar.xz"):  # what dpkg-deb writes: one xz stream, in one call
        f.seek(member.offset)
        decompressor = lzma.LZMADecompressor()
        raw = decompressor.decompress(f.read(member.size), max_length=MAX_DATA + 1)
        if decompressor.eof and not decompressor.unused_data.strip(b"\0"):  # allowed: padding
            return raw
        if len(raw) > MAX_DATA:
            raise _too_large(package)
        # several streams one after the other, or a truncated one: the stream reader tells which
    chunks: list[bytes] = []
    size = 0
    with open_member(f, member, package=package) as stream:
        while chunk := stream.read(1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_DATA:
                raise _too_large(package)
    return b"".join(chunks)


def _too_large(package: str) -> DebError:
    return DebError(package, f"its data.tar holds more than {MAX_DATA} bytes")


def _entries(raw: bytes, *, package: str) -> list[Member]:
    out: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar:
            data = None
            if info.isreg():
                if info.issparse():
                    handle = tar.extractfile(info)
                    data = handle.read() if handle else b""
                else:
                    data = raw[info.offset_data : info.offset_data + info.size]
                if len(data) != info.size:
                    raise DebError(package, f"its data.tar ends inside {info.name!r}")
            out.append((info, data))
    return out


def prefetch(debs: Sequence[tuple[str, Path]], *, workers: int = 0) -> Iterator[tuple[str, list[Member]]]:
    """``(package, read_data(path))`` for each of ``debs`` in order, decompressed ``workers`` at a
    time (default: one per core, at most 4) and at most ``workers + 1`` ahead of the caller, so
    memory holds a few packages' files beyond the tree being built."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: deque[tuple[str, Future[list[Member]]]] = deque()
    rest = iter(debs)
    try:
        for name, path in itertools.islice(rest, workers + 1):
            pending.append((name, pool.submit(read_data, path, package=name)))
        while pending:
            name, future = pending.popleft()
            following = next(rest, None)
            if following is not None:
                pending.append((following[0], pool.submit(read_data, following[1], package=following[0])))
            yield name, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def unpack(
    path: Path,
    builder: TreeBuilder,
    *,
    package: str,
    keep: Callable[[str], bool] = lambda _p: True,
    rewrite: Rewrite = lambda p: p,
) -> Unpacked:
    """Install the ``data.tar`` of the ``.deb`` at ``path`` into ``builder`` (see the module contract)."""
    return install(read_data(path, package=package), builder, package=package, keep=keep, rewrite=rewrite)


def install(
    members: Iterable[Member],
    builder: TreeBuilder,
    *,
    package: str,
    keep: Callable[[str], bool] = lambda _p: True,
    rewrite: Rewrite = lambda p: p,
) -> Unpacked:
    """Install a package's ``data.tar`` entries (:func:`read_data`) into ``builder``."""
    archive = f"{package}.deb"
    installed: set[str] = set()
    contents: dict[str, Bytes] = {}
    dropped = 0
    skipped: list[str] = []
    for info, data in members:
        if info.name in (".", "./", "/"):
            continue
        old = normalise(info.name, archive=archive)
        new = rewrite(old)
        if new is None:
            continue
        if not keep(new):
            dropped += 1
            continue
        link = _below_symlink(builder, new)
        if link is not None:
            raise DebError(package, f"entry {info.name!r} lies below the symlink /{link}")
        mode = info.mode & 0o7777
        if info.isdir():
            builder.add(Entry(new, Kind.DIR, mode, info.uid, info.gid))
        elif info.isreg():
            src = Bytes(data or b"")
            contents[new] = src
            builder.add(Entry(new, Kind.FILE, mode & ~0o6000, info.uid, info.gid, info.size, src))
        elif info.issym():
            target = _moved_link_target(old, new, info.linkname, rewrite) if new != old else info.linkname
            builder.add(Entry(new, Kind.SYMLINK, 0o777, info.uid, info.gid, target=target))
        elif info.islnk():
            linked = rewrite(normalise(info.linkname, archive=archive))
            src_of = contents.get(linked or "")
            if src_of is None:
                raise DebError(
                    package,
                    f"hard link {info.name!r} to {info.linkname!r}, "
                    "which is not an installed file of this package",
                )
            builder.add(Entry(new, Kind.FILE, mode & ~0o6000, info.uid, info.gid, len(src_of.data), src_of))
        else:
            skipped.append(new)
            continue
        installed.add(new)
    return Unpacked(paths=frozenset(installed), dropped=dropped, skipped=tuple(skipped))
