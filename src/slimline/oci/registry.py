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

Both take a :class:`~slimline.context.Context`: its cache holds the blobs and what was learnt
about tags and repositories, its reporter the progress, its HTTP client and insecure hosts the
transport.  Transport: HTTPS verified with the system trust store.  Loopback hosts may fall
back to plain HTTP; hosts named in ``ctx.insecure`` may fall back to unverified TLS, then plain
HTTP.  Connection errors, 429 and 5xx are retried by :class:`slimline.http.Http` (honouring
``Retry-After``); whatever still fails becomes a :class:`RegistryError` that says what failed,
on which registry, and what to check.  No credential is ever logged or put in a message.

The layers below: :mod:`~slimline.oci.registry_client` (the session),
:mod:`~slimline.oci.registry_blobs` and :mod:`~slimline.oci.registry_manifests` (moving them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.http import IMAGE_CONFIG_CAP
from slimline.oci import diffid
from slimline.oci import registry_manifests as manifests
from slimline.oci.credentials import Credentials
from slimline.oci.image import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX,
    MANIFEST,
    Image,
    Platform,
    choose_manifest,
)
from slimline.oci.parse import HINT, LAYER_TYPES, ImageFormatError, image_from_json
from slimline.oci.reference import RegistryRef
from slimline.oci.referrers import Artifact
from slimline.oci.referrers import push as attach
from slimline.oci.registry_blobs import Uploader, fetch_blob
from slimline.oci.registry_client import RegistryError, Session, hex_of

__all__ = ["RegistryError", "RegistryRef", "pull", "push", "remember_sources"]

Blob = tuple[str, int, str]  # digest, size, what it is (for messages)
Upload = tuple[int, Callable[[], BinaryIO | bytes], str]  # size, opener, what it is
SOURCES = keys.REGISTRY_SOURCES  # which repositories hold a blob (for mounts)
TAGS = keys.REGISTRY_TAGS  # tag -> digest, and when it was resolved


# -- pull ----------------------------------------------------------------------------------------


def pull(
    ref: RegistryRef,
    *,
    platform: Platform,
    ctx: Context,
    credentials: Credentials | None = None,
    max_age: float | None = None,
    jobs: int = 4,
) -> Image:
    """The image for ``platform`` named by ``ref``, with every blob in ``ctx.cache``.

    A tag is resolved by the registry on every call, unless ``max_age`` is given and this cache
    resolved the same tag less than ``max_age`` seconds ago: then, as for a pinned digest, a
    fully cached image needs no request at all.  ``credentials`` default to the user's auth
    files (:meth:`Credentials.from_env`); ``jobs`` blobs are downloaded at a time.
    """
    sess = _session(ref, ctx, credentials, scopes=[f"repository:{ref.repository}:pull"], op=f"pulling {ref}")
    digest, media, body = _named_manifest(sess, ctx.cache, max_age)
    if media in (INDEX, DOCKER_LIST):
        digest, media, body = _platform_manifest(sess, ctx.cache, body, platform)
    blobs = _blobs_of(ref, digest, media, body)
    _fetch_missing(sess, ctx, blobs, jobs=jobs)
    image = _image(ref, ctx.cache, digest, body, config=blobs[0][0], platform=platform)
    diffid.verify(image.layers, cache=ctx.cache, source=str(ref), jobs=jobs)
    remember_sources(ctx.cache, [d for d, _, _ in blobs], ref)
    ctx.report.detail(f"{ref}: {digest}")
    return image


def _session(
    ref: RegistryRef, ctx: Context, credentials: Credentials | None, *, scopes: list[str], op: str
) -> Session:
    return Session(
        ref,
        http=ctx.http,
        insecure=ctx.insecure,
        credentials=Credentials.from_env() if credentials is None else credentials,
        scopes=scopes,
        op=op,
    )


def _named_manifest(sess: Session, cache: Cache, max_age: float | None) -> tuple[str, str, bytes]:
    """(digest, media type, bytes) of what ``sess.ref`` names; a tag the registry resolved is
    remembered with the time (see :func:`_resolved`)."""
    ref = sess.ref
    reference = _resolved(cache, ref, max_age) or ref.reference
    try:
        digest, media, body = manifests.get(sess, cache, reference)
    except RegistryError as err:
        if err.status == 404:
            raise _missing(sess, err) from err
        raise
    if not ref.digest and reference == ref.reference:
        cache.write_meta(TAGS, _tag_key(ref), json.dumps({"digest": digest, "at": time.time()}).encode())
    return digest, media, body


