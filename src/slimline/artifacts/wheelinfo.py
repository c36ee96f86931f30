"""What layer grouping and base completion need to know of a wheel, memoised by its hash.

A warm build whose dependency layers are all cached reads these small records instead of the
wheels (see :mod:`slimline.build.dependencies`): a wheel's size (for grouping), the system
sonames its native code links, and the Debian packages known to ship them (for
:mod:`slimline.base.native`): from the table of libraries manylinux wheels may assume
(:data:`slimline.base.elf.DEBIAN_PACKAGES`), and for a wheel built in the builder, the builder's
own packages (:func:`slimline.base.builder.providers`).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import zipfile
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
    # for SBOMs: License-Expression, else the License :: classifiers ("" when neither), and the
    # PEP 770 SBOM files the wheel carries (members under ``*.dist-info/sboms/``)
    license: str = ""
    license_classifiers: tuple[str, ...] = ()
    sboms: tuple[str, ...] = ()

    @classmethod
    def of(cls, wheel: Path, *, providers: Providers | None = None) -> WheelInfo:
        needs = tuple(sorted(elf.wheel_needs(wheel)))
        known = {s: elf.DEBIAN_PACKAGES[s] for s in needs if s in elf.DEBIAN_PACKAGES}
        if providers is not None:
            known.update(providers([s for s in needs if s not in known]))
        expression, classifiers, sboms = _metadata(wheel)
        return cls(wheel.stat().st_size, needs, dict(sorted(known.items())), expression, classifiers, sboms)

    @classmethod
    def known(cls, sha256: str, *, cache: Cache) -> WheelInfo | None:
        """The info recorded for the wheel whose hash is ``sha256``, or None."""
        raw = cache.read_meta(keys.WHEEL_INFO, sha256)
        if not raw:
            return None
        d = json.loads(raw)
        if "packages" not in d or "sboms" not in d:  # recorded before these were: made again
            return None
        return cls(
            int(d["size"]),
            tuple(d["needs"]),
            {str(k): str(v) for k, v in d["packages"].items()},
            str(d["license"]),
            tuple(str(c) for c in d["classifiers"]),
            tuple(str(m) for m in d["sboms"]),
        )

    def remember(self, sha256: str, *, cache: Cache) -> None:
        data = {
            "size": self.size,
            "needs": list(self.needs),
            "packages": dict(self.packages),
            "license": self.license,
            "classifiers": list(self.license_classifiers),
            "sboms": list(self.sboms),
        }
        cache.write_meta(keys.WHEEL_INFO, sha256, json.dumps(data, sort_keys=True).encode())


_MAX_METADATA = 1 << 20  # a METADATA file is read up to this size (beyond: no license known)


def _metadata(wheel: Path) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(License-Expression, License :: classifiers, PEP 770 SBOM members) of ``wheel``."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")})
        sboms = tuple(sorted(n for n in names if re.fullmatch(r"[^/]+\.dist-info/sboms/[^/]+", n)))
        if len(dist_info) != 1 or f"{dist_info[0]}/METADATA" not in names:
            return "", (), sboms
        with zf.open(f"{dist_info[0]}/METADATA") as f:
            raw = f.read(_MAX_METADATA)
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    headers = parser.parsebytes(raw.split(b"\n\n", 1)[0])
    expression = " ".join(str(headers.get("License-Expression") or "").split())
    classifiers = tuple(
        c.strip() for c in headers.get_all("Classifier") or () if str(c).strip().startswith("License ::")
    )
    return expression, classifiers, sboms
