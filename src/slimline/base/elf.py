"""Shared libraries that the native code in a wheel needs from the system.

manylinux wheels bundle most of their libraries (``numpy.libs/``) but may link a short list
of system ones that the manylinux policy assumes every distribution has, such as the C++
runtime (``libstdc++.so.6``) or ``libgcc_s.so.1``.  A minimal base does not have all of
them, so slimline reads each wheel's ELF files and adds the Debian packages that provide
what is missing (:data:`DEBIAN_PACKAGES`).

Contract of :func:`wheel_needs`: the ``DT_NEEDED`` sonames of every ELF file in the wheel,
minus the sonames of libraries the wheel ships itself.  Only the header, the section table
(at most :data:`MAX_TABLE` bytes), the dynamic sections (at most :data:`MAX_DYNAMIC` each) and
the needed names (at most :data:`MAX_NAME` each) are read, from a stream: an ELF file is never
held whole.  Nothing is executed.  Malformed ELF files are skipped (the loader would refuse
them anyway).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO

from slimline.layers.archives import check_zip

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
MAX_TABLE = 4 << 20  # bytes of section headers read (65535 sections of 64 bytes)
MAX_DYNAMIC = 1 << 20  # bytes of one dynamic section (65536 entries)
MAX_NAME = 4096  # bytes of one needed library's name
_SHT_DYNAMIC = 6
_DT_NEEDED = 1


def needed(data: bytes) -> list[str]:
    """``DT_NEEDED`` entries of one ELF image (empty for anything that is not a dynamic ELF)."""
    return _needed(lambda offset, size: data[offset : offset + size])


def _needed(read: Callable[[int, int], bytes]) -> list[str]:
    """:func:`needed` of the ELF image that ``read(offset, size)`` returns pieces of; reads the
    header, the section table, the dynamic sections and each needed name, nothing else."""
    head = read(0, 64)
    if len(head) < 64 or head[:4] != _ELF_MAGIC or head[4] not in (1, 2) or head[5] not in (1, 2):
        return []
    is64 = head[4] == 2
    end = "<" if head[5] == 1 else ">"
    try:
        if is64:
            (shoff,) = struct.unpack_from(end + "Q", head, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", head, 0x3A)
            sec_fmt, dyn_fmt = end + "IIQQQQIIQQ", end + "qQ"
        else:
            (shoff,) = struct.unpack_from(end + "I", head, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", head, 0x2E)
            sec_fmt, dyn_fmt = end + "IIIIIIIIII", end + "iI"
        if shentsize * shnum > MAX_TABLE:
            return []
        table = read(shoff, shentsize * shnum)
        sections = [struct.unpack_from(sec_fmt, table, i * shentsize) for i in range(shnum)]
        wanted: list[tuple[int, int]] = []  # (string table offset, name offset) per DT_NEEDED
        for sec in sections:
            if sec[1] != _SHT_DYNAMIC or sec[5] > MAX_DYNAMIC:
                continue
            dynamic, strtab = read(sec[4], sec[5]), sections[sec[6]][4]
            for pos in range(0, sec[5], sec[9] or struct.calcsize(dyn_fmt)):
                tag, value = struct.unpack_from(dyn_fmt, dynamic, pos)
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    wanted.append((strtab, value))
        names = {at: _name(read(at[0] + at[1], MAX_NAME)) for at in sorted(set(wanted))}  # forward reads
        return [names[at] for at in wanted]
    except (struct.error, IndexError, ValueError):
        return []


def _name(raw: bytes) -> str:
    return raw[: raw.index(b"\x00")].decode("ascii", "replace")


def wheel_needs(wheel: Path) -> frozenset[str]:
    """System sonames the wheel's native code links and does not ship itself.

    The wheel must pass :func:`slimline.layers.archives.check_zip` first; each ELF member is
    streamed (seeking inside it), never read whole."""
    wanted: set[str] = set()
    shipped: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        check_zip(zf, size=wheel.stat().st_size, archive=wheel.name)
        for info in zf.infolist():
            name = PurePosixPath(info.filename).name
            if info.is_dir() or not (name.endswith(".so") or ".so." in name):
                continue
            shipped.add(name)
            with zf.open(info) as stream:
                wanted.update(_needed(_reader(stream)))
    return frozenset(s for s in wanted if s not in shipped)


def _reader(stream: IO[bytes]) -> Callable[[int, int], bytes]:
    def read(offset: int, size: int) -> bytes:
        stream.seek(offset)
        return stream.read(size)

    return read


def debian_packages(sonames: Iterable[str]) -> frozenset[str]:
    """The Debian packages that provide the known sonames among ``sonames``."""
    return frozenset(DEBIAN_PACKAGES[s] for s in sonames if s in DEBIAN_PACKAGES)
