"""An image's file system written out to a private directory, so that its programs can run here.

Contract of :func:`unpack`: the layers are applied in order, streamed member by member, with
chroot semantics: no write ever lands outside ``dest``, whatever the layers hold (bases may come
from registries).  Concretely:

* a member whose normalised path has a ``..`` component raises :class:`~slimline.errors.UnsafePath`;
* parent directories are looked up component by component with ``lstat``: a symlink on the way
  is followed *inside* ``dest`` (an absolute target starts at ``dest``, ``..`` stops at ``dest``),
  and the last component is replaced, never written through (``O_NOFOLLOW | O_EXCL``);
* absolute symlink targets are rewritten as relative ones inside ``dest``, so that a program run
  from ``dest`` (the dynamic loader, an interpreter) reads the image's files, not the host's;
* hard links must name a regular file already in ``dest``; devices and fifos are skipped;
* whiteouts (``.wh.NAME``, ``.wh..wh..opq``) of later layers remove what lower layers wrote,
  parsed by :mod:`slimline.oci.whiteout` (a malformed one, ``.wh..`` or ``.wh...``, removes nothing);
* modes keep their permission bits minus setuid/setgid/sticky, plus owner rw(x); owners are not set.

Relative symlinks are written as they are: a program run from ``dest`` is trusted as much as the
base it comes from (it can read anything the user can), so reads through them are not policed.

:func:`cached` keeps one unpacked copy per image in the cache (``<cache>/rootfs/<key>``), so that
only the first build with a base pays for unpacking it; :func:`from_trees` writes that copy from
the trees of a base just assembled, with the same rules.  :func:`from_jobs` writes layer jobs'
trees there directly, with the same rules, for a file system that is never an image (the
builder): no tar is written, compressed, hashed and read back.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Protocol

from slimline import layers
from slimline.cache import keys
from slimline.cache.store import Cache, touch
from slimline.errors import SlimlineError
from slimline.layers.filetree import Bytes, Entry, FileTree, Kind, Source
from slimline.layers.job import Job
from slimline.oci.image import Image
from slimline.oci.whiteout import entry_path, is_opaque, is_whiteout, whiteout_target

__all__ = ["RootfsError", "cached", "from_jobs", "from_pinned", "from_trees", "jobs_key", "resolve", "unpack"]

FORMAT = "1"  # bump when unpack() writes other files or modes: older copies are then not used

_MAX_HOPS = 40  # symlinks followed in one lookup, as Linux allows


class RootfsError(SlimlineError):
    def __init__(self, problem: str, *, path: str) -> None:
        super().__init__(
            problem,
            doing=f"unpacking the base image's files ({path})",
            hint="the base image is malformed; check where it came from",
        )
        self.path = path


def unpack(image: Image, dest: Path) -> None:
    """Write ``image``'s file system under ``dest`` (an existing, private, empty directory)."""
    root = str(dest)
    for layer in image.layers:
        written: set[str] = set()  # member paths of this layer: an opaque whiteout keeps them
        with layers.members(layer) as tar:
            for member in tar:
                parts = _parts(member.name, archive=f"layer {layer.digest}")
                if not parts:
                    continue
                written.add("/".join(parts))
                _apply(root, parts, member, tar, written)


def cached(image: Image, *, cache: Cache) -> Path:
    """``image``'s file system as :func:`unpack` writes it, from the cache, unpacked there first
    if no earlier build did: ``<cache>/rootfs/<key>``, keyed by the layers' diff_ids.

    Contract: the directory appears whole or not at all (it is unpacked beside its name, then
    renamed; of two builds unpacking at once, one rename wins and the other copy is dropped);
    every call marks it used (``slimline cache prune``).  Callers only read it, and only while
    they hold the cache (:meth:`~slimline.cache.store.Cache.lock`), which keeps pruning away.
    """
    return _kept(
        _image_dir(image, cache),
        lambda tmp: unpack(image, tmp),
        cache=cache,
        doing="unpacking the base image into the cache",
    )


def from_trees(image: Image, trees: Sequence[FileTree], *, cache: Cache) -> Path:
    """What :func:`cached` gives for ``image``, written from the trees its layers were made of (in
    order: ``image``'s layers hold exactly these trees), so that nothing reads the layers back;
    the same contract, for an image whose layers this process has just made."""
    return _kept(
        _image_dir(image, cache),
        lambda dest: _write_trees(dest, trees),
        cache=cache,
        doing="writing the base image's files into the cache",
    )


def _image_dir(image: Image, cache: Cache) -> Path:
    key = hashlib.sha256(json.dumps([FORMAT, [layer.diff_id for layer in image.layers]]).encode()).hexdigest()
    return cache.root / keys.ROOTFS / key[:32]


def jobs_key(jobs: Sequence[Job]) -> str:
    """The key :func:`from_jobs` keeps the file system of ``jobs`` under (their keys hold every input)."""
    return hashlib.sha256(json.dumps([FORMAT, "jobs", [j.key for j in jobs]]).encode()).hexdigest()[:32]