def _platform_manifest(
    sess: Session, cache: Cache, body: bytes, platform: Platform
) -> tuple[str, str, bytes]:
    """(digest, media type, bytes) of the manifest for ``platform`` that the index ``body`` lists."""
    ref = sess.ref
    index = manifests.json_object(body, ref, "image index")
    entry = choose_manifest(index, platform)
    if entry is None:
        listed = index.get("manifests")
        have = sorted(
            {
                _platform_text(m["platform"])
                for m in listed
                if isinstance(m, dict) and isinstance(m.get("platform"), dict)
            }
            if isinstance(listed, list)
            else set()
        )
        raise RegistryError(
            f"{ref} has no image for {platform} (it has: {', '.join(have) or 'none'})",
            ref=ref,
            doing=f"pulling {ref}",
            hint="choose another --platform or another base",
        )
    return manifests.get(sess, cache, "sha256:" + hex_of(entry.get("digest"), ref=ref))


def _blobs_of(ref: RegistryRef, digest: str, media: str, body: bytes) -> list[Blob]:
    """The blobs the image manifest ``body`` names: its config first, then its layers."""
    if media not in (MANIFEST, DOCKER_MANIFEST):
        raise RegistryError(
            f"{ref} is a {media}, not an image",
            ref=ref,
            doing=f"pulling {ref}",
            hint="name an image (a container image manifest or index)",
        )
    manifest = manifests.json_object(body, ref, "manifest")
    try:
        cfg = manifest["config"]
        blobs = [(_digest(cfg["digest"], ref), _size(cfg["size"]), "config")]
        blobs += [
            (_digest(d["digest"], ref), _size(d["size"]), f"layer {d['digest']}") for d in manifest["layers"]
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise RegistryError(
            f"the manifest {digest} is malformed ({err!r})", ref=ref, doing=f"pulling {ref}"
        ) from err
    _check_before_download(ref, digest, manifest, config_size=blobs[0][1])
    return blobs


def _check_before_download(
    ref: RegistryRef, digest: str, manifest: dict[str, Any], *, config_size: int
) -> None:
    """Refuse what would be refused anyway once downloaded: layers slimline cannot read, a config
    too big to read."""
    types = [d.get("mediaType") for d in manifest["layers"]]
    if unknown := [t for t in types if t not in LAYER_TYPES]:
        raise RegistryError(
            f"the manifest {digest} lists a layer of media type {str(unknown[0])[:100]!r}, "
            "not one slimline reads (a tar, gzip or zstd layer)",
            ref=ref,
            doing=f"pulling {ref}",
        )
    if config_size > IMAGE_CONFIG_CAP.bytes:  # read whole into memory later: refused before download
        raise RegistryError(
            f"the manifest {digest} names a config of {config_size} bytes, larger than the "
            f"{IMAGE_CONFIG_CAP.bytes} bytes slimline reads for {IMAGE_CONFIG_CAP.what}",
            ref=ref,
            doing=f"pulling {ref}",
            hint="the image or the registry is broken or hostile; use another image",
        )


def _digest(value: object, ref: RegistryRef) -> str:
    return "sha256:" + hex_of(value, ref=ref)


def _size(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"size {value!r} is not a number of bytes")
    return value


def _fetch_missing(sess: Session, ctx: Context, blobs: list[Blob], *, jobs: int) -> None:
    """Download the blobs the cache lacks, ``jobs`` at a time."""
    ref = sess.ref
    missing = [b for b in blobs if not _cached(ctx.cache, b[0], b[1], ref=ref)]
    if missing:
        ctx.report.detail(f"{ref}: fetching {len(missing)} of {len(blobs)} blobs")
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(missing)))) as pool:
            list(pool.map(lambda b: fetch_blob(sess, ctx.cache, *b), missing))


def _image(
    ref: RegistryRef, cache: Cache, digest: str, body: bytes, *, config: str, platform: Platform
) -> Image:
    """The image of the manifest ``body`` (``digest``), its blobs in ``cache``, checked to be for
    ``platform``."""
    config_bytes = cache.blob_path(hex_of(config, ref=ref)).read_bytes()
    try:
        image = image_from_json(body, config_bytes, blob_path=lambda d: cache.blob_path(hex_of(d, ref=ref)))
        image = dataclasses.replace(image, origin=digest)
    except ImageFormatError as err:
        raise RegistryError(str(err), ref=ref, doing=f"reading the image {ref}", hint=HINT) from err
    got = image.platform
    if (got.os, got.architecture) != (platform.os, platform.architecture):
        raise RegistryError(
            f"{ref} is an image for {got}, not {platform}",
            ref=ref,
            doing=f"pulling {ref}",
            hint="choose another --platform or a multi-platform base",
        )
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


