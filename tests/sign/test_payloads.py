"""Signatures and DSSE envelopes made with test keys, checked by an independent library
(securesystemslib), and refused by it and by slimline after one byte of the payload changes."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from securesystemslib import dsse
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import Signature, SSlibKey  # type: ignore[attr-defined]  # re-exported without __all__

from slimline.errors import NotVerified
from slimline.sign import keys, payloads
from tests.sign.helpers import write_keys

DIGEST = "sha256:" + "ab" * 32
STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": "ab" * 32}}],
    }
).encode()


def _independent(public: Path) -> SSlibKey:
    """The key as securesystemslib reads it, under the key id cosign's signatures carry ("")."""
    key = SSlibKey.from_crypto(serialization.load_pem_public_key(public.read_bytes()))
    return SSlibKey("", key.keytype, key.scheme, key.keyval)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_signature_verifies_independently_and_not_after_one_byte(tmp_path: Path, kind: str) -> None:
    private, public = write_keys(tmp_path, kind)
    key = keys.load_private(private, env={})
    payload = payloads.simple_signing("127.0.0.1:5000/app", DIGEST)
    signature = key.sign(payload)
    independent = _independent(public)
    independent.verify_signature(Signature("", signature.hex()), payload)
    assert payloads.signed_digest(payload) == DIGEST
    for at in (0, len(payload) // 2, len(payload) - 1):
        with pytest.raises(UnverifiedSignatureError):
            independent.verify_signature(Signature("", signature.hex()), _flip(payload, at))
        assert not keys.load_public(public).verify(signature, _flip(payload, at))


def test_the_payload_is_cosigns_byte_for_byte() -> None:
    assert payloads.simple_signing("reg.example/app", DIGEST) == (
        b'{"critical":{"identity":{"docker-reference":"reg.example/app"},"image":{"docker-manifest-digest":"'
        + DIGEST.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )


@pytest.mark.parametrize("kind", ["ecdsa", "ed25519"])
def test_a_dsse_envelope_verifies_independently_and_not_after_one_byte(tmp_path: Path, kind: str) -> None:
    private, public = write_keys(tmp_path, kind)
    envelope = payloads.envelope(STATEMENT, keys.load_private(private, env={}))
    parsed = dsse.Envelope.from_dict(json.loads(envelope))
    assert parsed.payload_type == payloads.IN_TOTO and parsed.payload == STATEMENT
    parsed.verify([_independent(public)], 1)
    assert payloads.open_envelope(envelope, keys.load_public(public)) == (payloads.IN_TOTO, STATEMENT)

    d = json.loads(envelope)
    d["payload"] = base64.b64encode(_flip(STATEMENT, len(STATEMENT) // 2)).decode()
    tampered = json.dumps(d).encode()
    with pytest.raises(VerificationError):
        dsse.Envelope.from_dict(d).verify([_independent(public)], 1)
    with pytest.raises(NotVerified, match="no signature of the envelope verifies"):
        payloads.open_envelope(tampered, keys.load_public(public))


def test_an_envelope_does_not_verify_with_another_key(tmp_path: Path) -> None:
    private, _ = write_keys(tmp_path, "ecdsa")
    _, other = write_keys(tmp_path, "ed25519")
    envelope = payloads.envelope(STATEMENT, keys.load_private(private, env={}))
    with pytest.raises(NotVerified):
        payloads.open_envelope(envelope, keys.load_public(other))
    with pytest.raises(NotVerified, match="not a DSSE envelope"):
        payloads.open_envelope(b"{}", keys.load_public(other))


def test_keys_come_from_a_path_or_the_environment_with_a_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = write_keys(tmp_path, "ecdsa", password=b"s3cret")
    env = {keys.ENV_KEY: private.read_text(), keys.ENV_PASSWORD: "s3cret"}
    key = keys.load_private(None, env=env)
    assert key.source == "$SLIMLINE_SIGNING_KEY"
    assert keys.load_public(public).verify(key.sign(b"x"), b"x")
    assert keys.load_private(None, env={keys.ENV_KEY: str(private)}, prompt=lambda _: "s3cret").source == str(
        private
    )
    with pytest.raises(keys.KeyError_, match="the passphrase is wrong") as err:
        keys.load_private(private, env={keys.ENV_PASSWORD: "wrong"})
    assert "s3cret" not in str(err.value) and "BEGIN" not in str(err.value)
    monkeypatch.setattr("sys.stdin", io.StringIO())  # not a terminal: nobody to ask
    with pytest.raises(keys.KeyError_, match="no passphrase was given"):
        keys.load_private(private, env={})
    with pytest.raises(keys.KeyError_, match="no signing key was given"):
        keys.load_private(None, env={})


@pytest.mark.parametrize("kind", ["rsa", "p384"])
def test_other_keys_are_refused(tmp_path: Path, kind: str) -> None:
    private, public = write_keys(tmp_path, kind)
    with pytest.raises(keys.KeyError_, match="not an ECDSA P-256 or Ed25519 key"):
        keys.load_private(private, env={})
    with pytest.raises(keys.KeyError_, match="not an ECDSA P-256 or Ed25519 key"):
        keys.load_public(public)
