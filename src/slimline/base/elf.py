"""Shared libraries that the native code in a wheel needs from the system.

manylinux wheels bundle most of their libraries (``numpy.libs/``) but may link a short list
of system ones that the manylinux policy assumes every distribution has, such as the C++
runtime (``libstdc++.so.6``) or ``libgcc_s.so.1``.  A minimal base does not have all of
them, so slimline reads each wheel's ELF files and adds the Debian packages that provide
what is missing (:data:`DEBIAN_PACKAGES`).

Contract of :func:`wheel_needs`: the ``DT_NEEDED`` sonames of every ELF file in the wheel,
minus the sonames of libraries the wheel ships itself.  Only the dynamic section is read;
nothing is executed.  Malformed ELF files are skipped (the loader would refuse them anyway).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

__all__ = ["DEBIAN_PACKAGES", "debian_packages", "needed", "wheel_needs"]

# sonames the manylinux policies allow wheels to link (plus libgomp, common in scientific
# wheels), and the Debian package that ships each; libc's own libraries are always present.
DEBIAN_PACKAGES: Mapping[str, str] = {
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libgomp.so.1": "libgomp1",
    "libz.so.1": "zlib1g",
    "libexpat.so.1": "libexpat1",
    "libffi.so.8": "libffi8",
}

_ELF_MAGIC = b"\x7fELF"
_SHT_DYNAMIC = 6
_DT_NEEDED = 1


def needed(data: bytes) -> list[str]:
    """``DT_NEEDED`` entries of one ELF image (empty for anything that is not a dynamic ELF)."""
    if len(data) < 64 or data[:4] != _ELF_MAGIC or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    try:
        if is64:
            (shoff,) = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
            sec_fmt, dyn_fmt = end + "IIQQQQIIQQ", end + "qQ"
        else:
            (shoff,) = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
            sec_fmt, dyn_fmt = end + "IIIIIIIIII", end + "iI"
        sections = [struct.unpack_from(sec_fmt, data, shoff + i * shentsize) for i in range(shnum)]
        out: list[str] = []
        for sec in sections:
            if sec[1] != _SHT_DYNAMIC:
                continue
            offset, size, link, entsize = sec[4], sec[5], sec[6], sec[9]
            strtab = sections[link][4]
            for pos in range(offset, offset + size, entsize or struct.calcsize(dyn_fmt)):
                tag, value = struct.unpack_from(dyn_fmt, data, pos)
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    stop = data.index(b"\x00", strtab + value)
                    out.append(data[strtab + value : stop].decode("ascii", "replace"))
        return out
    except (struct.error, IndexError, ValueError):
        return []


def wheel_needs(wheel: Path) -> frozenset[str]:
    """System sonames the wheel's native code links and does not ship itself."""
    wanted: set[str] = set()
    shipped: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename).name
            if info.is_dir() or not (name.endswith(".so") or ".so." in name):
                continue
            shipped.add(name)
            wanted.update(needed(zf.read(info)))
    return frozenset(s for s in wanted if s not in shipped)


def debian_packages(sonames: Iterable[str]) -> frozenset[str]:
    """The Debian packages that provide the known sonames among ``sonames``."""
    return frozenset(DEBIAN_PACKAGES[s] for s in sonames if s in DEBIAN_PACKAGES)