def _cached(cache: Cache, digest: str, size: int, *, ref: RegistryRef) -> bool:
    """Blobs in the store were hashed as they were written (the cache's contract): check the size only."""
    path = cache.blob_path(hex_of(digest, ref=ref))
    return path.is_file() and path.stat().st_size == size


def remember_sources(cache: Cache, digests: Sequence[str], ref: RegistryRef) -> None:
    """Record that ``ref``'s repository holds these blobs (hints for cross-repository mounts)."""
    where = f"{ref.registry}/{ref.repository}"
    for digest in digests:
        key = hex_of(digest, ref=ref)
        old = cache.read_meta(SOURCES, key)
        known: list[str] = json.loads(old) if old else []
        if where not in known:
            cache.write_meta(SOURCES, key, json.dumps([where, *known][:8]).encode())


def _sources(cache: Cache, digest: str, ref: RegistryRef) -> list[str]:
    """Other repositories of ``ref``'s registry that are known to hold ``digest``."""
    raw = cache.read_meta(SOURCES, hex_of(digest, ref=ref))
    prefix = f"{ref.registry}/"
    out = [w.removeprefix(prefix) for w in (json.loads(raw) if raw else []) if w.startswith(prefix)]
    return [repo for repo in out if repo != ref.repository]


# -- push ----------------------------------------------------------------------------------------


def push(
    images: Sequence[Image],
    ref: RegistryRef,
    *,
    ctx: Context,
    credentials: Credentials | None = None,
    chunked_above: int = 32 << 20,
    chunk_size: int = 16 << 20,
    jobs: int = 4,
    referrers: Sequence[Artifact] = (),
) -> str:
    """Push ``images`` to ``ref`` (a tag); return ``registry/repository@sha256:...``.

    One image: its manifest is put by tag.  Several (one per platform): each manifest by
    digest, then an index by tag.  Blobs larger than ``chunked_above`` go up in chunks of
    ``chunk_size``, ``jobs`` blobs at a time.  Blobs are mounted from repositories ``ctx.cache``
    knows to hold them, and it learns that ``ref``'s repository now holds every blob pushed.
    """
    _check_pushable(images, ref)
    blobs = _blobs_to_push(images)
    mounts = {d: _sources(ctx.cache, d, ref) for d in blobs}
    scopes = [f"repository:{ref.repository}:pull,push"]
    scopes += sorted({f"repository:{repo}:pull" for repos in mounts.values() for repo in repos})
    sess = _session(ref, ctx, credentials, scopes=scopes, op=f"pushing to {ref}")
    ctx.report.step(f"pushing to {ref}")
    up = Uploader(sess, report=ctx.report, chunked_above=chunked_above, chunk_size=chunk_size)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(blobs)))) as pool:
        outcomes = list(pool.map(lambda d: up.blob(d, *blobs[d], mounts[d]), blobs))
    digest = _put_manifests(sess, images)
    if referrers:
        how = attach(sess, up, referrers)
        ctx.report.detail(f"{len(referrers)} referrers put ({how})")
    remember_sources(ctx.cache, list(blobs), ref)
    counts = {k: outcomes.count(k) for k in ("uploaded", "mounted", "present")}
    ctx.report.done(
        f"pushed {ref.registry}/{ref.repository}@{digest} "
        f"({counts['uploaded']} blobs uploaded, {counts['mounted']} mounted, {counts['present']} present)"
    )
    return f"{ref.registry}/{ref.repository}@{digest}"


def _check_pushable(images: Sequence[Image], ref: RegistryRef) -> None:
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


def _blobs_to_push(images: Sequence[Image]) -> dict[str, Upload]:
    """digest -> (size, opener, what) of every layer and config, each once."""
    blobs: dict[str, Upload] = {}
    for img in images:
        for layer in img.layers:
            blobs[layer.digest] = (layer.size, layer.open, f"layer {layer.digest[7:19]}")
        cfg = img.config_descriptor
        blobs[cfg.digest] = (cfg.size, _const(img.config_bytes), f"config {cfg.digest[7:19]}")
    return blobs


def _put_manifests(sess: Session, images: Sequence[Image]) -> str:
    """Put one image's manifest by tag, or several by digest and their index by tag; the tag's digest."""
    ref = sess.ref
    if len(images) == 1:
        return manifests.put(sess, ref.tag or "latest", images[0].media_type, images[0].manifest_bytes)
    for img in images:
        manifests.put(sess, img.digest, img.media_type, img.manifest_bytes)
    media, data = manifests.index(images, ref)
    return manifests.put(sess, ref.tag or "latest", media, data)


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data
