"""A build cache kept in a repository of an OCI registry (``cache-repo``): records found by key.

Each record is an OCI image manifest tagged ``<kind>-<key>`` (``key``: 64 hex digits) in the
cache repository, with ``artifactType`` :data:`ARTIFACT`; its config blob (:data:`RECORD`, JSON)
holds ``{"kind", "key", "slimline", ...}`` plus what the kind needs (a layer's ``diff_id``, a
wheel's ``filename``, a base's pin); its ``layers`` list the blobs it describes (a layer as it
was pushed, a wheel, a base's layers) or nothing (a record that is only JSON).  Because the
manifest names the blobs, the registry's garbage collection keeps them while the tag exists:
pruning is deleting tags.

Contract of :meth:`CacheRepo.get`: a record is returned only when its manifest, its config (the
kind and key it names) and its blobs check out: each blob is downloaded into the local cache and
verified (``fetch``), or, left on the registry for a cross-repository mount, answered by HEAD;
this cache then records the repository as a place that holds it (pushes mount from there).
Anything else (no tag, a malformed record, a missing blob, other bytes) is counted as
``ignored`` and is a miss: the caller makes the thing and :meth:`CacheRepo.put` writes the record
again.  A read-only cache (``readonly``) is never written.  The shared cache only ever saves
work: when the registry cannot be reached or refuses, one warning is reported and the build
goes on without it.  Writers racing on one key write the same bytes (reproducible builds).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from slimline import __version__
from slimline.context import Context
from slimline.errors import HashMismatch, SlimlineError
from slimline.oci import registry_manifests as manifests
from slimline.oci.credentials import Credentials
from slimline.oci.image import MANIFEST, canonical_json, sha256_digest
from slimline.oci.reference import RegistryRef
from slimline.oci.registry import remember_sources
from slimline.oci.registry_blobs import Uploader, fetch_blob
from slimline.oci.registry_client import RegistryError, Session
from slimline.report import Quiet

__all__ = ["ARTIFACT", "RECORD", "Blob", "CacheRepo", "Counts", "Entry", "Opener", "tag"]

Opener = Callable[[], BinaryIO]  # a fresh stream of a blob's bytes, closed by the caller

ARTIFACT = "application/vnd.slimline.cache.v1"
RECORD = "application/vnd.slimline.cache.record.v1+json"
RECORD_CAP = 64 << 10  # bytes of a record's config read at most
KINDS = frozenset({"layer", "wheel", "infos", "base"})
MAX_BLOBS = 64  # blobs one record may name


@dataclass(frozen=True, slots=True)
class Blob:
    """The blob a record describes, as its descriptor names it."""

    digest: str
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class Entry:
    record: Mapping[str, Any]  # the record's JSON (kind, key, slimline, and the kind's fields)
    blobs: tuple[Blob, ...]
    paths: tuple[
        Path | None, ...
    ]  # each blob in the local cache when fetched; None when left on the registry

    @property
    def blob(self) -> Blob | None:
        """The first (for most kinds, the only) blob."""
        return self.blobs[0] if self.blobs else None

    @property
    def path(self) -> Path | None:
        return self.paths[0] if self.paths else None


@dataclass
class Counts:
    """What the cache repository did for one command (for the report and the benchmarks)."""

    hits: int = 0
    misses: int = 0
    ignored: int = 0  # records found but not usable (missing blob, other bytes, malformed)
    stored: int = 0
    uploaded: int = 0  # bytes of blobs uploaded
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **n: int) -> None:
        with self.lock:
            for k, v in n.items():
                setattr(self, k, getattr(self, k) + v)


def tag(kind: str, key: str) -> str:
    """The tag of the record of ``kind`` under ``key``."""
    if kind not in KINDS or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"not a cache record name: {kind}-{key}")
    return f"{kind}-{key}"


class CacheRepo:
    """The records of one cache repository, read and (unless ``readonly``) written; thread-safe.

    ``fetch``: blobs of records found are downloaded into ``ctx.cache`` (the outputs need their
    bytes); else they stay on the registry and pushes to it mount them."""

    def __init__(
        self,
        ref: RegistryRef,
        *,
        ctx: Context,
        readonly: bool,
        fetch: bool,
        credentials: Credentials | None = None,
    ) -> None:
        self.ref, self.readonly, self.fetch = ref, readonly, fetch
        self.counts = Counts()
        self._ctx = ctx
        self._broken = False
        scope = "pull" if readonly else "pull,push"
        self._sess = Session(
            ref,
            http=ctx.http,
            insecure=ctx.insecure,
            credentials=Credentials.from_env() if credentials is None else credentials,
            scopes=[f"repository:{ref.repository}:{scope}"],
            op=f"using the shared cache {ref.registry}/{ref.repository}",
        )

    def get(self, kind: str, key: str, *, fetch: bool | None = None) -> Entry | None:
        """The record of ``kind`` under ``key`` (see the module's contract), or None."""
        if self._broken:
            return None
        try:
            entry = self._get(kind, key, self.fetch if fetch is None else fetch)
        except _Unusable as why:
            self.counts.add(ignored=1)
            self._ctx.report.step(f"warning: shared cache record {kind}-{key[:12]} ignored: {why}")
            return None
        except SlimlineError as err:
            self._give_up(err, "reading")
            return None
        self.counts.add(**({"hits": 1} if entry is not None else {"misses": 1}))
        return entry

    def put(
        self, kind: str, key: str, record: Mapping[str, Any], blobs: Sequence[tuple[Blob, Opener]] = ()
    ) -> None:
        """Write the record of ``kind`` under ``key`` (and its blobs the registry lacks);
        nothing when read-only or after the registry failed once."""
        if self.readonly or self._broken:
            return
        try:
            self._put(kind, key, record, blobs)
        except SlimlineError as err:
            self._give_up(err, "writing")

    def summary(self) -> str:
        c = self.counts
        return (
            f"shared cache {self.ref.registry}/{self.ref.repository}: {c.hits} found, {c.misses} missing, "
            f"{c.ignored} ignored, {c.stored} stored ({c.uploaded} bytes uploaded)"
            + (" (read-only)" if self.readonly else "")
        )

    # -- reading ---------------------------------------------------------------------------------

    def _get(self, kind: str, key: str, fetch: bool) -> Entry | None:
        cache = self._ctx.cache
        try:
            _, media, body = manifests.get(self._sess, cache, tag(kind, key))
        except RegistryError as err:
            if err.status == 404:
                return None
            raise
        manifest = _manifest(body, media)
        config, layers = manifest["config"], manifest["layers"]
        path = self._fetch(Blob(*_descriptor(config, RECORD_CAP), RECORD), "record")
        record = _record(path.read_bytes(), kind, key)
        blobs = tuple(Blob(*_descriptor(d, None), str(d.get("mediaType"))) for d in layers)
        return Entry(record, blobs, tuple(self._blob(b, fetch) for b in blobs))

    def _blob(self, blob: Blob, fetch: bool) -> Path | None:
        """The record's blob in the local cache (``fetch``), else checked to be on the registry."""
        cache, repo = self._ctx.cache, self.ref.repository
        path: Path | None = None
        if fetch:
            path = self._fetch(blob, "blob")
        else:
            head = self._sess.request(
                "HEAD", f"/v2/{repo}/blobs/{blob.digest}", ok=(200, 404), what="checking a cached blob"
            )
            if head.status != 200:
                raise _Unusable(f"its blob {blob.digest} is missing")
        remember_sources(cache, [blob.digest], self.ref)
        return path

    def _fetch(self, blob: Blob, what: str) -> Path:
        """``blob`` downloaded into the local cache and verified; else :class:`_Unusable`."""
        try:
            return fetch_blob(self._sess, self._ctx.cache, blob.digest, blob.size, f"cached {what}")
        except HashMismatch as err:
            raise _Unusable(f"its {what} does not match its digest {blob.digest}") from err
        except RegistryError as err:
            if err.status == 404:
                raise _Unusable(f"its {what} {blob.digest} is missing") from err
            if "bytes than" in err.problem:  # longer or shorter than its descriptor says
                raise _Unusable(f"its {what} {blob.digest}: {err.problem}") from err
            raise

    # -- writing ---------------------------------------------------------------------------------

    def _put(
        self, kind: str, key: str, record: Mapping[str, Any], blobs: Sequence[tuple[Blob, Opener]]
    ) -> None:
        up = Uploader(self._sess, report=Quiet(), chunked_above=32 << 20, chunk_size=16 << 20)
        data = canonical_json({**record, "kind": kind, "key": key, "slimline": __version__})
        layers: list[dict[str, Any]] = []
        with self._sess.transfer_scope():
            for b, opener in blobs:
                if up.blob(b.digest, b.size, opener, f"cached blob {b.digest[7:19]}", []) == "uploaded":
                    self.counts.add(uploaded=b.size)
                layers.append({"mediaType": b.media_type, "digest": b.digest, "size": b.size})
            digest = sha256_digest(data)
            config = {"mediaType": RECORD, "digest": digest, "size": len(data)}
            if up.blob(digest, len(data), lambda: data, "cache record", []) == "uploaded":
                self.counts.add(uploaded=len(data))
            body = canonical_json(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST,
                    "artifactType": ARTIFACT,
                    "config": config,
                    "layers": layers,
                    "annotations": {"dev.slimline.cache.kind": kind, "dev.slimline.cache.key": key},
                }
            )
            manifests.put(self._sess, tag(kind, key), MANIFEST, body)
        self.counts.add(stored=1)

    def _give_up(self, err: SlimlineError, doing: str) -> None:
        with self.counts.lock:
            if self._broken:
                return
            self._broken = True
        self._ctx.report.step(
            f"warning: {doing} the shared cache {self.ref.registry}/{self.ref.repository} failed, "
            f"building without it: {err.problem}"
        )