def from_jobs(jobs: Sequence[Job], *, cache: Cache) -> Path:
    """The file system of ``jobs``' trees applied in order, as :func:`unpack` would write their
    layers: ``<cache>/rootfs/<jobs_key>``, made (the trees a few at a time, one per core, each
    written as soon as it and those before it are made) if no earlier build made it.  The same
    contract as :func:`cached` (whole or absent, marked used)."""

    def write(dest: Path) -> None:
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
            _write_trees(dest, pool.map(lambda j: j.make(), jobs))

    done = cache.root / keys.ROOTFS / jobs_key(jobs)
    return _kept(done, write, cache=cache, doing="writing the builder's files into the cache")


def from_pinned(done: Path) -> Path:
    """A directory :func:`from_jobs` made, marked used."""
    touch(done)
    return done


class _TreeWriter:
    """Writes trees' entries under ``root`` by :func:`_apply`'s rules, with a shortcut for most
    of a builder's entries: one whose parent is a directory this writer made (and nothing
    replaced since) and whose own path is new is written directly, without looking its parent
    up again component by component.  Anything else goes through :func:`_apply`: hard links,
    whiteout names, a path written before, a parent reached through a symlink, and an entry
    the shortcut finds already on disk (a directory :func:`_lookup` made on the way)."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._dirs: dict[str, tuple[str, list[str]]] = {}  # path -> (host path, real parts)
        self._written: set[str] = set()

    def write(self, tree: FileTree) -> None:
        for entry in tree.entries():
            parts = _parts(entry.path, archive="a file tree")
            if not parts:
                continue
            path = "/".join(parts)
            parent = self._dirs.get("/".join(parts[:-1])) if len(parts) > 1 else (self._root, [])
            if not (parent and self._direct(parent, parts[-1], path, entry)):
                self._through_apply(parts, path, entry)
            self._written.add(path)

    def _direct(self, parent: tuple[str, list[str]], leaf: str, path: str, entry: Entry) -> bool:
        """Write ``entry`` the short way; False when it must go through :func:`_apply`."""
        if entry.kind is Kind.DIR and path in self._dirs:
            os.chmod(self._dirs[path][0], (entry.mode & 0o777) | 0o700, follow_symlinks=False)
            return True
        if path in self._written or entry.kind is Kind.HARDLINK or leaf.startswith(".wh."):
            return False
        host = os.path.join(parent[0], leaf)
        try:
            if entry.kind is Kind.DIR:
                os.mkdir(host, 0o700)
                os.chmod(host, (entry.mode & 0o777) | 0o700)
                self._dirs[path] = (host, [*parent[1], leaf])
            elif entry.kind is Kind.SYMLINK:
                os.symlink(_link_target(entry.target, parent[1]), host)
            else:
                source = entry.source
                if source is None:
                    raise RootfsError("a regular file has no data", path=entry.path)
                _write_source(host, source, (entry.mode & 0o777) | 0o600)
        except FileExistsError:
            return False
        return True

    def _through_apply(self, parts: list[str], path: str, entry: Entry) -> None:
        if entry.kind is not Kind.DIR and path in self._dirs:
            self._dirs.clear()  # a directory this writer knew is replaced: its paths may be stale
        _apply(self._root, parts, _member(entry), _Sources(entry), set())
        if entry.kind is Kind.DIR:
            found = _lookup(self._root, parts, create=False)
            if found is not None:
                self._dirs[path] = found


def _member(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode, info.size, info.linkname = entry.mode, entry.size, entry.target
    info.type = _TAR_TYPES[entry.kind]
    return info


_TAR_TYPES = {Kind.DIR: tarfile.DIRTYPE, Kind.FILE: tarfile.REGTYPE, Kind.SYMLINK: tarfile.SYMTYPE}
_TAR_TYPES[Kind.HARDLINK] = tarfile.LNKTYPE


class _Sources:
    """What :func:`_apply` reads a file's bytes from, for a tree's entry (as a tar would serve them)."""

    def __init__(self, entry: Entry) -> None:
        self._entry = entry

    def extractfile(self, member: tarfile.TarInfo) -> IO[bytes] | None:
        return self._entry.source.open() if self._entry.source is not None else None


def _kept(done: Path, make: Callable[[Path], None], *, cache: Cache, doing: str) -> Path:
    """``done``, marked used, when an earlier build made it; else made now by ``make`` (whole or
    not at all: :func:`_made_as`).  The contract of :func:`cached`, for each way of making it."""
    if done.is_dir():
        touch(done)
        return done
    with cache.writing(doing):
        _made_as(done, make)
    return done


def _write_trees(dest: Path, trees: Iterable[FileTree]) -> None:
    """The trees' entries written under ``dest``, in order (each written as soon as it comes)."""
    writer = _TreeWriter(str(dest))
    for tree in trees:
        writer.write(tree)


