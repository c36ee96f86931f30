"""Pull images from and push images to OCI distribution registries (``docker://``).

Pull: the manifest (or index, from which the target platform's manifest is chosen; OCI and
Docker schema 2 media types are both accepted) is fetched by tag or digest, checked against
its digest and stored in the cache's blob store, like the config and every layer.  Blobs are
verified while they stream (size and sha256) and appear in the cache only when they match.
When the reference pins a digest and everything is cached, no request is made at all; a tag
costs one manifest request (tags move), unless the caller accepts a resolution of that tag
younger than ``max_age``.  Pulled images keep their media types: Docker schema 2 layers stay
Docker layers, and converting them to OCI is only a change of label (the bytes, digests and
diff_ids are the same), which the build does (``slimline.base.resolve.to_oci``).  The returned
:class:`Image` re-serialises the config canonically, so its digest is not the registry's; the
layers and diff_ids are exactly the registry's.

Push: every blob is checked with HEAD and only missing ones are sent: mounted from another
repository of the same registry when the cache knows one that holds it (it records where each
layer was pulled from or pushed to), else uploaded monolithically (small blobs) or in chunks.
Then the manifest is put by tag; several images become child manifests put by digest and an
index put by tag.

Transport: HTTPS verified with the system trust store.  Loopback hosts may fall back to plain
HTTP; hosts named in ``insecure`` may fall back to unverified TLS, then plain HTTP.
Connection errors, 429 and 5xx are retried by :class:`slimline.http.Http` (honouring
``Retry-After``); whatever still fails becomes a :class:`RegistryError` that says what failed,
on which registry, and what to check.  No credential is ever logged or put in a message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from slimline.cache.store import Cache
from slimline.http import Http
from slimline.oci.auth import Credentials
from slimline.oci.image import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX,
    MANIFEST,
    Image,
    ImageFormatError,
    Platform,
    canonical_json,
    choose_manifest,
    image_from_json,
    index_bytes,
    sha256_digest,
)
from slimline.oci.reference import RegistryRef
from slimline.oci.registry_client import RegistryError, Session, Uploader, fetch_blob, hex_of
from slimline.report import Quiet, Reporter

__all__ = ["RegistryError", "RegistryRef", "pull", "push"]

MANIFEST_TYPES = (INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
MAX_MANIFEST = 4 << 20  # the distribution spec's floor for what registries must accept
SOURCES = "registry-sources"  # cache metadata: which repositories hold a blob (for mounts)
TAGS = "registry-tags"  # cache metadata: tag -> digest, and when it was resolved


# -- pull ----------------------------------------------------------------------------------------


def pull(
    ref: RegistryRef,
    *,
    platform: Platform,
    cache: Cache,
    http: Http,
    insecure: Sequence[str] = (),
    credentials: Credentials | None = None,
    report: Reporter | None = None,
    max_age: float | None = None,
    jobs: int = 4,
) -> Image:
    """The image for ``platform`` named by ``ref``, with every blob in ``cache``.

    A tag is resolved by the registry on every call, unless ``max_age`` is given and this cache
    resolved the same tag less than ``max_age`` seconds ago: then, as for a pinned digest, a
    fully cached image needs no request at all.
    """
    report = report or Quiet()
    sess = Session(
        ref,
        http=http,
        insecure=insecure,
        credentials=Credentials.from_env() if credentials is None else credentials,
        scopes=[f"repository:{ref.repository}:pull"],
        op=f"pulling {ref}",
    )
    reference = _resolved(cache, ref, max_age) or ref.reference
    try:
        digest, media, body = _manifest(sess, cache, reference)
    except RegistryError as err:
        if err.status == 404:
            raise _missing(sess, err) from err
        raise
    if not ref.digest and reference == ref.reference:
        cache.write_meta(TAGS, _tag_key(ref), json.dumps({"digest": digest, "at": time.time()}).encode())
    if media in (INDEX, DOCKER_LIST):
        index = _json(body, ref, "image index")
        entry = choose_manifest(index, platform)
        if entry is None:
            have = sorted({_platform_text(m.get("platform") or {}) for m in index.get("manifests") or ()})
            raise RegistryError(
                f"{ref} has no image for {platform} (it has: {', '.join(have) or 'none'})",
                ref=ref,
                doing=f"pulling {ref}",
                hint="choose another --platform or another base",
            )
        digest, media, body = _manifest(sess, cache, str(entry["digest"]))
    if media not in (MANIFEST, DOCKER_MANIFEST):
        raise RegistryError(
            f"{ref} is a {media}, not an image",
            ref=ref,
            doing=f"pulling {ref}",
            hint="name an image (a container image manifest or index)",
        )
    manifest = _json(body, ref, "manifest")
    try:
        cfg = manifest["config"]
        blobs = [(str(cfg["digest"]), int(cfg["size"]), "config")]
        blobs += [(str(d["digest"]), int(d["size"]), f"layer {d['digest']}") for d in manifest["layers"]]
    except (KeyError, TypeError, ValueError) as err:
        raise RegistryError(
            f"the manifest {digest} is malformed ({err!r})", ref=ref, doing=f"pulling {ref}"
        ) from err
    missing = [b for b in blobs if not _cached(cache, b[0], b[1], ref=ref)]
    if missing:
        report.detail(f"{ref}: fetching {len(missing)} of {len(blobs)} blobs")
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(missing)))) as pool:
            list(pool.map(lambda b: fetch_blob(sess, cache, *b), missing))
    config_bytes = cache.blob_path(hex_of(blobs[0][0], ref=ref)).read_bytes()
    try:
        image = image_from_json(body, config_bytes, blob_path=lambda d: cache.blob_path(hex_of(d, ref=ref)))
        image = dataclasses.replace(image, origin=digest)
    except ImageFormatError as err:
        raise RegistryError(str(err), ref=ref, doing=f"reading the image {ref}") from err
    got = image.platform
    if (got.os, got.architecture) != (platform.os, platform.architecture):
        raise RegistryError(
            f"{ref} is an image for {got}, not {platform}",
            ref=ref,
            doing=f"pulling {ref}",
            hint="choose another --platform or a multi-platform base",
        )
    _remember(cache, [d for d, _, _ in blobs], ref)
    report.detail(f"{ref}: {digest}")
    return image


def _tag_key(ref: RegistryRef) -> str:
    return hashlib.sha256(f"{ref.registry}/{ref.repository}:{ref.tag}".encode()).hexdigest()


def _resolved(cache: Cache, ref: RegistryRef, max_age: float | None) -> str | None:
    """The digest this cache resolved ``ref``'s tag to less than ``max_age`` seconds ago, if any."""
    if ref.digest or max_age is None:
        return None
    raw = cache.read_meta(TAGS, _tag_key(ref))
    if raw is None:
        return None
    d = json.loads(raw)
    digest = str(d["digest"])
    fresh = time.time() - float(d["at"]) <= max_age
    return digest if fresh and cache.has_blob(hex_of(digest, ref=ref)) else None


