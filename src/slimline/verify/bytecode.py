"""Bytecode accounted for by the source it was compiled from.

Contract of :func:`check`: a ``D/__pycache__/N.<tag>[.opt-K].pyc`` file is accounted for when
``D/N.py`` is a regular file of the image (or a symlink to one) and the ``.pyc`` is a PEP 552
hash-based one (what slimline compiles) whose source hash equals the source's: checked when
the ``.pyc``'s magic number is the image's Python's and slimline knows its key
(:func:`slimline.verify.scan.magic_of`; else it is accounted by name and counted apart).  Only the
header is checked: the code object after it is not compiled again.  Problems name the source's
owner (``owners``: path -> package).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from slimline.layers.filetree import Kind
from slimline.verify.findings import Findings
from slimline.verify.scan import Scan

__all__ = ["check", "source_of"]

_PYC = re.compile(r"(?P<dir>.*/)?__pycache__/(?P<name>[^/.]+)\.[^/.]+(?:\.opt-\d)?\.pyc")


def source_of(path: str) -> str | None:
    """The ``.py`` file a ``__pycache__`` ``.pyc`` path is compiled from, or None."""
    m = _PYC.fullmatch(path)
    if m is None:
        return None
    return posixpath.join(m["dir"] or "", f"{m['name']}.py")


def _follow(s: Scan, path: str) -> str:
    """``path`` with symlinks followed (a module that is a link is compiled from its target, as
    :func:`slimline.trees.bytecode.stdlib_tree` does), at most 8 of them."""
    for _ in range(8):
        entry = s.files.get(path)
        if entry is None or entry.kind is not Kind.SYMLINK:
            return path
        path = posixpath.normpath(posixpath.join("/", posixpath.dirname(path), entry.target)).lstrip("/")
    return path


def check(s: Scan, path: str, owners: Mapping[str, str], found: Findings) -> bool:
    """Account for the ``.pyc`` at ``path`` or report it; False when it is not bytecode at all."""
    source = source_of(path)
    if source is None:
        return False
    source = _follow(s, source)
    pyc, src = s.digest(path), s.digest(source)
    owner = owners.get(source, "")
    if pyc is None:
        return False
    if src is None:
        found.problem(path, f"bytecode without its source /{source}", owner)
        return True
    flags = int.from_bytes(pyc.head[4:8], "little") if len(pyc.head) >= 16 else 0
    if not flags & 1:
        found.problem(path, "bytecode not tied to its source (not a hash-based .pyc)", owner)
        return True
    if pyc.head[:4] != s.magic or src.source_hash is None:
        found.account(path, "bytecode (by name: another Python version)")
        return True
    if pyc.head[8:16] != src.source_hash:
        found.problem(path, f"bytecode compiled from another source than /{source}", owner)
    else:
        found.account(path, "bytecode matching its source")
    return True