class _Unusable(Exception):
    """A record that is there but cannot be used (why in the message)."""


def _manifest(body: bytes, media: str) -> dict[str, Any]:
    try:
        d: object = json.loads(body)
    except ValueError as err:
        raise _Unusable("its manifest is not JSON") from err
    if not isinstance(d, dict):
        raise _Unusable("its manifest is not an object")
    ok = (
        media == MANIFEST
        and d.get("artifactType") == ARTIFACT
        and isinstance(d.get("config"), dict)
        and d["config"].get("mediaType") == RECORD
        and isinstance(d.get("layers"), list)
        and len(d["layers"]) <= MAX_BLOBS
        and all(isinstance(x, dict) for x in d["layers"])
    )
    if not ok:
        raise _Unusable("it is not a slimline cache record")
    return d


def _descriptor(d: Mapping[str, Any], cap: int | None) -> tuple[str, int]:
    digest, size = d.get("digest"), d.get("size")
    if not (isinstance(digest, str) and digest.startswith("sha256:") and len(digest) == 71):
        raise _Unusable(f"it names a blob by {str(digest)[:80]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or (cap is not None and size > cap):
        raise _Unusable(f"it names a blob of {str(size)[:20]} bytes")
    return digest, size


def _record(data: bytes, kind: str, key: str) -> dict[str, Any]:
    try:
        record: object = json.loads(data)
    except ValueError as err:
        raise _Unusable("its record is not JSON") from err
    if not isinstance(record, dict) or record.get("kind") != kind or record.get("key") != key:
        raise _Unusable(f"its record is not the one for {kind}-{key[:12]}")
    return dict(record)