def _missing(sess: Session, err: RegistryError) -> RegistryError:
    """Registries answer MANIFEST_UNKNOWN for a tag of an unknown repository too: tell the two apart."""
    ref = sess.ref
    try:
        resp = sess.request("GET", f"/v2/{ref.repository}/tags/list?n=20", what="listing its tags")
        tags = [str(t) for t in (json.loads(resp.data).get("tags") or [])]
    except RegistryError as probe:
        if probe.code != "NAME_UNKNOWN":
            return err
        probe.doing = err.doing
        return probe
    except (ValueError, AttributeError):
        return err
    err.hint = f"{ref.repository} has no {ref.reference!r}; it has: {', '.join(tags) or 'no tags'}" + (
        " ..." if len(tags) == 20 else ""
    )
    return err


def _platform_text(p: dict[str, Any]) -> str:
    return "/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k))


def _json(body: bytes, ref: RegistryRef, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as err:
        raise RegistryError(f"the {what} is not JSON", ref=ref, doing=f"pulling {ref}") from err
    if not isinstance(value, dict):
        raise RegistryError(f"the {what} is not a JSON object", ref=ref, doing=f"pulling {ref}")
    return value


def _media_of(body: bytes, content_type: str, ref: RegistryRef) -> str:
    d = _json(body, ref, "manifest")
    if d.get("schemaVersion") == 1:
        raise RegistryError(
            "the image uses the Docker schema 1 manifest format, which is not supported",
            ref=ref,
            doing=f"pulling {ref}",
            hint="re-push the image with a current tool",
        )
    declared = str(d.get("mediaType") or "")
    if declared and content_type in MANIFEST_TYPES and declared != content_type:
        raise RegistryError(
            f"the registry sent Content-Type {content_type} for a {declared}",
            ref=ref,
            doing=f"pulling {ref}",
            hint="the registry or a proxy rewrote the reply",
        )
    if declared:
        return declared
    if content_type in MANIFEST_TYPES:
        return content_type
    return INDEX if "manifests" in d else MANIFEST


def _manifest(sess: Session, cache: Cache, reference: str) -> tuple[str, str, bytes]:
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
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
        stream=True,
        what=f"fetching the manifest {reference}",
    )
    try:
        data = resp.read(MAX_MANIFEST + 1, decode_content=False)
    finally:
        resp.release_conn()
    if len(data) > MAX_MANIFEST:
        raise RegistryError(
            f"the manifest is larger than {MAX_MANIFEST} bytes", ref=ref, doing=f"pulling {ref}"
        )
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


