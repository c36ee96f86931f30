"""What a base lacks for the native code of the wheels going on top of it.

Contract of :func:`missing`: given, per distribution, the system sonames its native code links
and the Debian package known to ship each (or None), it returns the packages to add (those the
base does not hold, each with the distributions that need it) and the sonames that neither the
base has nor any known package ships.  A soname counts as present when a file of that name is in
a ``lib`` directory of the base's final file system (any base: Debian, Alpine, official Python
images), scanned once per base (memoised by its config digest); a base slimline assembles has
its names remembered as it is made (:func:`remember`), so it is never scanned.  Packages can be
added only to a ``debian:`` base (:mod:`slimline.build.image` resolves it again with them); for
other bases the conductor warns.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slimline.base import dpkg
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.layers.read import final_files
from slimline.oci.image import Image

__all__ = ["Lacking", "missing", "remember", "sonames"]


@dataclass(frozen=True, slots=True)
class Lacking:
    add: dict[str, tuple[str, ...]]  # Debian package -> the distributions that need it
    unprovided: dict[str, tuple[str, ...]]  # distribution -> sonames nothing known ships


def missing(image: Image, needs: Mapping[str, Mapping[str, str | None]], *, cache: Cache) -> Lacking:
    """What ``image`` lacks for ``needs`` (distribution -> {soname: package or None})."""
    have = sonames(image, cache=cache)
    add: dict[str, list[str]] = {}
    unprovided: dict[str, list[str]] = {}
    for name, linked in sorted(needs.items()):
        for soname, package in sorted(linked.items()):
            if soname in have:
                continue
            if package is None:
                unprovided.setdefault(name, []).append(soname)
            elif name not in add.setdefault(package, []):
                add[package].append(name)
    installed = dpkg.installed(image, cache=cache) if add else frozenset()
    return Lacking(
        {pkg: tuple(who) for pkg, who in sorted(add.items()) if pkg not in installed},
        {name: tuple(s) for name, s in unprovided.items()},
    )


def sonames(image: Image, *, cache: Cache) -> frozenset[str]:
    """The names of the shared libraries in ``lib`` directories of ``image``'s final file system."""
    hit = cache.read_meta(keys.BASE_SONAMES, _key(image))
    if hit is not None:
        return frozenset(json.loads(hit))
    found = _libraries(final_files(image.layers, wanted=lambda _: False, max_size=0))
    remember(image, found, cache=cache)
    return found


def remember(image: Image, paths: Iterable[str], *, cache: Cache) -> None:
    """Memoise what :func:`sonames` gives for ``image`` when its final file system holds exactly
    ``paths`` (as a base slimline assembles, in layers that add files and remove none)."""
    found = _libraries(paths)
    cache.write_meta(keys.BASE_SONAMES, _key(image), json.dumps(sorted(found)).encode())


def _key(image: Image) -> str:
    return hashlib.sha256(image.config_bytes).hexdigest()


def _libraries(paths: Iterable[str]) -> frozenset[str]:
    found = set()
    for path in paths:
        folder, name = posixpath.split(path)
        if (".so." in name or name.endswith(".so")) and _libdir(folder):
            found.add(name)
    return frozenset(found)


def _libdir(folder: str) -> bool:
    """``usr/lib``, ``lib64``, ``usr/lib/x86_64-linux-gnu``, ``usr/local/lib``...: where the loader looks."""
    return any(p in ("lib", "lib64", "lib32") for p in folder.split("/"))
