"""Limits for archives that came from elsewhere (wheels, sdists), checked before their members are read.

An archive is refused with :class:`ArchiveRefused` when:

* it holds two members of one name (a reader would see one, an installer might write the
  other): ``duplicate member``;
* a member's name is absolute or climbs out of the archive with ``..``
  (:class:`~slimline.errors.UnsafePath`);
* a member that readers take whole (the files directly in a wheel's ``*.dist-info/``:
  ``RECORD``, ``METADATA``, ...) declares more than :data:`MAX_METADATA` (64 MiB) unpacked,
  or ``WHEEL`` or ``entry_points.txt`` more than :data:`MAX_SMALL_METADATA` (1 MiB: each
  console script in it becomes a file, and real ones are a few KiB);
* its members together declare more than :data:`MAX_RATIO` (100) times the archive's own size
  plus :data:`SLACK` (64 MiB), or more than :data:`MAX_UNPACKED` (32 GiB): a zip bomb.  Real
  wheels and sdists unpack to 2-10 times their size.

Declared sizes bound what is read: :mod:`zipfile` stops a member's stream at its declared size
(and checks its CRC there), and :class:`Budget` counts what a tar stream yields.  So once an
archive passes here, reading it costs at most what it declared.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable

from slimline.errors import SlimlineError, UnsafePath

__all__ = [
    "MAX_METADATA",
    "MAX_RATIO",
    "MAX_SMALL_METADATA",
    "MAX_UNPACKED",
    "SLACK",
    "ArchiveRefused",
    "Budget",
    "check_zip",
]

MAX_METADATA = 64 << 20
MAX_SMALL_METADATA = 1 << 20
_SMALL = frozenset({"WHEEL", "entry_points.txt"})
MAX_RATIO = 100
SLACK = 64 << 20
MAX_UNPACKED = 32 << 30


class ArchiveRefused(SlimlineError):
    """An archive that breaks one of the limits above; ``archive`` is its file name."""

    def __init__(self, problem: str, *, archive: str) -> None:
        super().__init__(
            problem,
            doing=f"reading {archive}",
            hint="the archive is malformed or malicious; do not use it, and check where it came from",
        )
        self.archive = archive


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


class Budget:
    """The unpacked bytes an archive of ``size`` bytes may yield; :meth:`take` counts them."""

    def __init__(self, size: int, *, archive: str) -> None:
        self.limit = min(MAX_RATIO * size + SLACK, MAX_UNPACKED)
        self.used = 0
        self._archive = archive

    def take(self, n: int, *, member: str) -> None:
        """Count ``n`` more bytes (for ``member``); refuse when the total passes the limit."""
        self.used += n
        if self.used > self.limit:
            raise ArchiveRefused(
                f"it unpacks to more than {_mib(self.limit)} (at {member!r}), over {MAX_RATIO} "
                f"times its own size: a zip or gzip bomb",
                archive=self._archive,
            )


def check_zip(zf: zipfile.ZipFile, *, size: int, archive: str) -> None:
    """Refuse ``zf`` (whose file is ``size`` bytes) if it breaks a limit of the module contract."""
    infos = zf.infolist()
    _no_duplicates((i.filename for i in infos), archive=archive)
    for info in infos:
        _inside(info.filename, archive=archive)
    for info in infos:
        parts = info.filename.split("/")
        if len(parts) != 2 or not parts[0].endswith(".dist-info"):
            continue
        cap = MAX_SMALL_METADATA if parts[1] in _SMALL else MAX_METADATA
        if info.file_size > cap:
            raise ArchiveRefused(
                f"{info.filename} declares {_mib(info.file_size)} unpacked, more than the "
                f"{_mib(cap)} slimline reads of that metadata file",
                archive=archive,
            )
    budget = Budget(size, archive=archive)
    for info in infos:
        budget.take(info.file_size, member=info.filename)


def _no_duplicates(names: Iterable[str], *, archive: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ArchiveRefused(
                f"duplicate member {name!r}: the archive holds two files of that name", archive=archive
            )
        seen.add(name)


def _inside(name: str, *, archive: str) -> None:
    if name.startswith(("/", "\\")) or "\x00" in name:
        raise UnsafePath(path=name, archive=archive, reason="its path is absolute")
    depth = 0
    for part in name.split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0:
            raise UnsafePath(path=name, archive=archive)
