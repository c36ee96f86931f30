"""The parts of a document that only the finished image knows, and how they are put in.

A document is made once from :class:`~slimline.attest.facts.Facts` with a placeholder in each
slot (the image's digest, the SBOM serial number derived from it, the project's git revision)
and kept; :func:`fill` puts the real values in by text replacement.  The placeholders are
valid values of their kind (hex, a UUID), so the libraries accept the template, and the values
put in need no JSON escaping (hex digits and dashes only), so a filled template is exactly the
document the library would have written with them.  A rebuild from the memo fills the kept
template: it loads no document library.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["DIGEST", "REVISION", "SERIAL", "fill", "serial_of"]

DIGEST = "sha256:" + "5117" * 16  # the image's manifest digest
SERIAL = "5117a000-5117-4117-8117-5117a0005117"  # the SBOM's serial number (a UUID)
REVISION = "5117" * 10  # the project's git revision

_HEX = re.compile(r"[0-9a-f]{40,64}")


def serial_of(digest: str) -> str:
    """A UUID (version 5 layout) derived from the image's digest: the same image, the same serial."""
    h = bytearray(hashlib.sha256(b"slimline sbom serial\0" + digest.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def fill(template: str, *, digest: str, revision: str | None) -> str:
    """``template`` with the image's ``digest`` (``sha256:<hex>``) and the git ``revision`` in its slots."""
    if not _HEX.fullmatch(digest.removeprefix("sha256:")) or not digest.startswith("sha256:"):
        raise ValueError(f"not an image digest: {digest!r}")
    if revision is not None and not _HEX.fullmatch(revision):
        raise ValueError(f"not a git revision: {revision!r}")
    text = template.replace(DIGEST, digest).replace(DIGEST.removeprefix("sha256:"), digest[7:])
    text = text.replace(SERIAL, serial_of(digest))
    return text.replace(REVISION, revision) if revision is not None else text
