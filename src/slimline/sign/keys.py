"""Signing keys: ECDSA P-256 or Ed25519, PEM, read with ``cryptography``.

Contract: :func:`load_private` reads a PKCS#8 (or traditional) PEM private key from the path
given, else from ``SLIMLINE_SIGNING_KEY`` (a path, or the PEM itself as CI secrets hold it);
an encrypted key's passphrase comes from ``SLIMLINE_SIGNING_PASSWORD``, else from a prompt
when stdin is a terminal, else it is an error.  Signatures are what cosign makes and checks:
ECDSA over SHA-256, DER-encoded; Ed25519 over the message itself.  :meth:`PublicKey.verify`
returns False for any signature that does not verify (never raises for bad input).  No key
material or passphrase appears in a message.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from slimline.errors import ExitStatus, SlimlineError

__all__ = ["ENV_KEY", "ENV_PASSWORD", "KeyError_", "PublicKey", "SigningKey", "load_private", "load_public"]

ENV_KEY = "SLIMLINE_SIGNING_KEY"
ENV_PASSWORD = "SLIMLINE_SIGNING_PASSWORD"
_KINDS = "an ECDSA P-256 or Ed25519 key in PEM"

Private = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
Public = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class KeyError_(SlimlineError):  # the name KeyError is a builtin
    exit_status = ExitStatus.INPUT

    def __init__(self, problem: str, *, doing: str, hint: str = f"give {_KINDS}") -> None:
        super().__init__(problem, doing=doing, hint=hint)


@dataclass(frozen=True, slots=True)
class PublicKey:
    key: Public

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True, slots=True)
class SigningKey:
    key: Private
    source: str  # where it was read from, for messages ("key.pem", "$SLIMLINE_SIGNING_KEY")

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(data)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())


def _checked(key: object, source: str, doing: str) -> None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return
    raise KeyError_(f"{source} holds a {type(key).__name__.lstrip('_')}, not {_KINDS}", doing=doing)


def _pem(path: Path | None, env: Mapping[str, str], doing: str) -> tuple[bytes, str]:
    if path is None:
        value = env.get(ENV_KEY, "")
        if not value:
            raise KeyError_(
                "no signing key was given", doing=doing, hint=f"give --sign-key PATH or set {ENV_KEY}"
            )
        if value.lstrip().startswith("-----BEGIN"):
            return value.encode(), f"${ENV_KEY}"
        path = Path(value)
    try:
        return path.read_bytes(), str(path)
    except OSError as err:
        raise KeyError_(f"cannot read {path}: {err.strerror or err}", doing=doing) from err


def load_private(
    path: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> SigningKey:
    """The signing key (see the module contract); ``env`` and ``prompt`` default to the process's."""
    env = os.environ if env is None else env
    doing = "reading the signing key"
    data, source = _pem(path, env, doing)
    password: bytes | None = None
    if b"ENCRYPTED" in data:
        if env.get(ENV_PASSWORD) is not None:
            password = env[ENV_PASSWORD].encode()
        elif prompt is not None or sys.stdin.isatty():
            password = (prompt or getpass.getpass)(f"passphrase for {source}: ").encode()
        else:
            raise KeyError_(
                f"{source} is encrypted and no passphrase was given", doing=doing, hint=f"set {ENV_PASSWORD}"
            )
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        wrong = password is not None  # an encrypted key that does not open: the passphrase
        raise KeyError_(
            f"{source}: {'the passphrase is wrong' if wrong else 'not a PEM private key slimline can read'}",
            doing=doing,
        ) from None  # the cause may quote key material
    _checked(key, source, doing)
    return SigningKey(key, source)  # type: ignore[arg-type]  # checked above


def load_public(path: Path) -> PublicKey:
    doing = "reading the public key"
    try:
        data = path.read_bytes()
    except OSError as err:
        raise KeyError_(f"cannot read {path}: {err.strerror or err}", doing=doing) from err
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyError_(f"{path} is not a PEM public key slimline can read", doing=doing) from err
    _checked(key, str(path), doing)
    return PublicKey(key)  # type: ignore[arg-type]  # checked above
