"""File trees to reproducible layer blobs, and back to streams of tar members.

Contract of :func:`write`: the uncompressed tar (hence the ``diff_id``) depends only on the
tree and on ``mtime``: entries sorted by path bytes with parents first, PAX format, every
mtime set to ``mtime``, numeric owners with empty user/group names, no atime/ctime/xattrs.
The compressed blob is also a pure function of those plus the compression settings on a
given zlib/zstd build (gzip header: no file name, mtime 0).  The blob is hashed while it is
streamed into the cache's blob store and appears there atomically.

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
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from slimline import __version__
from slimline.cache import Cache, HashingWriter
from slimline.errors import SlimlineError
from slimline.filetree import Entry, FileTree, Kind
from slimline.oci.image import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD, Layer

__all__ = ["FORMAT_VERSION", "Compression", "cached", "lookup", "members", "walk", "write", "write_many"]

FORMAT_VERSION = "1"  # bump when the bytes written for the same tree change

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


class _Sink:
    """tar bytes -> sha256 (diff_id) -> compressor -> sha256 (digest) -> file."""

    def __init__(self, out: BinaryIO, compression: Compression) -> None:
        self.blob = HashingWriter(out)
        self._z: gzip.GzipFile | None
        self._zstd: Any = None  # zstandard.ZstdCompressionWriter
        if compression.name == "gzip":
            self._z = gzip.GzipFile(
                filename="",
                mode="wb",
                fileobj=self.blob,
                mtime=0,
                compresslevel=compression.level,
            )
        elif compression.name == "zstd":
            import zstandard

            cctx = zstandard.ZstdCompressor(level=compression.level, threads=0, write_content_size=False)
            self._zstd = cctx.stream_writer(self.blob, closefd=False)  # type: ignore[arg-type]
            self._z = None
        else:
            self._z = None
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
        if len(data) < want and want > 0 and not data:
            raise SlimlineError(
                f"{self._path}: source ended {self._left} bytes early", doing="writing a layer"
            )
        self._left -= len(data)
        return data


def write(tree: FileTree, *, cache: Cache, mtime: int = 0, compression: Compression | None = None) -> Layer:
    """Write ``tree`` as one layer blob into the cache's blob store; return the layer."""
    compression = compression or Compression()
    blobs = cache.root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".layer.", suffix=".part", dir=blobs)
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Sink(f, compression)
            _write_tar(tree, sink, mtime=mtime)
            sink.close()
        hexdigest = sink.blob.hexdigest()
        os.replace(tmp, blobs / hexdigest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
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


def lookup(key: str, *, cache: Cache, mtime: int = 0, compression: Compression | None = None) -> Layer | None:
    """The cached layer for ``key`` (see :func:`cached`), or None.  Never builds anything."""
    if os.environ.get("SLIMLINE_NO_LAYER_CACHE") == "1":
        return None
    meta = cache.read_meta("layers", _meta_key(key, mtime=mtime, compression=compression or Compression()))
    if meta is None:
        return None
    d = json.loads(meta)
    path = cache.blob_path(d["digest"].removeprefix("sha256:"))
    if not (path.is_file() and path.stat().st_size == d["size"]):
        return None
    return Layer(d["digest"], d["diff_id"], d["size"], d["media_type"], path)


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
    compression = compression or Compression()
    hit = lookup(key, cache=cache, mtime=mtime, compression=compression)
    if hit is not None:
        return hit
    layer = write(make(), cache=cache, mtime=mtime, compression=compression)
    cache.write_meta(
        "layers",
        _meta_key(key, mtime=mtime, compression=compression),
        json.dumps(
            {
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.size,
                "media_type": layer.media_type,
            }
        ).encode(),
    )
    return layer


def write_many(jobs: list[Callable[[], Layer]], *, workers: int | None = None) -> list[Layer]:
    """Run layer-producing callables in parallel (compression releases the GIL); keep order."""
    if len(jobs) <= 1:
        return [job() for job in jobs]
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
