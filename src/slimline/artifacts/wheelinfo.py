"""What layer grouping and base completion need to know of a wheel, memoised by its hash.

A warm build whose dependency layers are all cached reads these small records instead of the
wheels (see :mod:`slimline.build.jobs`): a wheel's size (for grouping) and the system sonames
its native code links (for :mod:`slimline.base.native`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from slimline.base import elf
from slimline.cache import keys
from slimline.cache.store import Cache

__all__ = ["WheelInfo"]


@dataclass(frozen=True, slots=True)
class WheelInfo:
    size: int
    needs: tuple[str, ...]  # system sonames its native code links (see slimline.base.elf)

    @classmethod
    def of(cls, wheel: Path) -> WheelInfo:
        return cls(wheel.stat().st_size, tuple(sorted(elf.wheel_needs(wheel))))

    @classmethod
    def known(cls, sha256: str, *, cache: Cache) -> WheelInfo | None:
        """The info recorded for the wheel whose hash is ``sha256``, or None."""
        raw = cache.read_meta(keys.WHEEL_INFO, sha256)
        if not raw:
            return None
        d = json.loads(raw)
        return cls(int(d["size"]), tuple(d["needs"]))

    def remember(self, sha256: str, *, cache: Cache) -> None:
        data = json.dumps({"size": self.size, "needs": list(self.needs)}).encode()
        cache.write_meta(keys.WHEEL_INFO, sha256, data)
