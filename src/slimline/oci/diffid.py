"""A layer's uncompressed bytes, and its ``diff_id`` checked against what its image's config lists.

Contracts:

* :func:`uncompressed` is the one place a layer blob is decompressed: every reader of layer
  contents (:mod:`slimline.layers.read`) and :func:`verify` use it, so what was checked is what
  is read.  The compression is the media type's (tar, gzip or zstd) and the blob's first bytes
  must agree (gzip's or zstd's magic number, or neither for a tar), else :class:`LayerError`
  names the layer.  Each read returns at most what was asked, so a bomb costs time, not memory;
  a stream that does not decompress raises :class:`LayerError` too.
* :func:`verify` checks the layers of an image read from a layout, an archive or a registry,
  right after their blobs entered the cache: the sha256 of each layer's decompressed bytes must
  be the diff_id the config lists for it (for a tar layer: its digest).  A mismatch raises
  :class:`~slimline.errors.HashMismatch` naming the layer.  Each blob's verified diff_id is
  recorded in the cache (``oci-diff-ids/<blob hex>``), so a blob is decompressed once per cache.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from slimline.cache import keys
from slimline.cache.store import CHUNK, Cache
from slimline.errors import HashMismatch, SlimlineError
from slimline.oci.blobs import open_layer
from slimline.oci.image import Layer

__all__ = ["LayerError", "compression_of", "uncompressed", "verify"]

_MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}


class LayerError(SlimlineError):
    """A layer blob whose bytes are not what its media type says, or do not decompress."""

    def __init__(self, problem: str, *, layer: Layer, doing: str, label: str = "") -> None:
        super().__init__(
            f"{label or f'layer {layer.digest}'}: {problem}",
            doing=doing,
            hint="the image is corrupt or malicious; check where it came from",
        )
        self.digest = layer.digest


def compression_of(media_type: str) -> str:
    """The compression a layer media type names: "gzip", "zstd" or "tar" (none)."""
    return "gzip" if media_type.endswith("gzip") else "zstd" if media_type.endswith("zstd") else "tar"


@contextlib.contextmanager
def uncompressed(layer: Layer, *, doing: str, label: str = "") -> Iterator[BinaryIO]:
    """A stream of ``layer``'s uncompressed tar (see the module's contract); the blob is closed
    after the block.  Errors of decompression raised inside the block become :class:`LayerError`
    (about ``label``, default "layer <digest>")."""
    kind = compression_of(layer.media_type)
    with open_layer(layer, doing=doing) as raw:
        head = raw.read(4)
        raw.seek(0)
        found = next((k for k, magic in _MAGIC.items() if head.startswith(magic)), "tar")
        if found != kind:
            what = "not compressed" if found == "tar" else f"{found}-compressed"
            raise LayerError(
                f"its media type {layer.media_type} says {kind}, but its bytes are {what}",
                layer=layer,
                doing=doing,
                label=label,
            )
        broken: tuple[type[BaseException], ...] = (zlib.error, EOFError, gzip.BadGzipFile)
        stream: Any = raw
        if kind == "gzip":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "zstd":
            import zstandard

            broken += (zstandard.ZstdError,)
            stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        try:
            yield stream
        except broken as err:
            raise LayerError(
                f"its {kind} stream is corrupt ({err})", layer=layer, doing=doing, label=label
            ) from err


def verify(layers: Sequence[Layer], *, cache: Cache, source: str, jobs: int = 4) -> None:
    """Check every layer's diff_id (see the module's contract), ``jobs`` layers at a time."""
    doing = f"checking the layers of {source}"
    todo = list(enumerate(layers, 1))
    if len(todo) <= 1:
        for n, layer in todo:
            _check(n, layer, cache=cache, doing=doing)
        return
    from concurrent.futures import ThreadPoolExecutor  # (with logging) only when layers are checked

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
        list(pool.map(lambda item: _check(*item, cache=cache, doing=doing), todo))


def _check(n: int, layer: Layer, *, cache: Cache, doing: str) -> None:
    hexdigest = layer.digest.removeprefix("sha256:")
    known = cache.read_meta(keys.DIFF_IDS, hexdigest)
    if known is not None:
        actual = known.decode()
    else:
        actual = _hash(layer, doing=doing, label=f"layer {n} ({layer.digest})")
        cache.write_meta(keys.DIFF_IDS, hexdigest, actual.encode())
    if actual != layer.diff_id:
        raise HashMismatch(
            what=f"layer {n} ({layer.digest}), uncompressed",
            expected=f"{layer.diff_id} (the diff_id the image's config lists)",
            actual=actual,
            doing=doing,
            hint="the image's config does not describe its layers: it is corrupt or was tampered with",
        )


def _hash(layer: Layer, *, doing: str, label: str) -> str:
    """sha256 of the layer's uncompressed bytes (a tar layer's is its digest: its magic is checked)."""
    h = hashlib.sha256()
    with uncompressed(layer, doing=doing, label=label) as stream:
        if compression_of(layer.media_type) == "tar":
            return layer.digest
        while chunk := stream.read(CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"
