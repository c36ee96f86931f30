"""Who the image runs as: the base's non-root user when it has one.

Contract: :func:`default_user` returns the base config's ``User`` when that is set and not
root; else the numeric uid of a ``nonroot`` (or uid 65532) account in the base's
``/etc/passwd``; else "" (the runtime default, root) — the build reports that case.
Numeric ids are used so that runtimes need not read ``/etc/passwd``.

Cap: ``/etc/passwd`` is read only up to :data:`MAX_PASSWD` bytes (real ones hold a few KiB); a
bigger one stops the build with :class:`~slimline.errors.SlimlineError` asking for the user to
be named (``--user``, ``user =``), rather than quietly running the image as root.
"""

from __future__ import annotations

import hashlib

from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.layers.filetree import Kind
from slimline.layers.read import final_files
from slimline.oci.image import Image

__all__ = ["MAX_PASSWD", "default_user", "passwd_of"]

NONROOT = 65532
MAX_PASSWD = 16 << 20  # a bigger etc/passwd is not read: the user must be named


def passwd_of(image: Image) -> bytes:
    """The ``etc/passwd`` a container of ``image`` sees (whiteouts applied), or b"" when it is
    absent or not a regular file; one of more than :data:`MAX_PASSWD` bytes is an error."""
    view = final_files(image.layers, wanted=lambda path: path == "etc/passwd", max_size=MAX_PASSWD)
    entry = view.get("etc/passwd")
    if entry is None or entry.kind is not Kind.FILE:
        return b""
    if entry.data is None:
        raise SlimlineError(
            f"the base's /etc/passwd is {entry.size} bytes, more than the {MAX_PASSWD} slimline reads "
            "to find its non-root user",
            doing="choosing the user the image runs as",
            hint='name the user: --user UID:GID, or user = "UID:GID" in [tool.slimline]',
        )
    return entry.data


def default_user(image: Image, *, cache: Cache) -> str:
    user = image.config.user
    if user and user.split(":")[0] not in ("0", "root"):
        return user
    key = hashlib.sha256(image.config_bytes).hexdigest()
    hit = cache.read_meta(keys.USERS, key)
    if hit is not None:
        return hit.decode()
    found = ""
    for line in passwd_of(image).decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and (parts[0] == "nonroot" or parts[2] == str(NONROOT)):
            found = f"{parts[2]}:{parts[3]}"
            break
    cache.write_meta(keys.USERS, key, found.encode())
    return found
