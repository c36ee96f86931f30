"""Layer compression: gzip (block-parallel, pigz-style), zstd or none, as a sink that hashes.

gzip is written pigz-style: the tar stream is cut into :data:`BLOCK_SIZE` blocks, each deflated
on its own (primed with the previous block's last 32 KiB) by a process-wide thread pool shared by
all layers being written, and the results are written in order.  The blob's bytes depend only on
the tar bytes, the block size and the level, never on the number of threads or their timing.

Contract of :class:`Sink`: tar bytes in, ``tar_hash`` (the diff_id) and ``blob`` (digest and size
of the compressed bytes) out; :meth:`Sink.close` finishes the stream, :meth:`Sink.abort` drops it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from slimline.cache.store import HashingWriter
from slimline.oci.image import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["BLOCK_SIZE", "Compression", "CompressionName", "Sink"]

# gzip blocks: 1 MiB costs < 0.1% in size against one deflate stream (see tests/layers/test_compress.py)
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


class Sink:
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
