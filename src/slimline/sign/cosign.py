"""Signatures of images stored as cosign stores them, and checked.

Layout (what ``cosign verify --key`` reads): for each image manifest digest ``sha256:<hex>``
slimline signs, a manifest tagged ``sha256-<hex>.sig`` in the same repository or ``oci:``
layout, whose config is a minimal image config (platform ``unknown/unknown``) and whose one
layer is the simple-signing payload (:func:`slimline.sign.payloads.simple_signing`, media type
``application/vnd.dev.cosign.simplesigning.v1+json``), annotated with
``dev.cosignproject.cosign/signature`` = the base64 signature of the payload's bytes.
Attestations (:func:`attestation_image`) are DSSE envelopes as layers of media type
``application/vnd.dsse.envelope.v1+json`` with a ``predicateType`` annotation, tagged
``sha256-<hex>.att``.

Contracts: :func:`sign_outputs` signs the digest each output is pulled by and, for an index,
each platform's manifest; a ``docker-archive:`` or daemon output is reported as unsigned.  Given
the images' documents (their referrers: SBOMs and provenance), it also attests each image with
them: one DSSE envelope per document, whose payload is an in-toto Statement v1 about the image
(the provenance statement as it is; an SBOM as the predicate of a statement with predicate type
``https://cyclonedx.org/bom`` or ``https://spdx.dev/Document``), as ``cosign attest`` writes them.
ECDSA signatures differ per run (Ed25519 ones do not); the images' digests never change.
:func:`check` raises :class:`~slimline.errors.NotVerified` unless a signature layer
stored for the image's digest verifies with the key and its payload names that digest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from collections.abc import Sequence

from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import HashMismatch, NotVerified
from slimline.oci import attached
from slimline.oci.image import Config, History, Image, Layer, Platform
from slimline.oci.reference import LOCALHOST, OciRef, Ref, ReferenceError_, RegistryRef, parse_name
from slimline.oci.referrers import Artifact
from slimline.sign.keys import PublicKey, SigningKey
from slimline.sign.payloads import SIMPLE_SIGNING, envelope, signed_digest, simple_signing

__all__ = [
    "ATTESTATION",
    "PREDICATE_TYPES",
    "SIGNATURE_ANNOTATION",
    "attestation_image",
    "check",
    "sign_outputs",
    "signature_image",
]

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
ATTESTATION = "application/vnd.dsse.envelope.v1+json"
_UNKNOWN = Platform(architecture="unknown", os="unknown")


def _artifact(blobs: Sequence[tuple[bytes, str, dict[str, str]]], *, cache: Cache, what: str) -> Image:
    """An image value of ``blobs`` (bytes, media type, annotations) as uncompressed layers."""
    layers: list[Layer] = []
    for data, media, notes in blobs:
        hexdigest, size = cache.put_stream(
            io.BytesIO(data), expected=hashlib.sha256(data).hexdigest(), what=what
        )
        digest = f"sha256:{hexdigest}"
        layers.append(Layer(digest, digest, size, media, cache.blob_path(hexdigest), notes))
    history = tuple(History(created_by=f"slimline: {what}") for _ in layers)
    return Image(platform=_UNKNOWN, config=Config()).append(tuple(layers), history)


def signature_image(reference: str, digest: str, key: SigningKey, *, cache: Cache) -> Image:
    """The ``.sig`` manifest for image ``digest`` in repository ``reference``."""
    payload = simple_signing(reference, digest)
    signature = base64.b64encode(key.sign(payload)).decode()
    return _artifact(
        [(payload, SIMPLE_SIGNING, {SIGNATURE_ANNOTATION: signature})], cache=cache, what="signature"
    )


def attestation_image(envelopes: Sequence[tuple[bytes, str]], *, cache: Cache) -> Image:
    """The ``.att`` manifest of DSSE ``envelopes`` (envelope bytes, predicate type)."""
    blobs = [(e, ATTESTATION, {SIGNATURE_ANNOTATION: "", "predicateType": t}) for e, t in envelopes]
    return _artifact(blobs, cache=cache, what="attestation")


def _repository(ref: Ref, name: str | None) -> str:
    """The ``docker-reference`` signed: the registry repository, or (a layout) the image's full
    name as containerd reads it from the layout (``localhost/app``)."""
    if isinstance(ref, RegistryRef):
        return ref.name
    try:
        return parse_name(name, default_registry=LOCALHOST).name if name else ""
    except ReferenceError_:
        return ""


def sign_outputs(
    images: Sequence[Image],
    refs: Sequence[Ref],
    lines: Sequence[str],
    *,
    key: SigningKey,
    name: str | None,
    ctx: Context,
    documents: Sequence[Artifact] = (),
) -> None:
    """Sign and store, for every output that can hold it (see the module contract); ``lines``
    are what the writers returned, one per output (the digest to pull by, or ``NAME@digest``);
    ``documents``: the images' referrers, attested too."""
    for ref, line in zip(refs, lines, strict=True):
        if not isinstance(ref, OciRef | RegistryRef):
            ctx.report.step(f"note: {ref} cannot hold signatures: not signed")
            continue
        pulled = line.strip().rpartition("@")[2]
        repository = _repository(ref, name)
        for digest in dict.fromkeys([pulled, *(img.digest for img in images)]):
            sig = signature_image(repository, digest, key, cache=ctx.cache)
            attached.write(sig, ref, attached.tag_for(digest, "sig"), ctx=ctx)
            ctx.report.done(f"signed {digest} in {ref} ({attached.tag_for(digest, 'sig')})")
            about = [d for d in documents if d.subject.digest == digest]
            if about:
                envelopes = [_attestation(d, repository, digest, key) for d in about]
                attached.write(
                    attestation_image(envelopes, cache=ctx.cache),
                    ref,
                    attached.tag_for(digest, "att"),
                    ctx=ctx,
                )
                ctx.report.done(f"attested {digest} in {ref} ({len(about)} documents)")


