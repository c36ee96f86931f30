"""Layer entry names as the OCI image spec reads them: paths inside the root, and whiteouts.

A whiteout ``d/.wh.X`` in a layer removes ``d/X`` (and all below it) of the layers beneath; the
opaque marker ``d/.wh..wh..opq`` hides everything the layers beneath hold below ``d``.  These
helpers are the one place such names are parsed: every reader of a stack of layers
(:func:`slimline.layers.read.final_files`, :mod:`slimline.base.rootfs`) and validation
(:mod:`slimline.oci.validate`) use them.
"""

from __future__ import annotations

from slimline.errors import UnsafePath

__all__ = [
    "OPAQUE_WHITEOUT",
    "WHITEOUT_PREFIX",
    "entry_path",
    "is_malformed_whiteout",
    "is_opaque",
    "is_whiteout",
    "whiteout_target",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_META_PREFIX = ".wh..wh."  # reserved: the opaque marker and AUFS metadata (.wh..wh.plnk, ...)
_MALFORMED = frozenset({".wh.", ".wh..", ".wh..."})  # would name nothing, the directory, its parent


def entry_path(name: str, *, archive: str) -> str:
    """A tar member's name as a path inside the root: relative, without empty or "." components
    and without a trailing "/" ("" for the root itself).  A ".." component anywhere raises
    :class:`~slimline.errors.UnsafePath`: layers from registries are not trusted to stay inside."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(path=name, archive=archive)
    return "/".join(parts)


def is_whiteout(path: str) -> bool:
    """Whether the entry ``path`` (an entry path or a base name) has a whiteout name of any kind
    (plain, opaque, AUFS metadata, malformed): such an entry is never a file of the image."""
    return path.rpartition("/")[2].startswith(WHITEOUT_PREFIX)


def is_opaque(path: str) -> bool:
    """Whether ``path`` is an opaque whiteout: it hides lower layers' entries below its directory."""
    return path.rpartition("/")[2] == OPAQUE_WHITEOUT


def is_malformed_whiteout(path: str) -> bool:
    """Whether ``path`` is a whiteout that names no entry of its directory (``.wh.``, ``.wh..``,
    ``.wh...``).  Readers ignore it (it must never remove the directory or its parent);
    validation reports it."""
    return path.rpartition("/")[2] in _MALFORMED


def whiteout_target(path: str) -> str | None:
    """The path the plain whiteout ``path`` removes (``"a/b"`` for ``"a/.wh.b"``, ``"b"`` for
    ``".wh.b"``); None when ``path`` is not a plain whiteout: an ordinary entry, the opaque
    marker, AUFS metadata or a malformed whiteout.  The result never holds "." or "..":
    it stays inside ``path``'s directory."""
    head, _, base = path.rpartition("/")
    if not base.startswith(WHITEOUT_PREFIX) or base.startswith(_META_PREFIX) or base in _MALFORMED:
        return None
    name = base[len(WHITEOUT_PREFIX) :]
    return f"{head}/{name}" if head else name