def _made_as(done: Path, make: Callable[[Path], None]) -> None:
    """``make(tmp)`` in a new directory beside ``done``, then renamed to ``done``."""
    done.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=keys.UNFINISHED, dir=done.parent))
    try:
        make(tmp)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, done)
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not done.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another build unpacked it first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve(root: Path, path: str) -> Path | None:
    """The host path of ``path`` (inside the image) under ``root``, every symlink followed inside
    ``root``; None if some component is missing."""
    found = _lookup(str(root), path.split("/"), create=False, any_leaf=True)
    return Path(found[0]) if found is not None else None


def _parts(name: str, *, archive: str) -> list[str]:
    path = entry_path(name, archive=archive)  # raises UnsafePath for a ".." component
    return path.split("/") if path else []


class _Extract(Protocol):
    def extractfile(self, member: tarfile.TarInfo) -> IO[bytes] | None: ...


def _apply(root: str, parts: list[str], member: tarfile.TarInfo, tar: _Extract, written: set[str]) -> None:
    leaf = parts[-1]
    found = _lookup(root, parts[:-1], create=not is_whiteout(leaf))
    if found is None:
        return  # a whiteout in a directory that does not exist
    parent, real = found
    if is_opaque(leaf):
        prefix = "/".join(parts[:-1])
        for child in os.listdir(parent):
            if f"{prefix}/{child}".lstrip("/") not in written:
                _remove(os.path.join(parent, child))
        return
    if is_whiteout(leaf):
        gone = whiteout_target(leaf)  # None for AUFS metadata and malformed names: never "." or ".."
        if gone is not None:
            _remove(os.path.join(parent, gone))
        return
    path = os.path.join(parent, leaf)
    mode = member.mode & 0o777
    if member.isdir():
        if not (os.path.isdir(path) and not os.path.islink(path)):
            _remove(path)
            os.mkdir(path, 0o700)
        os.chmod(path, mode | 0o700, follow_symlinks=False)
        return
    if member.isreg():
        source = tar.extractfile(member)
        if source is None:
            raise RootfsError("a regular file has no data", path=member.name)
        _remove(path)
        _write(path, source, mode | 0o600)
    elif member.issym():
        _remove(path)
        os.symlink(_link_target(member.linkname, real), path)
    elif member.islnk():
        src = _hardlink_source(root, member)
        _remove(path)
        os.link(src, path, follow_symlinks=False)
    # character and block devices, fifos: nothing a program run from here needs


def _hardlink_source(root: str, member: tarfile.TarInfo) -> str:
    """The regular file already under ``root`` that a hard link member names."""
    parts = _parts(member.linkname, archive=member.name)
    found = _lookup(root, parts[:-1], create=False) if parts else None
    if found is not None:
        src = os.path.join(found[0], parts[-1])
        if os.path.lexists(src) and stat.S_ISREG(os.lstat(src).st_mode):
            return src
    raise RootfsError(f"a hard link to {member.linkname!r}, which is not a file here", path=member.name)


def _lookup(
    root: str, parts: list[str], *, create: bool, any_leaf: bool = False
) -> tuple[str, list[str]] | None:
    """The directory ``parts`` names under ``root`` as ``(host path, real parts)``, symlinks followed
    with chroot semantics; missing directories are made when ``create`` (a non-directory in the
    way is replaced), else None is returned.  With ``any_leaf`` the last component may be a file."""
    todo = [p for p in reversed(parts) if p not in ("", ".")]
    real: list[str] = []
    hops = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if real:
                real.pop()
            continue
        host = os.path.join(root, *real, part)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(host, 0o755)
            real.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > _MAX_HOPS:
                raise RootfsError("too many levels of symbolic links", path="/".join(parts))
            target = os.readlink(host)
            if target.startswith("/"):
                real = []
            todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
        elif stat.S_ISDIR(st.st_mode) or (any_leaf and not todo):
            real.append(part)
        elif create:
            os.unlink(host)
            os.mkdir(host, 0o755)
            real.append(part)
        else:
            return None
    return os.path.join(root, *real), real


def _link_target(target: str, real_parent: list[str]) -> str:
    """``target`` as written into ``dest``: absolute targets become relative to the link's
    directory (normalised, ``..`` stopping at the root)."""
    if not target.startswith("/"):
        return target
    parts: list[str] = []
    for part in target.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return os.path.relpath("/" + "/".join(parts), "/" + "/".join(real_parent))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _write_source(path: str, source: Source, mode: int) -> None:
    """A new file at ``path`` with ``source``'s bytes: held in memory, they are written as they are."""
    if not isinstance(source, Bytes):
        with source.open() as data:
            _write(path, data, mode)
        return
    fd = _create(path, mode)
    try:
        view, done = memoryview(source.data), 0
        while done < len(view):
            done += os.write(fd, view[done:])
    finally:
        os.close(fd)


def _write(path: str, source: IO[bytes], mode: int) -> None:
    fd = _create(path, mode)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _create(path: str, mode: int) -> int:
    """A new file at ``path`` (never one that exists, never through a symlink), open for writing."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
