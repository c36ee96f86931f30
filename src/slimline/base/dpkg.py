"""The Debian packages a base image holds, read from its dpkg records.

Contract of :func:`installed`: the names recorded in ``var/lib/dpkg/status`` (Debian and
Ubuntu images, entries whose status is "install ok installed") and in
``var/lib/dpkg/status.d/<name>`` (distroless and slimline's own bases), as a container of the
image sees them (:func:`slimline.layers.read.final_files`: a record a later layer replaced or
removed does not count); empty for bases without dpkg records.  Memoised in the cache by the
image's config digest, since reading means decompressing every base layer once.
"""

from __future__ import annotations

import hashlib
import json
import posixpath

from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.layers.filetree import Kind
from slimline.layers.read import final_files
from slimline.oci.image import Image

__all__ = ["installed"]

_STATUS = "var/lib/dpkg/status"
_STATUS_D = "var/lib/dpkg/status.d/"
_MAX_STATUS = 64 << 20  # a bigger status file is not read (its packages are not known)


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


_FORMAT = 2  # 2: package names with dots (python3.11-minimal) are read from status.d
_NOT_PACKAGES = (".md5sums", ".sha256sums", ".list", ".conffiles", ".shlibs", ".symbols", ".triggers")


def installed(image: Image, *, cache: Cache) -> frozenset[str]:
    key = keys.key("dpkg-installed", _FORMAT, hashlib.sha256(image.config_bytes).hexdigest())
    hit = cache.read_meta(keys.DPKG_INSTALLED, key)
    if hit is not None:
        return frozenset(json.loads(hit))
    found: set[str] = set()
    view = final_files(image.layers, wanted=lambda path: path == _STATUS, max_size=_MAX_STATUS)
    for name, entry in view.items():
        if entry.kind is not Kind.FILE:
            continue
        if name.startswith(_STATUS_D):
            base = posixpath.basename(name)
            if not base.endswith(_NOT_PACKAGES):  # <pkg>.md5sums and friends; names may hold dots
                found.add(base.split(":")[0])
        elif name == _STATUS and entry.data is not None:
            found |= _from_status(entry.data.decode("utf-8", "replace"))
    cache.write_meta(keys.DPKG_INSTALLED, key, json.dumps(sorted(found)).encode())
    return frozenset(found)
