"""Image values from the JSON of any medium: a manifest and its config, checked before use.

Contract of :func:`image_from_json`: nothing a manifest or config says is used before it is
checked.  Every layer descriptor's digest and the config's diff_ids are
``sha256:<64 lowercase hex digits>`` (:data:`DIGEST`) before a digest is turned into a path;
sizes are integers >= 0; layer media types are ones slimline can read (:data:`LAYER_TYPES`); a
config that declares a media type declares an image config's.  Anything else, and any JSON of
another shape, raises :class:`ImageFormatError` (naming the layer when one is at fault), never
a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slimline.oci.image import (
    CONFIG,
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    DOCKER_MANIFEST,
    EMPTY_EPOCH,
    LAYER_GZIP,
    LAYER_TAR,
    LAYER_ZSTD,
    MANIFEST,
    Config,
    History,
    Image,
    Layer,
    parse_platform,
)

__all__ = ["DIGEST", "HINT", "LAYER_TYPES", "ImageFormatError", "image_from_json"]

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # the only digests slimline reads, and names blobs by
HINT = "the image is malformed or malicious; check where it came from"  # for an ImageFormatError
LAYER_TYPES = frozenset({LAYER_TAR, LAYER_GZIP, LAYER_ZSTD, DOCKER_LAYER_TAR, DOCKER_LAYER_GZIP})


class ImageFormatError(ValueError):
    """A manifest, index or config that is not valid JSON of the expected shape."""


def image_from_json(manifest: bytes, config: bytes, *, blob_path: Callable[[str], Path]) -> Image:
    """Rebuild an :class:`Image` from a manifest and its config, as read from any medium.

    ``blob_path(digest)`` returns where each layer blob lives on disk (the caller has verified
    or will verify it); it is asked only for digests checked here (see the module's contract).
    The result re-serialises to the same config bytes only if the source used slimline's
    canonical JSON; callers that must keep a foreign image's digest keep its original bytes.
    """
    try:
        m = json.loads(manifest)
        c = json.loads(config)
        diff_ids = list(c["rootfs"]["diff_ids"])
        layer_descs = list(m["layers"])
        config_type = (m.get("config") or {}).get("mediaType", CONFIG)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ImageFormatError(f"not an image manifest/config: {err!r}") from err
    if config_type not in (CONFIG, DOCKER_CONFIG):
        raise ImageFormatError(
            f"the config's media type is {str(config_type)[:100]!r}: not a container image"
        )
    if len(diff_ids) != len(layer_descs):
        raise ImageFormatError(
            f"manifest lists {len(layer_descs)} layers but the config lists {len(diff_ids)} diff_ids"
        )
    layers = tuple(
        _layer(d, diff_id, i + 1, blob_path)
        for i, (d, diff_id) in enumerate(zip(layer_descs, diff_ids, strict=True))
    )
    try:
        return _image(m, c, layers)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ImageFormatError(f"not an image manifest/config: {err!r}") from err


def _layer(d: Any, diff_id: Any, n: int, blob_path: Callable[[str], Path]) -> Layer:
    """Layer ``n`` (1-based) of a manifest, its descriptor ``d`` checked first."""
    d = d if isinstance(d, dict) else {}
    digest, size, media = d.get("digest"), d.get("size"), d.get("mediaType")
    for what, value in (("digest", digest), ("diff_id", diff_id)):
        if value is None:
            raise ImageFormatError(f"layer {n} has no {what}")
        if not (isinstance(value, str) and DIGEST.fullmatch(value)):
            raise ImageFormatError(
                f"layer {n}: its {what} {str(value)[:150]!r} is not sha256:<64 lowercase hex digits>"
            )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageFormatError(f"layer {n} ({digest}): its size {size!r} is not a number of bytes")
    if media not in LAYER_TYPES:
        raise ImageFormatError(
            f"layer {n} ({digest}): its media type {str(media)[:100]!r} is not one slimline reads "
            "(a tar, gzip or zstd layer)"
        )
    annotations = d.get("annotations")
    return Layer(
        str(digest),
        str(diff_id),
        size,
        str(media),
        blob_path(str(digest)),
        dict(annotations) if isinstance(annotations, dict) else {},
    )


def _image(m: dict[str, Any], c: dict[str, Any], layers: tuple[Layer, ...]) -> Image:
    history = tuple(
        History(
            created_by=str(h.get("created_by", "")),
            created=str(h.get("created", EMPTY_EPOCH)),
            comment=str(h.get("comment", "")),
            empty_layer=bool(h.get("empty_layer", False)),
        )
        for h in c.get("history") or ()
    )
    media = m.get("mediaType") or MANIFEST
    return Image(
        platform=parse_platform(c),
        layers=layers,
        config=Config.from_json(c.get("config")),
        history=history,
        created=c.get("created") or EMPTY_EPOCH,
        annotations=dict(m.get("annotations") or {}),
        media_type=MANIFEST if media == MANIFEST else DOCKER_MANIFEST,
    )
