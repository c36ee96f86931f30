"""File trees to reproducible layer blobs.

Contract of :func:`write`: the uncompressed tar (hence the ``diff_id``) depends only on the
tree and on ``mtime``: entries sorted by path bytes with parents first, PAX format, every
mtime set to ``mtime``, numeric owners with empty user/group names, no atime/ctime/xattrs.
The compressed blob is also a pure function of those plus the compression settings on a
given zlib/zstd build (gzip header: no file name, mtime 0; see :mod:`slimline.layers.compress`).
The blob is hashed while it is streamed into the cache's blob store and appears there atomically.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
from typing import BinaryIO

from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.layers.compress import Compression, Sink
from slimline.layers.filetree import Entry, FileTree, Kind
from slimline.oci.image import Layer
from slimline.report import Reporter, Ticker, progress

__all__ = ["FORMAT_VERSION", "write"]

FORMAT_VERSION = "3"  # bump when the bytes written for the same tree change (2, 3: block-parallel gzip)


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mtime = mtime
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mode = entry.mode
    if entry.kind is Kind.FILE:
        info.type = tarfile.REGTYPE
        info.size = entry.size
    elif entry.kind is Kind.DIR:
        info.type = tarfile.DIRTYPE
    elif entry.kind is Kind.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.type = tarfile.LNKTYPE
        info.linkname = entry.target
    return info


def _write_tar(tree: FileTree, sink: Sink, *, mtime: int, bar: Ticker) -> None:
    with tarfile.open(
        fileobj=sink,
        mode="w|",
        format=tarfile.PAX_FORMAT,  # type: ignore[call-overload]
        encoding="utf-8",
        bufsize=1 << 16,
    ) as tar:
        for entry in tree.entries():
            info = _tarinfo(entry, mtime)
            if entry.kind is Kind.FILE:
                if entry.source is None:
                    raise ValueError(f"file entry {entry.path} has no source")
                with entry.source.open() as stream:
                    tar.addfile(info, _Exact(stream, entry.size, entry.path))
                bar.advance(entry.size)
            else:
                tar.addfile(info)


class _Exact(io.RawIOBase):
    """Reads exactly ``size`` bytes of ``stream``; a shorter source is an error, not a silent pad."""

    def __init__(self, stream: BinaryIO, size: int, path: str) -> None:
        self._s, self._left, self._path = stream, size, path

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if n < 0 else min(n, self._left)
        data = self._s.read(want)
        while len(data) < want:  # a short read is not the end: the end is an empty read
            more = self._s.read(want - len(data))
            if not more:
                raise SlimlineError(
                    f"{self._path}: source ended {self._left - len(data)} bytes early",
                    doing="writing a layer",
                )
            data += more
        self._left -= len(data)
        return data


def write(
    tree: FileTree,
    *,
    cache: Cache,
    mtime: int = 0,
    compression: Compression | None = None,
    threads: int | None = None,
    report: Reporter | None = None,
    what: str = "a layer",
) -> Layer:
    """Write ``tree`` as one layer blob into the cache's blob store; return the layer.
    ``report`` shows its progress (``what``: the layer, in the task's name) in uncompressed bytes.

    ``threads``: how many threads deflate gzip blocks; None (the default) shares the process-wide
    pool of os.cpu_count() threads with every other layer being written.  The blob's bytes do not
    depend on it.  Must not be called from a deflate task (the shared pool could starve itself)."""
    compression = compression or Compression()
    task = f"compressing {what} ({compression.name})"
    with cache.writing("writing a layer into the cache"), progress(report, task, tree.file_bytes()) as bar:
        return _write(tree, cache=cache, mtime=mtime, compression=compression, threads=threads, bar=bar)


def _write(
    tree: FileTree, *, cache: Cache, mtime: int, compression: Compression, threads: int | None, bar: Ticker
) -> Layer:
    blobs = cache.root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    own = None
    if threads is not None:
        from concurrent.futures import ThreadPoolExecutor

        own = (ThreadPoolExecutor(max_workers=threads), threads)
    fd, tmp = tempfile.mkstemp(prefix=".layer.", suffix=".part", dir=blobs)
    try:
        with os.fdopen(fd, "wb") as f:
            sink = Sink(f, compression, pool=own)
            try:
                _write_tar(tree, sink, mtime=mtime, bar=bar)
                sink.close()
            except BaseException:
                sink.abort()
                raise
        hexdigest = sink.blob.hexdigest()
        os.replace(tmp, blobs / hexdigest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        if own is not None:
            own[0].shutdown(wait=True, cancel_futures=True)
    return Layer(
        digest=f"sha256:{hexdigest}",
        diff_id=f"sha256:{sink.tar_hash.hexdigest()}",
        size=sink.blob.size,
        media_type=compression.media_type,
        path=blobs / hexdigest,
    )
