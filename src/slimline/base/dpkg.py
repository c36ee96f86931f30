"""The Debian packages a base image holds, read from its dpkg records.

Contract of :func:`installed`: the names recorded in ``var/lib/dpkg/status`` (Debian and
Ubuntu images, entries whose status is "install ok installed") and in
``var/lib/dpkg/status.d/<name>`` (distroless and slimline's own bases), as a container of the
image sees them (:func:`slimline.layers.read.final_files`: a record a later layer replaced or
removed does not count); empty for bases without dpkg records.  Memoised in the cache by the
image's config digest, since reading means decompressing every base layer once; a base
slimline assembles has its names remembered as it is made (:func:`remember`).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable

from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.layers.filetree import Kind
from slimline.layers.read import final_files
from slimline.oci.image import Image

__all__ = ["installed", "remember"]

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
    hit = cache.read_meta(keys.DPKG_INSTALLED, _key(image))
    if hit is not None:
        return frozenset(json.loads(hit))
    found: set[str] = set()
    view = final_files(image.layers, wanted=lambda path: path == _STATUS, max_size=_MAX_STATUS)
    for name, entry in view.items():
        if entry.kind is not Kind.FILE:
            continue
        if name.startswith(_STATUS_D):
            found |= _from_status_d(name)
        elif name == _STATUS and entry.data is not None:
            found |= _from_status(entry.data.decode("utf-8", "replace"))
    _write(image, found, cache)
    return frozenset(found)


def remember(image: Image, files: Iterable[str], *, cache: Cache) -> None:
    """Memoise what :func:`installed` gives for ``image`` when the regular files of its final
    file system are exactly ``files`` (as a base slimline assembles, in layers that add files
    and remove none).  Nothing is remembered when they hold a ``status`` file: it is read."""
    found: set[str] = set()
    for name in files:
        if name == _STATUS:
            return
        if name.startswith(_STATUS_D):
            found |= _from_status_d(name)
    _write(image, found, cache)


def _from_status_d(name: str) -> set[str]:
    base = posixpath.basename(name)
    if base.endswith(_NOT_PACKAGES):  # <pkg>.md5sums and friends; names may hold dots
        return set()
    return {base.split(":")[0]}


def _key(image: Image) -> str:
    return keys.key("dpkg-installed", _FORMAT, hashlib.sha256(image.config_bytes).hexdigest())


def _write(image: Image, found: set[str], cache: Cache) -> None:
    cache.write_meta(keys.DPKG_INSTALLED, _key(image), json.dumps(sorted(found)).encode())
