"""What a base lacks for the native code of the wheels going on top of it.

Contract of :func:`missing`: given the system sonames each distribution's native code links
(by distribution name), the Debian packages that provide them and that the base does not hold,
each with the distributions that need it.  Empty when the base has no dpkg records (Alpine,
scratch: nothing can be said) or already holds them all.  Only a ``debian:`` base can be given
them (:func:`slimline.build.image` resolves it again with those packages added); for any other
base the conductor warns.
"""

from __future__ import annotations

from collections.abc import Mapping

from slimline.base import dpkg, elf
from slimline.cache.store import Cache
from slimline.oci.image import Image

__all__ = ["missing"]


def missing(image: Image, needs: Mapping[str, frozenset[str]], *, cache: Cache) -> dict[str, tuple[str, ...]]:
    """Debian package -> the distributions whose native code needs it, for what ``image`` lacks."""
    wanted: dict[str, list[str]] = {}
    for name, sonames in sorted(needs.items()):
        for pkg in elf.debian_packages(sonames):
            wanted.setdefault(pkg, []).append(name)
    if not wanted:
        return {}
    have = dpkg.installed(image, cache=cache)
    if not have:
        return {}
    return {pkg: tuple(who) for pkg, who in sorted(wanted.items()) if pkg not in have}
