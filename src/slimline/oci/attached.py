"""Manifests attached to an image under a tag of their own: cosign's ``sha256-<hex>.sig`` (and
``.att``), the tag schema of the distribution spec's referrers fallback.

Contracts: :func:`write` stores an :class:`~slimline.oci.image.Image` value (whose layers may be
any blobs: a signature payload, an envelope) under ``tag`` beside the image, through the same
writers as images: an ``oci:`` layout gets an ``index.json`` entry whose
``org.opencontainers.image.ref.name`` is the tag (other tags stay), a registry a manifest put by
tag.  Other media cannot hold one (:class:`~slimline.errors.SlimlineError`).  :func:`read`
returns the manifest stored under ``tag`` (parsed) and its layers' bytes by digest, each
checked against its digest and at most ``max_blob`` bytes, or None when there is no such tag.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from slimline.context import Context
from slimline.errors import HashMismatch, SlimlineError
from slimline.oci.image import Image
from slimline.oci.reference import OciRef, Ref, RegistryRef

__all__ = ["MAX_BLOB", "read", "tag_for", "write"]

MAX_BLOB = 4 << 20  # an attached layer (signature payload, envelope) read whole


def tag_for(digest: str, suffix: str) -> str:
    """``sha256-<hex>.<suffix>``: the tag cosign uses for what belongs to image ``digest``."""
    return digest.replace(":", "-") + "." + suffix


def write(image: Image, ref: Ref, tag: str, *, ctx: Context) -> str:
    if isinstance(ref, OciRef):
        from slimline.oci import layout

        return layout.write([image], OciRef(ref.path, tag))
    if isinstance(ref, RegistryRef):
        from slimline.oci import registry

        return registry.push([image], RegistryRef(ref.registry, ref.repository, tag=tag), ctx=ctx)
    raise SlimlineError(
        f"{ref} cannot hold {tag}", doing=f"attaching {tag}", hint="use an oci: layout or a registry"
    )


def _checked(data: bytes, digest: object, what: str) -> bytes:
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise HashMismatch(
            expected=str(digest), actual=actual, what=what, hint="the store altered it; do not trust it"
        )
    return data


def read(
    ref: Ref, tag: str, *, ctx: Context, max_blob: int = MAX_BLOB
) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    if isinstance(ref, OciRef):
        return _from_layout(ref, tag, max_blob)
    if isinstance(ref, RegistryRef):
        return _from_registry(ref, tag, ctx, max_blob)
    raise SlimlineError(
        f"{ref} cannot hold {tag}", doing=f"reading {tag}", hint="use an oci: layout or a registry"
    )


def _layers(manifest: Any, fetch: Any, max_blob: int, tag: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        size, digest = layer.get("size"), layer.get("digest")
        if not isinstance(size, int) or not isinstance(digest, str) or not 0 <= size <= max_blob:
            raise SlimlineError(
                f"{tag} lists a layer of {size} bytes (at most {max_blob})", doing=f"reading {tag}"
            )
        out[digest] = _checked(fetch(digest, size), digest, f"{tag} layer {digest}")
    return out


def _from_layout(ref: OciRef, tag: str, max_blob: int) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    root = ref.path
    blobs = root / "blobs" / "sha256"
    try:
        index = json.loads((root / "index.json").read_bytes())
        entry = next(
            (
                e
                for e in index.get("manifests", [])
                if (e.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
            ),
            None,
        )
        if entry is None:
            return None
        digest = str(entry.get("digest", ""))
        if not isinstance(entry.get("size"), int) or not 0 <= entry["size"] <= max_blob:
            raise SlimlineError(f"{tag}'s manifest is too large", doing=f"reading {tag} in {ref}")
        manifest_bytes = _checked(
            (blobs / digest.removeprefix("sha256:")).read_bytes(), digest, f"{tag} manifest"
        )
        manifest = json.loads(manifest_bytes)

        def fetch(d: str, size: int) -> bytes:
            with (blobs / d.removeprefix("sha256:")).open("rb") as f:
                return f.read(size + 1)

        return manifest, _layers(manifest, fetch, max_blob, tag)
    except (OSError, ValueError, AttributeError) as err:
        raise SlimlineError(f"cannot read {tag}: {err}", doing=f"reading {ref}") from err


def _from_registry(
    ref: RegistryRef, tag: str, ctx: Context, max_blob: int
) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    from slimline.oci import registry_manifests
    from slimline.oci.registry import _session
    from slimline.oci.registry_blobs import fetch_blob
    from slimline.oci.registry_client import RegistryError

    sess = _session(ref, ctx, None, scopes=[f"repository:{ref.repository}:pull"], op=f"reading {tag}")
    try:
        _, _, body = registry_manifests.get(sess, ctx.cache, tag)
    except RegistryError as err:
        if err.status == 404:
            return None
        raise
    manifest = registry_manifests.json_object(body, ref, tag)

    def fetch(d: str, size: int) -> bytes:
        return fetch_blob(sess, ctx.cache, d, size, f"{tag} layer").read_bytes()

    return manifest, _layers(manifest, fetch, max_blob, tag)
