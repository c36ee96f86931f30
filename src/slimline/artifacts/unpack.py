"""Source archives (sdists, url and file archives) unpacked into a directory slimline owns.

Contract of :func:`unpack_archive` (``tar``, ``tar.gz``/``tgz``, ``tar.bz2``, ``tar.xz``, ``zip``):

* every entry is checked before anything of it is written, and the first bad one raises
  :class:`~slimline.errors.UnsafePath` naming the archive and the entry: a name that is
  absolute or climbs out with ``..``; a file, directory or link that would be written through
  a symbolic link unpacked before (a parent that is a link); a symbolic link whose target
  climbs out of the tree by its text; a hard link to anything but a regular file unpacked
  before; a device node or a fifo; a name seen twice;
* after the last entry every symbolic link must resolve inside the tree (links unpacked later
  cannot bend an earlier one out);
* sizes: each entry's declared size (plus 512 bytes of header) counts against
  :class:`~slimline.layers.archives.Budget`, before its data is read; tar header records that
  :mod:`tarfile` reads whole (pax and GNU long names) may be at most :data:`MAX_HEADER`;
* what is written: regular files 0644, or 0755 when the entry has an execute bit; directories
  0755; no owners, set-id bits or devices; modification times as recorded.

A damaged archive or a write that fails (a full disk) raises :class:`UnpackError`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from slimline.errors import SlimlineError, UnsafePath
from slimline.layers.archives import ArchiveRefused, Budget, check_zip

__all__ = ["ARCHIVES", "MAX_HEADER", "UnpackError", "archive_names", "unpack_archive"]

ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
MAX_HEADER = 1 << 20
_CHUNK = 1 << 20
_LONG_HEADERS = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


class UnpackError(SlimlineError):
    """A source archive is damaged, or unpacking it failed on this host."""


def unpack_archive(archive: Path, dest: Path, *, filename: str) -> Path:
    """Unpack ``archive`` into ``dest`` (see the module contract); return its source root.

    ``filename`` (the archive's real name) tells the format.  The root is the single top-level
    directory when there is one, else ``dest``.
    """
    lower = filename.lower()
    if not lower.endswith(ARCHIVES):
        raise UnpackError(
            f"{filename} is not an archive slimline can build from",
            doing=f"unpacking {filename}",
            hint=f"use a wheel or one of {', '.join(ARCHIVES)}",
        )
    dest.mkdir(parents=True, exist_ok=True)
    writer = _Writer(dest, archive=filename, budget=Budget(archive.stat().st_size, archive=filename))
    try:
        if lower.endswith(".zip"):
            _unzip(archive, writer)
        else:
            _untar(archive, writer)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise UnpackError(
            f"the archive is damaged: {err}",
            doing=f"unpacking {filename}",
            hint="download it again; if it stays damaged, the source publishes a broken file",
        ) from err
    except OSError as err:
        raise UnpackError(
            f"cannot write {err.filename or dest}: {err.strerror or err}",
            doing=f"unpacking {filename}",
            hint="check free space and permissions of the temp directory (TMPDIR)",
        ) from err
    writer.finish()
    entries = list(dest.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


MAX_NAMES = 100_000  # entries :func:`archive_names` reads at most


def archive_names(archive: Path, *, filename: str) -> list[str]:
    """The names of a source archive's first :data:`MAX_NAMES` entries, read without writing
    anything (for a guess made before unpacking: what it holds); [] when it cannot be read (the
    unpacking then says why)."""
    names: list[str] = []
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                return zf.namelist()[:MAX_NAMES]
        with tarfile.open(archive, tarinfo=_CappedInfo) as tf:
            for member in _members(tf):
                names.append(member.name)
                if len(names) >= MAX_NAMES:
                    break
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, _HeaderTooLarge):
        return []
    return names


def _unzip(archive: Path, writer: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        check_zip(zf, size=archive.stat().st_size, archive=writer.archive)
        for info in zf.infolist():
            if info.is_dir():
                writer.directory(info.filename, mtime=None)
            else:
                with zf.open(info) as stream:
                    writer.file(info.filename, stream, mode=info.external_attr >> 16, mtime=None)


class _HeaderTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _CappedInfo(tarfile.TarInfo):
    """A tar header whose extended records (which :mod:`tarfile` reads whole) must be small."""

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _LONG_HEADERS and self.size > MAX_HEADER:
            raise _HeaderTooLarge(self.size)
        return super()._proc_member(tar)  # type: ignore[misc,no-any-return]


def _untar(archive: Path, writer: _Writer) -> None:
    try:
        with tarfile.open(archive, tarinfo=_CappedInfo) as tf:
            for member in _members(tf):
                writer.budget.take(tarfile.BLOCKSIZE + max(member.size, 0), member=member.name)
                _untar_one(tf, member, writer)
    except _HeaderTooLarge as err:
        raise ArchiveRefused(
            f"it has a tar header record of {err.size} bytes (slimline reads at most {MAX_HEADER})",
            archive=writer.archive,
        ) from None


def _untar_one(tf: tarfile.TarFile, member: tarfile.TarInfo, writer: _Writer) -> None:
    name = member.name
    if member.isdir():
        writer.directory(name, mtime=int(member.mtime))
    elif member.isreg():
        stream = tf.extractfile(member)
        assert stream is not None
        with stream:
            writer.file(name, stream, mode=member.mode, mtime=int(member.mtime))
    elif member.issym():
        writer.symlink(name, member.linkname)
    elif member.islnk():
        writer.hardlink(name, member.linkname)
    else:
        kind = (
            "a device node"
            if member.ischr() or member.isblk()
            else "a fifo"
            if member.isfifo()
            else "not a file"
        )
        raise UnsafePath(path=name, archive=writer.archive, reason=f"it is {kind}, which slimline refuses")


def _members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The entries in order, read one header at a time (a bomb is refused at its header)."""
    while (member := tf.next()) is not None:
        yield member
        tf.members.clear()  # type: ignore[attr-defined]  # nothing is looked up by name: keep memory flat however many entries


class _Writer:
    """Writes checked entries under ``dest``; never through a symbolic link, never twice."""

    def __init__(self, dest: Path, *, archive: str, budget: Budget) -> None:
        self.dest, self.archive, self.budget = dest, archive, budget
        self._seen: set[str] = set()
        self._links: list[str] = []
        self._dir_times: dict[str, int] = {}

    def _path(self, name: str) -> tuple[str, Path]:
        """The checked relative name of entry ``name`` and where it goes; its parents exist as
        real directories afterwards."""
        rel = _relative(name, archive=self.archive)
        parts = rel.split("/") if rel else []
        here = self.dest
        for i, part in enumerate(parts[:-1]):
            here = here / part
            st = _lstat(here)
            if st is None:
                here.mkdir(mode=0o755)
            elif stat.S_ISLNK(st.st_mode):
                link = "/".join(parts[: i + 1])
                raise UnsafePath(
                    path=name,
                    archive=self.archive,
                    reason=f"it would be written through the symbolic link {link!r}",
                )
            elif not stat.S_ISDIR(st.st_mode):
                raise UnsafePath(
                    path=name,
                    archive=self.archive,
                    reason=f"its parent {'/'.join(parts[: i + 1])!r} is a file",
                )
        return rel, self.dest.joinpath(*parts) if parts else self.dest

    def _new(self, name: str, path: Path) -> None:
        if name in self._seen or _lstat(path) is not None:
            raise UnsafePath(path=name, archive=self.archive, reason="the archive holds it twice")
        self._seen.add(name)

    def directory(self, name: str, *, mtime: int | None) -> None:
        rel, path = self._path(name)
        st = _lstat(path)
        if st is None:
            path.mkdir(mode=0o755)
        elif not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(
                path=name, archive=self.archive, reason="a file or link of that name came before"
            )
        if mtime is not None:
            self._dir_times[rel] = int(mtime)

    def file(self, name: str, stream: IO[bytes], *, mode: int, mtime: int | None) -> None:
        rel, path = self._path(name)
        self._new(rel, path)
        perm = 0o755 if mode & 0o111 else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, perm)
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
        if mtime is not None:
            _utime(path, mtime)

    def symlink(self, name: str, target: str) -> None:
        rel, path = self._path(name)
        self._new(rel, path)
        if target.startswith("/") or not target:
            raise UnsafePath(
                path=name, archive=self.archive, reason=f"its link target {target!r} is absolute"
            )
        _relative(str(PurePosixPath(rel).parent / target), archive=self.archive, entry=name)
        os.symlink(target, path)
        self._links.append(rel)

    def hardlink(self, name: str, target: str) -> None:
        rel, path = self._path(name)
        self._new(rel, path)
        src_rel = _relative(target, archive=self.archive, entry=name)
        src = self.dest / src_rel
        st = _lstat(src)
        if src_rel not in self._seen or st is None or not stat.S_ISREG(st.st_mode):
            raise UnsafePath(
                path=name,
                archive=self.archive,
                reason=f"it is a hard link to {target!r}, which is not a file unpacked before it",
            )
        os.link(src, path, follow_symlinks=False)

    def finish(self) -> None:
        """Check that every symbolic link resolves inside the tree; set directory times."""
        root = os.path.realpath(self.dest)
        for rel in self._links:
            real = os.path.realpath(self.dest / rel)
            if real != root and not real.startswith(root + os.sep):
                target = os.readlink(self.dest / rel)
                raise UnsafePath(
                    path=rel,
                    archive=self.archive,
                    reason=f"its link target {target!r} resolves outside the archive through other links",
                )
        for rel, mtime in sorted(self._dir_times.items(), reverse=True):
            _utime(self.dest / rel if rel else self.dest, mtime)


def _utime(path: Path, mtime: int) -> None:
    """Keep the archive's time (backends copy it into the wheels they build); one this system
    cannot represent is left as the unpacking time."""
    with contextlib.suppress(OverflowError, ValueError):
        os.utime(path, (mtime, mtime))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _relative(name: str, *, archive: str, entry: str = "") -> str:
    """``name`` as a normalised relative path ("" for the root); refused when it is absolute or
    its ``..`` climb above the root (``entry`` names the entry when ``name`` is its link target)."""
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\"):
        raise UnsafePath(
            path=entry or name,
            archive=archive,
            reason="its path is absolute" if not entry else f"its link target {name!r} escapes the root",
        )
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                raise UnsafePath(path=entry or name, archive=archive)
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)
