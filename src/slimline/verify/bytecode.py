"""Bytecode accounted for by the source it was compiled from.

Contract of :func:`check`: a ``D/__pycache__/N.<tag>[.opt-K].pyc`` file is accounted for when
``D/N.py`` is a regular file of the image and the ``.pyc`` is a PEP 552 hash-based one (what
slimline compiles) whose source hash equals the source's: checked when the ``.pyc``'s magic
number is this interpreter's (else it is accounted by name and counted apart).  Only the
header is checked: the code object after it is not compiled again.  Problems name the source's
owner (``owners``: path -> package).
"""

from __future__ import annotations

import importlib.util
import posixpath
import re
from collections.abc import Mapping

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


def check(s: Scan, path: str, owners: Mapping[str, str], found: Findings) -> bool:
    """Account for the ``.pyc`` at ``path`` or report it; False when it is not bytecode at all."""
    source = source_of(path)
    if source is None:
        return False
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
    if pyc.head[:4] != importlib.util.MAGIC_NUMBER or src.source_hash is None:
        found.account(path, "bytecode (by name: another Python version)")
        return True
    if pyc.head[8:16] != src.source_hash:
        found.problem(path, f"bytecode compiled from another source than /{source}", owner)
    else:
        found.account(path, "bytecode matching its source")
    return True