# a document's media type -> the predicate type cosign gives it (provenance states its own)
PREDICATE_TYPES = {
    "application/vnd.cyclonedx+json": "https://cyclonedx.org/bom",
    "application/spdx+json": "https://spdx.dev/Document",
}


def _attestation(document: Artifact, repository: str, digest: str, key: SigningKey) -> tuple[bytes, str]:
    """``(DSSE envelope, predicate type)`` of one document about image ``digest``."""
    if document.artifact_type in PREDICATE_TYPES:
        predicate_type = PREDICATE_TYPES[document.artifact_type]
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": repository, "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": json.loads(document.data),
        }
        payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    else:  # already an in-toto statement about the image (the provenance)
        payload = document.data
        predicate_type = str(json.loads(payload).get("predicateType", ""))
    return envelope(payload, key), predicate_type


def check(ref: Ref, digest: str, key: PublicKey, *, ctx: Context) -> str:
    """The line saying which signature of ``digest`` verified (see the module contract)."""
    tag = attached.tag_for(digest, "sig")
    doing = f"checking the signature of {digest}"
    try:
        found = attached.read(ref, tag, ctx=ctx)
    except HashMismatch as err:
        raise NotVerified([f"{tag} was altered: {err.problem}"], doing=doing) from err
    if found is None:
        raise NotVerified([f"{ref} has no signature for {digest} (no tag {tag})"], doing=doing)
    manifest, blobs = found
    for layer in manifest.get("layers") or []:
        payload = blobs.get(str(layer.get("digest")), b"")
        try:
            signature = base64.b64decode(
                (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION, ""), validate=True
            )
        except (binascii.Error, ValueError):
            continue
        if key.verify(signature, payload) and signed_digest(payload) == digest:
            return f"  signature {tag} verified with the key"
    raise NotVerified([f"no signature in {tag} verifies with the key for {digest}"], doing=doing)
