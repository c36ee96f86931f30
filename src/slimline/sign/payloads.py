"""What is signed: cosign's simple-signing payload and DSSE envelopes (in-toto statements).

Contracts:

* :func:`simple_signing` is the JSON cosign signs for an image, byte for byte as cosign (Go's
  ``encoding/json``, fields in its struct order) writes it: the image's manifest digest and the
  repository it was pushed to.  :func:`signed_digest` reads the digest back from a payload.
* :func:`envelope` wraps a payload in a DSSE envelope (https://github.com/secure-systems-lab/dsse,
  protocol v1): the signature is over ``PAE(payloadType, payload)``; the envelope is canonical
  JSON with ``keyid`` "" as cosign writes it.  :func:`open_envelope` returns the payload only
  when a signature verifies with the key, else raises :class:`~slimline.errors.NotVerified`.
  The SBOM and provenance attestations go through these (``sha256-<hex>.att``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from slimline.errors import NotVerified
from slimline.sign.keys import PublicKey, SigningKey

__all__ = [
    "IN_TOTO",
    "SIMPLE_SIGNING",
    "envelope",
    "open_envelope",
    "pae",
    "signed_digest",
    "simple_signing",
]

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
_TYPE = "cosign container image signature"


def simple_signing(reference: str, digest: str) -> bytes:
    """cosign's payload for the image ``digest`` in repository ``reference`` (no tag or digest)."""
    d = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": _TYPE,
        },
        "optional": None,
    }
    return json.dumps(d, separators=(",", ":")).encode()


def signed_digest(payload: bytes) -> str | None:
    """The manifest digest a simple-signing payload names, or None when it is not one."""
    try:
        d = json.loads(payload)
        critical = d["critical"]
        if critical["type"] != _TYPE:
            return None
        digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        return None
    return digest if isinstance(digest, str) else None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def envelope(payload: bytes, key: SigningKey, *, payload_type: str = IN_TOTO) -> bytes:
    """A DSSE envelope of ``payload`` signed with ``key`` (JSON bytes)."""
    signature = key.sign(pae(payload_type, payload))
    d = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def open_envelope(data: bytes, key: PublicKey, *, what: str = "the envelope") -> tuple[str, bytes]:
    """(payload type, payload) of a DSSE envelope one of whose signatures verifies with ``key``."""
    doing = f"checking {what}"
    try:
        d: Any = json.loads(data)
        payload_type = d["payloadType"]
        payload = base64.b64decode(d["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in d["signatures"]]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise NotVerified([f"{what} is not a DSSE envelope ({type(err).__name__})"], doing=doing) from err
    if not isinstance(payload_type, str) or not any(
        key.verify(s, pae(payload_type, payload)) for s in signatures
    ):
        raise NotVerified([f"no signature of {what} verifies with the key"], doing=doing)
    return payload_type, payload
