"""What layer grouping and base completion need to know of a wheel, memoised by its hash.

A warm build whose dependency layers are all cached reads these small records instead of the
wheels (see :mod:`slimline.build.dependencies`): a wheel's size (for grouping), the system
sonames its native code links, and the Debian packages known to ship them (for
:mod:`slimline.base.native`): from the table of libraries manylinux wheels may assume
(:data:`slimline.base.elf.DEBIAN_PACKAGES`), and for a wheel built in the builder, the builder's
own packages (:func:`slimline.base.builder.providers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from slimline.base import elf
from slimline.cache import keys
from slimline.cache.store import Cache

__all__ = ["Providers", "WheelInfo"]

Providers = Callable[[Iterable[str]], Mapping[str, str]]  # sonames -> {soname: Debian package}


@dataclass(frozen=True, slots=True)
class WheelInfo:
    size: int
    needs: tuple[str, ...]  # system sonames its native code links (see slimline.base.elf)
    packages: Mapping[str, str]  # soname -> the Debian package known to ship it (of ``needs``)

    @classmethod
    def of(cls, wheel: Path, *, providers: Providers | None = None) -> WheelInfo:
        needs = tuple(sorted(elf.wheel_needs(wheel)))
        known = {s: elf.DEBIAN_PACKAGES[s] for s in needs if s in elf.DEBIAN_PACKAGES}
        if providers is not None:
            known.update(providers([s for s in needs if s not in known]))
        return cls(wheel.stat().st_size, needs, dict(sorted(known.items())))

    @classmethod
    def known(cls, sha256: str, *, cache: Cache) -> WheelInfo | None:
        """The info recorded for the wheel whose hash is ``sha256``, or None."""
        raw = cache.read_meta(keys.WHEEL_INFO, sha256)
        if not raw:
            return None
        d = json.loads(raw)
        if "packages" not in d:  # recorded before packages were: made again
            return None
        return cls(int(d["size"]), tuple(d["needs"]), {str(k): str(v) for k, v in d["packages"].items()})

    def remember(self, sha256: str, *, cache: Cache) -> None:
        data = {"size": self.size, "needs": list(self.needs), "packages": dict(self.packages)}
        cache.write_meta(keys.WHEEL_INFO, sha256, json.dumps(data, sort_keys=True).encode())
