"""File trees to reproducible layer blobs, and back to streams of tar members.

Contract of :func:`write`: the uncompressed tar (hence the ``diff_id``) depends only on the
tree and on ``mtime``: entries sorted by path bytes with parents first, PAX format, every
mtime set to ``mtime``, numeric owners with empty user/group names, no atime/ctime/xattrs.
The compressed blob is also a pure function of those plus the compression settings on a
given zlib/zstd build (gzip header: no file name, mtime 0).  The blob is hashed while it is
streamed into the cache's blob store and appears there atomically.

gzip is written pigz-style: the tar stream is cut into :data:`BLOCK_SIZE` blocks, each deflated
on its own (primed with the previous block's last 32 KiB) by a process-wide thread pool shared by
all layers being written, and the results are written in order.  The blob's bytes depend only on
the tar bytes, the block size and the level, never on the number of threads or their timing.

:func:`cached` memoises whole layers by a caller-chosen key (the inputs that determine the
tree), so unchanged dependency layers are neither rebuilt nor recompressed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from slimline import __version__
from slimline.cache import Cache, HashingWriter
from slimline.errors import SlimlineError
from slimline.filetree import Bytes, Entry, FileTree, Kind
from slimline.oci.image import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Layer

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = [
    "BLOCK_SIZE",
    "FORMAT_VERSION",
    "Compression",
    "cached",
    "from_record",
    "lookup",
    "members",
    "read_tree",
    "record",
    "store",
    "walk",
    "write",
    "write_many",
]

FORMAT_VERSION = "3"  # bump when the bytes written for the same tree change (2, 3: block-parallel gzip)

# gzip blocks: 1 MiB costs < 0.1% in size against one deflate stream (see tests/test_layers_parallel.py)
# and gives a 40 MB layer ~40 units of work to spread over the cores.  Part of the blob's identity:
# changing it changes every gzip layer's digest (bump FORMAT_VERSION with it).
BLOCK_SIZE = 1 << 20
_WINDOW = 1 << 15  # deflate's window: each block is primed with this much of the one before
_MEM_LEVEL = 8  # zlib's default, as gzip.GzipFile uses

CompressionName = Literal["gzip", "zstd", "none"]


@dataclass(frozen=True, slots=True)
class Compression:
    name: CompressionName = "gzip"
    level: int = 6

    @property
    def media_type(self) -> str:
        return {"gzip": LAYER_GZIP, "zstd": LAYER_ZSTD, "none": LAYER_TAR}[self.name]

    def key(self) -> str:
        return f"{self.name}-{self.level}"


def _deflate(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    """Raw deflate of one block, primed with ``dictionary`` (the previous block's tail).  A block
    that is not the last ends with a sync flush (byte-aligned, not final), the last with a finish,
    so the concatenation of all blocks in order is one valid deflate stream.  Runs in a pool thread
    (zlib releases the GIL)."""
    if dictionary:
        z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, _MEM_LEVEL, zdict=dictionary)
    else:
        z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, _MEM_LEVEL)
    return z.compress(block) + z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


_pool_lock = threading.Lock()
_pool: tuple[ThreadPoolExecutor, int] | None = None


def _shared_pool() -> tuple[ThreadPoolExecutor, int]:
    """The process-wide deflate pool (os.cpu_count() threads) and its size, made on first use.
    Its tasks never wait for other tasks, so any number of layers may share it."""
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = os.cpu_count() or 1
            from concurrent.futures import ThreadPoolExecutor  # loaded only when a layer needs threads

            _pool = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slimline-deflate"), workers)
        return _pool


class _BlockGzip:
    """A gzip member (RFC 1952; no name, mtime 0) written from blocks deflated in ``pool``.

    Blocks are cut at fixed offsets of the input, so the output is a function of the input
    bytes, ``block_size`` and ``level`` only.  At most ``2 * workers`` blocks of this stream are in
    flight; compressed blocks are written to ``out`` in input order as they complete."""

    def __init__(
        self,
        out: HashingWriter,
        *,
        level: int,
        pool: Callable[[], tuple[ThreadPoolExecutor, int]],
        block_size: int,
    ) -> None:
        if block_size < _WINDOW:
            raise ValueError(f"block size {block_size} is below the deflate window ({_WINDOW})")
        self._out, self._level, self._block_size = out, level, block_size
        self._get_pool = pool  # called on the first block that is not also the last
        self._pool: ThreadPoolExecutor | None = None
        self._limit = 2
        self._buf = bytearray()
        self._dict = b""
        self._crc = 0
        self._size = 0
        self._pending: deque[Future[bytes]] = deque()
        xfl = 2 if level == 9 else 4 if level == 1 else 0  # as gzip.GzipFile writes it
        out.write(struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 0, 0, xfl, 255))

    def write(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._buf += data
        # a block is sent only once more input follows it: the last block is the one close() sends
        while len(self._buf) > self._block_size:
            with memoryview(self._buf) as view:
                block = bytes(view[: self._block_size])
            del self._buf[: self._block_size]
            self._submit(block, last=False)

    def _submit(self, block: bytes, *, last: bool) -> None:
        if self._pool is None:
            self._pool, workers = self._get_pool()
            self._limit = 2 * max(1, workers)
        self._pending.append(self._pool.submit(_deflate, block, self._dict, self._level, last))
        self._dict = block[-_WINDOW:]
        while self._pending and (len(self._pending) > self._limit or self._pending[0].done()):
            self._out.write(self._pending.popleft().result())

    def close(self) -> None:
        if not self._pending and not self._dict:  # the whole stream is one block: no thread needed
            self._out.write(_deflate(bytes(self._buf), b"", self._level, True))
        else:
            self._submit(bytes(self._buf), last=True)
        self._buf = bytearray()
        while self._pending:
            self._out.write(self._pending.popleft().result())
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def abort(self) -> None:
        """Drop the blocks not yet written (after an error); queued ones are not compressed."""
        while self._pending:
            self._pending.popleft().cancel()


class _Sink:
    """tar bytes -> sha256 (diff_id) -> compressor -> sha256 (digest) -> file."""

    def __init__(
        self, out: BinaryIO, compression: Compression, *, pool: tuple[ThreadPoolExecutor, int] | None = None
    ) -> None:
        self.blob = HashingWriter(out)
        self._z: _BlockGzip | None = None
        self._zstd: Any = None  # zstandard.ZstdCompressionWriter
        if compression.name == "gzip":
            self._z = _BlockGzip(
                self.blob,
                level=compression.level,
                pool=(lambda: pool) if pool is not None else _shared_pool,
                block_size=BLOCK_SIZE,
            )
        elif compression.name == "zstd":
            import zstandard

            cctx = zstandard.ZstdCompressor(level=compression.level, threads=0, write_content_size=False)
            self._zstd = cctx.stream_writer(self.blob, closefd=False)  # type: ignore[arg-type]
        self.tar_hash = hashlib.sha256()
        self.tar_size = 0

    def write(self, data: bytes) -> int:
        self.tar_hash.update(data)
        self.tar_size += len(data)
        if self._z is not None:
            self._z.write(data)
        elif self._zstd is not None:
            self._zstd.write(data)
        else:
            self.blob.write(data)
        return len(data)

    def close(self) -> None:
        if self._z is not None:
            self._z.close()
        elif self._zstd is not None:
            import zstandard

            self._zstd.flush(zstandard.FLUSH_FRAME)
            self._zstd.close()

    def abort(self) -> None:
        if self._z is not None:
            self._z.abort()


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


def _write_tar(tree: FileTree, sink: _Sink, *, mtime: int) -> None:
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
) -> Layer:
    """Write ``tree`` as one layer blob into the cache's blob store; return the layer.

    ``threads``: how many threads deflate gzip blocks; None (the default) shares the process-wide
    pool of os.cpu_count() threads with every other layer being written.  The blob's bytes do not
    depend on it.  Must not be called from a deflate task (the shared pool could starve itself)."""
    compression = compression or Compression()
    blobs = cache.root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    own = None
    if threads is not None:
        from concurrent.futures import ThreadPoolExecutor

        own = (ThreadPoolExecutor(max_workers=threads), threads)
    fd, tmp = tempfile.mkstemp(prefix=".layer.", suffix=".part", dir=blobs)
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f, compression, pool=own)
            try:
                _write_tar(tree, sink, mtime=mtime)
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


def _meta_key(key: str, *, mtime: int, compression: Compression) -> str:
    # the slimline version is part of the key: a new release may lay out the same inputs differently
    return hashlib.sha256(
        f"{__version__}|{FORMAT_VERSION}|{compression.key()}|{mtime}|{key}".encode()
    ).hexdigest()


def record(layer: Layer) -> dict[str, Any]:
    """What the cache keeps of a layer besides its blob (see :func:`from_record`)."""
    return {
        "digest": layer.digest,
        "diff_id": layer.diff_id,
        "size": layer.size,
        "media_type": layer.media_type,
    }


def from_record(d: Mapping[str, Any], *, cache: Cache) -> Layer:
    """The layer :func:`record` described, its blob in ``cache`` (which may since have gone)."""
    digest = str(d["digest"])
    return Layer(digest, str(d["diff_id"]), int(d["size"]), str(d["media_type"]), cache.digest_path(digest))


def lookup(key: str, *, cache: Cache, mtime: int = 0, compression: Compression | None = None) -> Layer | None:
    """The cached layer for ``key`` (see :func:`cached`), or None.  Never builds anything."""
    if os.environ.get("SLIMLINE_NO_LAYER_CACHE") == "1":
        return None
    meta = cache.read_meta("layers", _meta_key(key, mtime=mtime, compression=compression or Compression()))
    if meta is None:
        return None
    layer = from_record(json.loads(meta), cache=cache)
    if not (layer.path.is_file() and layer.path.stat().st_size == layer.size):
        return None
    return layer


def store(
    key: str,
    make: Callable[[], FileTree],
    *,
    cache: Cache,
    mtime: int = 0,
    compression: Compression | None = None,
) -> Layer:
    """``make()`` the layer for ``key``, write it and remember it for :func:`lookup`."""
    compression = compression or Compression()
    layer = write(make(), cache=cache, mtime=mtime, compression=compression)
    meta = json.dumps(record(layer)).encode()
    cache.write_meta("layers", _meta_key(key, mtime=mtime, compression=compression), meta)
    return layer


def cached(
    key: str,
    make: Callable[[], FileTree],
    *,
    cache: Cache,
    mtime: int = 0,
    compression: Compression | None = None,
) -> Layer:
    """The layer for ``key``: from the layer cache if present (and its blob still exists), else
    ``make()`` it, write it and remember it.  ``key`` must capture every input of ``make``.

    ``SLIMLINE_NO_LAYER_CACHE=1`` makes every call rebuild (benchmarks, debugging)."""
    hit = lookup(key, cache=cache, mtime=mtime, compression=compression)
    return hit if hit is not None else store(key, make, cache=cache, mtime=mtime, compression=compression)


def write_many(jobs: list[Callable[[], Layer]], *, workers: int | None = None) -> list[Layer]:
    """Run layer-producing callables in parallel (compression releases the GIL); keep order."""
    if len(jobs) <= 1:
        return [job() for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers or min(len(jobs), os.cpu_count() or 2)) as pool:
        return list(pool.map(lambda job: job(), jobs))


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
