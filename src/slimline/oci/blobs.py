"""Blob-level pieces shared by the OCI transports (layout, archive, validate).

Contracts: :func:`copy_verified` and :func:`import_blob` never let bytes through unverified —
a copy is hashed and counted as it streams and checked against the descriptor at the end;
:func:`split_digest` only accepts ``sha256:<64 lowercase hex digits>`` (the one algorithm slimline
verifies), so a digest can be used to build a path under ``blobs/`` without escaping it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from slimline.cache.store import CHUNK, DIGEST_RULE, Cache
from slimline.errors import HashMismatch, SlimlineError, describe_os_error, os_hint
from slimline.oci import image as oci
from slimline.oci.image import Platform
from slimline.oci.reference import LOCALHOST, ReferenceError_, parse_name

__all__ = [
    "CONTAINERD_NAME",
    "INDEX_TYPES",
    "LAYOUT_FILE",
    "MANIFEST_TYPES",
    "MAX_JSON",
    "REF_NAME",
    "PlatformMismatch",
    "blob_mismatch",
    "check_platform",
    "containerd_name",
    "copy_verified",
    "import_blob",
    "open_layer",
    "os_errors",
    "split_digest",
]

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
MAX_JSON = 16 << 20  # manifests, configs and indexes larger than this are refused
INDEX_TYPES = frozenset({oci.INDEX, oci.DOCKER_LIST})
MANIFEST_TYPES = frozenset({oci.MANIFEST, oci.DOCKER_MANIFEST})
_DIGEST_RE = re.compile(r"(?P<alg>sha256):(?P<hex>[0-9a-f]{64})")


def blob_mismatch(*, what: str, source: str, expected: str, actual: str) -> HashMismatch:
    """The error for a blob (of an image ``source``) whose bytes do not match the digest or size
    its descriptor (or config) promises: no lock file is involved, so no re-lock hint."""
    return HashMismatch(
        what=what,
        expected=expected,
        actual=actual,
        doing=f"copying {what} from {source}",
        hint="the image is corrupt or was changed after it was written; rebuild or re-fetch it",
    )


class PlatformMismatch(SlimlineError):
    """The image source has no image for the wanted platform; ``available`` lists what it has."""

    def __init__(self, *, source: str, wanted: Platform, available: Sequence[str]) -> None:
        have = ", ".join(available) or "no platform"
        super().__init__(
            f"no image for {wanted} (it has {have})",
            doing=f"reading {source}",
            hint="pick a base that has this platform, or build for one of the platforms it has (--platform)",
        )
        self.source = source
        self.wanted = wanted
        self.available = tuple(available)


def split_digest(digest: object) -> tuple[str, str] | None:
    """``("sha256", "<hex>")`` for ``sha256:<64 lowercase hex digits>``, else None (never a path
    escape; other algorithms, upper case and short digests are None too)."""
    m = _DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    return (m["alg"], m["hex"]) if m else None


def copy_verified(src: BinaryIO, dst: BinaryIO, *, digest: str, size: int, what: str, source: str) -> None:
    """Copy exactly the blob ``digest`` of ``size`` bytes from ``src`` to ``dst``, hashing as it goes.

    Raises :class:`~slimline.errors.HashMismatch` (after writing at most ``size`` + one chunk)
    if the bytes differ.
    """
    h = hashlib.sha256()
    n = 0
    while chunk := src.read(CHUNK):
        n += len(chunk)
        if n > size:
            raise blob_mismatch(
                what=what, source=source, expected=f"{size} bytes", actual=f"more than {size}"
            )
        h.update(chunk)
        dst.write(chunk)
    if n != size:
        raise blob_mismatch(what=what, source=source, expected=f"{size} bytes", actual=f"{n} bytes")
    if f"sha256:{h.hexdigest()}" != digest:
        raise blob_mismatch(what=what, source=source, expected=digest, actual=f"sha256:{h.hexdigest()}")


def import_blob(
    opener: Callable[[], BinaryIO], *, digest: str, size: int, cache: Cache, what: str, source: str
) -> Path:
    """The cache path of blob ``digest``, copying it in through ``opener()`` if the cache lacks it.

    The cache's contract (a blob file exists only if its bytes were hashed on the way in)
    makes a present blob of the right size trustworthy; anything copied is verified.
    """
    parts = split_digest(digest)
    if parts is None:
        raise SlimlineError(
            f"{what} has the digest {str(digest)[:150]!r}, not {DIGEST_RULE}",
            doing=f"reading {source}",
            hint="the image is malformed or malicious; check where it came from",
        )
    path = cache.blob_path(parts[1])
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size == size:
            return path
    with opener() as stream:
        try:
            hexdigest, got = cache.put_stream(stream, expected=parts[1], what=what)
        except HashMismatch as err:
            raise blob_mismatch(what=what, source=source, expected=digest, actual=err.actual) from err
    if got != size:  # same bytes as the digest promises, so the descriptor's size is what is wrong
        raise blob_mismatch(
            what=f"{what} (size in its descriptor)",
            source=source,
            expected=f"{size} bytes",
            actual=f"{got} bytes",
        )
    return cache.blob_path(hexdigest)


@contextlib.contextmanager
def os_errors(make: Callable[[str], SlimlineError]) -> Iterator[None]:
    """Turn an :class:`OSError` escaping the block into ``make(description)`` (chained), with a
    hint for what the user can do about it (a full disk, a read-only file system, permissions)
    when ``make`` gives none."""
    try:
        yield
    except OSError as err:
        error = make(describe_os_error(err))
        error.hint = error.hint or os_hint(err)
        raise error from err


def check_platform(got: Platform, want: Platform, *, source: str) -> None:
    g, w = got.normalised(), want.normalised()
    if (g.os, g.architecture) != (w.os, w.architecture) or (
        g.variant and w.variant and g.variant != w.variant
    ):
        raise PlatformMismatch(source=source, wanted=w, available=[str(g)])


def containerd_name(tag: str | None, name: str | None) -> str | None:
    """The full name for ``io.containerd.image.name``: ``tag`` itself if it is a full reference,
    else ``name``'s repository with ``tag`` (``localhost/app:v1``); None if neither gives one."""
    if tag is None:
        return None
    try:
        if "/" in tag or ":" in tag:
            return str(parse_name(tag, default_registry=LOCALHOST))
        if name is not None:
            return str(parse_name(f"{parse_name(name, default_registry=LOCALHOST).name}:{tag}"))
    except ReferenceError_:
        return None
    return None


def open_layer(layer: oci.Layer, *, doing: str) -> BinaryIO:
    """Open a layer's blob for reading; a vanished or unreadable blob is a clear error."""
    try:
        return layer.open()
    except OSError as err:
        raise SlimlineError(
            f"cannot read layer {layer.digest} from {layer.path}: {err.strerror}",
            doing=doing,
            hint="the cache may have been cleaned while building; build again",
        ) from err
