"""Documents attached to an image as OCI 1.1 referrers: artifact manifests whose ``subject`` is it.

An :class:`Artifact` is one document (an SBOM, a provenance statement) for one image manifest:
its manifest has ``artifactType`` = the document's media type, the empty config, the document
as its one layer (titled), the image as ``subject`` and the build time as ``created``; the same
document for the same image gives the same manifest bytes.

Where they go:

* an OCI layout (:func:`layout_entries`): the artifact manifests and blobs in ``blobs/``, and
  for each image an image index listing its referrers (with ``artifactType`` and annotations),
  tagged ``sha256-<hex of the image manifest>`` in ``index.json`` (the distribution spec's
  fallback tag scheme, so ``umoci ls`` and ``skopeo inspect oci:DIR:sha256-<hex>`` find them;
  :func:`find` is slimline's own reader);
* a registry (:func:`push`): the blobs and the manifests by digest; a registry that answers the
  manifest's ``PUT`` with ``OCI-Subject`` serves them through its referrers API, for any other
  the fallback tag's index is read (if there), our descriptors merged in, and put back;
* docker-archive and daemon outputs cannot hold them: :mod:`slimline.oci.publish` says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimline.oci.image import INDEX, MANIFEST, Descriptor, canonical_json, sha256_digest

if TYPE_CHECKING:
    from slimline.oci.registry_blobs import Uploader
    from slimline.oci.registry_client import Session

__all__ = ["EMPTY", "Artifact", "fallback_tag", "find", "is_referrers_tag", "layout_entries", "push"]

EMPTY = Descriptor("application/vnd.oci.empty.v1+json", sha256_digest(b"{}"), 2)
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "org.opencontainers.image.created"
MAX_REFERRERS = 1 << 20  # bytes of an existing fallback index read from a registry


@dataclass(frozen=True)
class Artifact:
    subject: Descriptor  # the image manifest it is about (media type, digest, size)
    artifact_type: str  # the document's media type
    data: bytes
    title: str  # the document's file name
    created: str  # RFC 3339

    @cached_property
    def blob(self) -> Descriptor:
        return Descriptor(self.artifact_type, sha256_digest(self.data), len(self.data), {TITLE: self.title})

    @cached_property
    def manifest_bytes(self) -> bytes:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": self.artifact_type,
                "config": EMPTY.to_json(),
                "layers": [self.blob.to_json()],
                "subject": Descriptor(
                    self.subject.media_type, self.subject.digest, self.subject.size
                ).to_json(),
                "annotations": {CREATED: self.created},
            }
        )

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    def descriptor(self) -> dict[str, Any]:
        """How a referrers list names it (with ``artifactType`` and the manifest's annotations)."""
        return {
            "mediaType": MANIFEST,
            "digest": self.digest,
            "size": len(self.manifest_bytes),
            "artifactType": self.artifact_type,
            "annotations": {CREATED: self.created},
        }


def fallback_tag(digest: str) -> str:
    """The distribution spec's tag for the referrers of ``digest`` (``sha256-<hex>``)."""
    return digest.replace(":", "-", 1)


def is_referrers_tag(tag: str | None) -> bool:
    """Whether ``tag`` is a :func:`fallback_tag` (names referrers, not an image)."""
    return tag is not None and re.fullmatch(r"sha256-[0-9a-f]{64}", tag) is not None


def referrers_index(descriptors: Sequence[Mapping[str, Any]]) -> bytes:
    return canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": list(descriptors)})


def _by_subject(artifacts: Sequence[Artifact]) -> dict[str, list[Artifact]]:
    out: dict[str, list[Artifact]] = {}
    for a in artifacts:
        out.setdefault(a.subject.digest, []).append(a)
    return out


def layout_entries(
    artifacts: Sequence[Artifact],
) -> tuple[dict[str, bytes], list[tuple[str, dict[str, Any]]]]:
    """(blobs by digest, [(tag, index.json entry)]) that put ``artifacts`` into an OCI layout."""
    blobs: dict[str, bytes] = {EMPTY.digest: b"{}"}
    entries = []
    for subject, group in sorted(_by_subject(artifacts).items()):
        for a in group:
            blobs[a.blob.digest] = a.data
            blobs[a.digest] = a.manifest_bytes
        index = referrers_index([a.descriptor() for a in group])
        blobs[sha256_digest(index)] = index
        tag = fallback_tag(subject)
        entries.append((tag, Descriptor(INDEX, sha256_digest(index), len(index), {REF_NAME: tag}).to_json()))
    return blobs, entries


def find(root: Path, digest: str) -> list[dict[str, Any]]:
    """The referrers of ``digest`` in the OCI layout ``root`` (descriptors of their manifests)."""
    index = json.loads((root / "index.json").read_bytes())
    tag = fallback_tag(digest)
    out: list[dict[str, Any]] = []
    for entry in index.get("manifests") or ():
        if (entry.get("annotations") or {}).get(REF_NAME) != tag:
            continue
        blob = root / "blobs" / "sha256" / str(entry["digest"]).removeprefix("sha256:")
        if blob.stat().st_size <= MAX_REFERRERS:
            out.extend(json.loads(blob.read_bytes()).get("manifests") or ())
    return out


def push(sess: Session, up: Uploader, artifacts: Sequence[Artifact]) -> str:
    """Put ``artifacts`` into the session's repository; "referrers API" or "fallback tag"."""
    repo = sess.ref.repository
    for digest, data in {EMPTY.digest: b"{}", **{a.blob.digest: a.data for a in artifacts}}.items():
        up.blob(digest, len(data), _const(data), f"referrer blob {digest[7:19]}", ())
    supported = True
    for a in artifacts:
        resp = sess.request(
            "PUT",
            f"/v2/{repo}/manifests/{a.digest}",
            headers={"Content-Type": MANIFEST},
            body=a.manifest_bytes,
            ok=(200, 201),
            what=f"putting the referrer {a.digest[7:19]} ({a.title})",
        )
        supported = supported and resp.headers.get("OCI-Subject") == a.subject.digest
    if supported:
        return "referrers API"
    for subject, group in sorted(_by_subject(artifacts).items()):
        _put_fallback(sess, subject, group)
    return "fallback tag"


def _put_fallback(sess: Session, subject: str, group: Sequence[Artifact]) -> None:
    """Merge ``group`` into the fallback tag's index of ``subject`` (read first, if there)."""
    from slimline.http import MANIFEST_CAP, read_capped

    repo, tag = sess.ref.repository, fallback_tag(subject)
    resp = sess.request(
        "GET",
        f"/v2/{repo}/manifests/{tag}",
        headers={"Accept": INDEX},
        ok=(200, 404),
        stream=True,
        what=f"reading the referrers tag {tag}",
    )
    kept: list[Any] = []
    if resp.status == 200:
        body = read_capped(resp, MANIFEST_CAP, url=f"{sess.base}/v2/{repo}/manifests/{tag}", decode=False)
        try:
            kept = [m for m in json.loads(body).get("manifests") or () if isinstance(m, dict)]
        except (ValueError, AttributeError):
            kept = []  # not an index: replaced by ours
    else:
        resp.release_conn()
    ours = {a.digest for a in group}
    merged = [m for m in kept if m.get("digest") not in ours] + [a.descriptor() for a in group]
    sess.request(
        "PUT",
        f"/v2/{repo}/manifests/{tag}",
        headers={"Content-Type": INDEX},
        body=referrers_index(merged),
        ok=(200, 201),
        what=f"putting the referrers tag {tag}",
    )


def _const(data: bytes) -> Any:
    return lambda: data