def _cached(cache: Cache, digest: str, size: int, *, ref: RegistryRef) -> bool:
    """Blobs in the store were hashed as they were written (the cache's contract): check the size only."""
    path = cache.blob_path(hex_of(digest, ref=ref))
    return path.is_file() and path.stat().st_size == size


def _remember(cache: Cache, digests: Sequence[str], ref: RegistryRef) -> None:
    """Record that ``ref``'s repository holds these blobs (hints for cross-repository mounts)."""
    where = f"{ref.registry}/{ref.repository}"
    for digest in digests:
        key = hex_of(digest, ref=ref)
        old = cache.read_meta(SOURCES, key)
        known: list[str] = json.loads(old) if old else []
        if where not in known:
            cache.write_meta(SOURCES, key, json.dumps([where, *known][:8]).encode())


def _sources(cache: Cache | None, digest: str, ref: RegistryRef) -> list[str]:
    """Other repositories of ``ref``'s registry that are known to hold ``digest``."""
    if cache is None:
        return []
    raw = cache.read_meta(SOURCES, hex_of(digest, ref=ref))
    prefix = f"{ref.registry}/"
    out = [w.removeprefix(prefix) for w in (json.loads(raw) if raw else []) if w.startswith(prefix)]
    return [repo for repo in out if repo != ref.repository]


# -- push ----------------------------------------------------------------------------------------


def push(
    images: Sequence[Image],
    ref: RegistryRef,
    *,
    http: Http,
    insecure: Sequence[str] = (),
    credentials: Credentials | None = None,
    cache: Cache | None = None,
    report: Reporter | None = None,
    chunked_above: int = 32 << 20,
    chunk_size: int = 16 << 20,
    jobs: int = 4,
) -> str:
    """Push ``images`` to ``ref`` (a tag); return ``registry/repository@sha256:...``.

    One image: its manifest is put by tag.  Several (one per platform): each manifest by
    digest, then an index by tag.  Blobs larger than ``chunked_above`` go up in chunks of
    ``chunk_size``.  With ``cache``, blobs are mounted from repositories known to hold them.
    """
    report = report or Quiet()
    if not images:
        raise ValueError("push needs at least one image")
    if ref.digest:
        raise RegistryError(
            "an image is pushed to a tag, not to a digest",
            ref=ref,
            doing=f"pushing to {ref}",
            hint=f"drop the @{ref.digest} part",
        )
    if len({str(i.platform) for i in images}) != len(images):
        raise ValueError("several images for the same platform")
    blobs: dict[str, tuple[int, Callable[[], BinaryIO | bytes], str]] = {}
    for img in images:
        for layer in img.layers:
            blobs[layer.digest] = (layer.size, layer.open, f"layer {layer.digest[7:19]}")
        cfg = img.config_descriptor
        blobs[cfg.digest] = (cfg.size, _const(img.config_bytes), f"config {cfg.digest[7:19]}")
    mounts = {d: _sources(cache, d, ref) for d in blobs}
    scopes = [f"repository:{ref.repository}:pull,push"]
    scopes += sorted({f"repository:{repo}:pull" for repos in mounts.values() for repo in repos})
    sess = Session(
        ref,
        http=http,
        insecure=insecure,
        credentials=Credentials.from_env() if credentials is None else credentials,
        scopes=scopes,
        op=f"pushing to {ref}",
    )
    report.step(f"pushing to {ref}")
    up = Uploader(sess, report=report, chunked_above=chunked_above, chunk_size=chunk_size)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(blobs)))) as pool:
        outcomes = list(pool.map(lambda d: up.blob(d, *blobs[d], mounts[d]), blobs))
    if len(images) == 1:
        digest = _put_manifest(sess, ref.tag or "latest", images[0].media_type, images[0].manifest_bytes)
    else:
        for img in images:
            _put_manifest(sess, img.digest, img.media_type, img.manifest_bytes)
        media, data = _index(images, ref)
        digest = _put_manifest(sess, ref.tag or "latest", media, data)
    if cache is not None:
        _remember(cache, list(blobs), ref)
    counts = {k: outcomes.count(k) for k in ("uploaded", "mounted", "present")}
    report.done(
        f"pushed {ref.registry}/{ref.repository}@{digest} "
        f"({counts['uploaded']} blobs uploaded, {counts['mounted']} mounted, {counts['present']} present)"
    )
    return f"{ref.registry}/{ref.repository}@{digest}"


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _index(images: Sequence[Image], ref: RegistryRef) -> tuple[str, bytes]:
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


def _put_manifest(sess: Session, reference: str, media: str, data: bytes) -> str:
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
