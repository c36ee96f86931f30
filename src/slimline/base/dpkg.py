"""The Debian packages a base image holds, read from its dpkg records.

Contract of :func:`installed`: the names recorded in ``var/lib/dpkg/status`` (Debian and
Ubuntu images, entries whose status is "install ok installed") and in
``var/lib/dpkg/status.d/<name>`` (distroless and slimline's own bases), across all layers;
empty for bases without dpkg records.  Memoised in the cache by the image's config digest,
since reading means decompressing every base layer once.
"""

from __future__ import annotations

import hashlib
import json
import posixpath

from slimline import layers
from slimline.cache.store import Cache
from slimline.oci.image import Image

__all__ = ["installed"]

_STATUS = "var/lib/dpkg/status"
_STATUS_D = "var/lib/dpkg/status.d/"


def _from_status(text: str) -> set[str]:
    out: set[str] = set()
    for stanza in text.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith(" ")
        )
        name = fields.get("Package", "").strip()
        status = fields.get("Status", "install ok installed").strip()
        if name and status.endswith("installed") and not status.endswith("not-installed"):
            out.add(name.split(":")[0])
    return out


def installed(image: Image, *, cache: Cache) -> frozenset[str]:
    key = hashlib.sha256(image.config_bytes).hexdigest()
    hit = cache.read_meta("dpkg-installed", key)
    if hit is not None:
        return frozenset(json.loads(hit))
    found: set[str] = set()
    for name, member, tar in layers.walk(image.layers):
        if name.startswith(_STATUS_D) and member.isfile():
            base = posixpath.basename(name)
            if "." not in base:  # skip <pkg>.md5sums and friends
                found.add(base.split(":")[0])
        elif name == _STATUS and member.isfile():
            f = tar.extractfile(member)
            if f is not None:
                found |= _from_status(f.read().decode("utf-8", "replace"))
    cache.write_meta("dpkg-installed", key, json.dumps(sorted(found)).encode())
    return frozenset(found)
