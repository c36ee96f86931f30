"""Which Debian package ships a shared library: the archive's own ``Contents-<arch>`` index.

Contract of :func:`library_packages`: for each soname, the package whose files include it in a
library directory (``usr/lib/<triplet>/``, ``lib/<triplet>/``, ``usr/lib/``), read from the
``main`` component's ``Contents-<arch>.gz`` of the suite.  The index is listed in the signed
Release with its SHA256 and checked like a ``Packages`` index (:func:`.packages.download`);
it is streamed (tens of MB, never held whole), and what it answered is memoised per index hash,
so a second build asks nothing.  Sonames it does not know are left out of the answer.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable

from slimline.base.debian import packages
from slimline.base.debian.errors import ResolveError
from slimline.base.debian.release import Release
from slimline.cache import keys
from slimline.context import Context

__all__ = ["library_packages"]

_LIB_DIRS = ("usr/lib/", "lib/")


def library_packages(release: Release, arch: str, sonames: Iterable[str], *, ctx: Context) -> dict[str, str]:
    """soname -> the package of ``release`` (for ``arch``) that ships it (see the module's contract)."""
    wanted = sorted(set(sonames))
    index = release.files.get(f"main/Contents-{arch}.gz")
    if index is None or not wanted:
        return {}
    memo = keys.key("contents", index.sha256, wanted)
    known = ctx.cache.read_meta(keys.DEBIAN_CONTENTS, memo)
    if known is not None:
        return {str(k): str(v) for k, v in json.loads(known).items()}
    ctx.report.detail(f"looking up {', '.join(wanted)} in {index.path} ({index.size / 1e6:.0f} MB)")
    path = packages.download(ctx.http, release, index, cache=ctx.cache)
    found = _scan(path.open("rb"), frozenset(wanted), what=index.path)
    ctx.cache.write_meta(keys.DEBIAN_CONTENTS, memo, json.dumps(found, sort_keys=True).encode())
    return found


def _scan(raw: object, wanted: frozenset[str], *, what: str) -> dict[str, str]:
    """Stream the gzip'd index: ``<path> <section/package>[,<section/package>...]`` per line."""
    found: dict[str, str] = {}
    try:
        with gzip.open(raw, "rt", encoding="utf-8", errors="replace") as lines:  # type: ignore[call-overload]
            for line in lines:
                name = line.partition(" ")[0].rpartition("/")[2]
                if name not in wanted or name in found:
                    continue
                path, _, owners = line.rstrip("\n").rpartition(" ")
                path = path.strip()
                if path.startswith(_LIB_DIRS) and path.count("/") <= 3:
                    found[name] = owners.split(",")[0].rpartition("/")[2]
    except (OSError, EOFError) as err:
        raise ResolveError(what, f"cannot be read: {err}", hint="run again with --refresh") from err
    return found
