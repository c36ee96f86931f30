"""Manifests and indexes on a registry: fetched verified, their media type decided, and put.

:func:`get` fetches a manifest or index by tag or digest (OCI and Docker schema 2 media types
are both asked for), reads at most :data:`MAX_MANIFEST` bytes, checks their sha256 against a
pinned digest and against the registry's ``Docker-Content-Digest``, and stores them in the
cache's blob store; by digest it is served from the cache when there.  Its media type is the one
the document declares, else the ``Content-Type``, else guessed from its shape; Docker schema 1
is refused.  :func:`put` puts one by tag or digest and checks the registry kept these bytes;
:func:`index` makes the index that lists several images pushed under one tag.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from slimline.cache.store import Cache
from slimline.http import MANIFEST_CAP, HttpError, read_capped
from slimline.oci.image import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX,
    MANIFEST,
    Image,
    canonical_json,
    index_bytes,
    sha256_digest,
)
from slimline.oci.reference import RegistryRef
from slimline.oci.registry_client import RegistryError, Session, hex_of

__all__ = ["ACCEPTED", "MAX_MANIFEST", "get", "index", "json_object", "put"]

ACCEPTED = (INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)  # what a GET of a manifest asks for
MAX_MANIFEST = MANIFEST_CAP.bytes  # 4 MiB: the distribution spec's floor for what registries accept


def json_object(body: bytes, ref: RegistryRef, what: str) -> dict[str, Any]:
    """``body`` parsed, if it is a JSON object; else a :class:`RegistryError` about ``what``."""
    try:
        value = json.loads(body)
    except ValueError as err:
        raise RegistryError(f"the {what} is not JSON", ref=ref, doing=f"pulling {ref}") from err
    if not isinstance(value, dict):
        raise RegistryError(f"the {what} is not a JSON object", ref=ref, doing=f"pulling {ref}")
    return value


def _media_of(body: bytes, content_type: str, ref: RegistryRef) -> str:
    d = json_object(body, ref, "manifest")
    if d.get("schemaVersion") == 1:
        raise RegistryError(
            "the image uses the Docker schema 1 manifest format, which is not supported",
            ref=ref,
            doing=f"pulling {ref}",
            hint="re-push the image with a current tool",
        )
    declared = str(d.get("mediaType") or "")
    if declared and content_type in ACCEPTED and declared != content_type:
        raise RegistryError(
            f"the registry sent Content-Type {content_type} for a {declared}",
            ref=ref,
            doing=f"pulling {ref}",
            hint="the registry or a proxy rewrote the reply",
        )
    if declared:
        return declared
    if content_type in ACCEPTED:
        return content_type
    return INDEX if "manifests" in d else MANIFEST


def get(sess: Session, cache: Cache, reference: str) -> tuple[str, str, bytes]:
    """(digest, media type, bytes) of a manifest or index; by digest from the cache if there."""
    ref = sess.ref
    pinned = reference.startswith("sha256:")
    if pinned:
        path = cache.blob_path(hex_of(reference, ref=ref))
        if path.is_file():
            data = path.read_bytes()
            if sha256_digest(data) == reference:
                return reference, _media_of(data, "", ref), data
    resp = sess.request(
        "GET",
        f"/v2/{ref.repository}/manifests/{reference}",
        headers={"Accept": ", ".join(ACCEPTED)},
        stream=True,
        what=f"fetching the manifest {reference}",
    )
    try:
        data = read_capped(
            resp, MANIFEST_CAP, url=f"{sess.base}/v2/{ref.repository}/manifests/{reference}", decode=False
        )
    except HttpError as err:
        raise RegistryError(err.problem, ref=ref, doing=f"pulling {ref}", hint=err.hint) from err
    actual = sha256_digest(data)
    claimed = resp.headers.get("Docker-Content-Digest", "")
    if (pinned and actual != reference) or (claimed.startswith("sha256:") and claimed != actual):
        raise RegistryError(
            f"the manifest's bytes hash to {actual}, not {reference if pinned else claimed}",
            ref=ref,
            doing=f"pulling {ref}",
            hint="the registry or a proxy altered it; do not trust it",
        )
    media = _media_of(data, resp.headers.get("Content-Type", "").split(";")[0].strip(), ref)
    cache.put_stream(io.BytesIO(data), expected=actual.removeprefix("sha256:"), what=f"manifest of {ref}")
    return actual, media, data


def put(sess: Session, reference: str, media: str, data: bytes) -> str:
    """Put the manifest or index ``data`` by ``reference`` (a tag or its digest); return its digest."""
    ref = sess.ref
    expected = sha256_digest(data)
    resp = sess.request(
        "PUT",
        f"/v2/{ref.repository}/manifests/{reference}",
        headers={"Content-Type": media},
        body=data,
        ok=(201, 200),
        what=f"putting the manifest {reference} to {ref}",
    )
    got = resp.headers.get("Docker-Content-Digest", "")
    if got and got != expected:
        raise RegistryError(
            f"the registry stored the manifest as {got}, not {expected}",
            ref=ref,
            doing=f"pushing to {ref}",
            hint="the registry or a proxy rewrote the manifest",
        )
    return expected


def index(images: Sequence[Image], ref: RegistryRef) -> tuple[str, bytes]:
    """(media type, bytes) of the index listing ``images``: a Docker list for Docker manifests."""
    kinds = {img.media_type for img in images}
    if kinds == {DOCKER_MANIFEST}:
        return DOCKER_LIST, canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_LIST,
                "manifests": [img.descriptor().to_json() for img in images],
            }
        )
    if kinds != {MANIFEST}:
        raise RegistryError(
            "cannot mix OCI and Docker manifests in one index",
            ref=ref,
            doing=f"pushing to {ref}",
            hint="convert every image to the same format first",
        )
    return INDEX, index_bytes([img.descriptor() for img in images])
