"""What the cache holds, by when it was last used, and pruning it (``slimline cache``).

Every read of the cache marks what it reads used (:meth:`slimline.cache.store.Cache.blob_path`,
:meth:`~slimline.cache.store.Cache.read_meta`, named wheels, reused build environments set their
mtime to now), so an entry's mtime is its last use.  Contract of :func:`prune`:

- it removes blobs and named wheels (by inode: a wheel hard-linked to its blob goes with it),
  build environments (the host's, and the build requirements installed for a builder's
  interpreter), unpacked bases (:func:`slimline.base.rootfs.cached`) and metadata files last
  used before ``now - older_than``; then, if ``max_size`` is given, the least recently used
  blobs, wheels, environments and unpacked bases until the cache holds at most that many bytes;
- it never removes anything a later build could not make again: every reader of the cache
  checks that what an entry names still exists (a layer whose blob is gone is rebuilt, a
  memo or a base pin whose blobs are gone is not used), so pruning costs time, not
  correctness;
- it runs under the cache's exclusive lock (:meth:`~slimline.cache.store.Cache.lock`): never while a
  build uses the cache; leftovers of writes that never finished (``*.part`` files, ``.tmp-*``
  directories) older than a day go too;
- files and directories the cache does not know (not slimline's) are left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from slimline.cache import keys
from slimline.cache.store import Cache

__all__ = ["Area", "Pruned", "Survey", "prune", "survey"]

DAY = 24 * 3600
_CONTENT = (keys.BLOBS, keys.WHEELS)  # content-addressed files (hard-linked to each other)
_ENVS = keys.BUILD_ENVS
_TARGET_ENVS = keys.TARGET_ENVS
_ROOTFS = keys.ROOTFS
_TMP = keys.UNFINISHED


@dataclass(frozen=True, slots=True)
class Area:
    name: str
    entries: int
    size: int  # bytes on disk, each inode counted once


@dataclass(frozen=True, slots=True)
class Survey:
    root: Path
    areas: tuple[Area, ...]
    oldest_use: float | None  # the least recent last use among blobs, wheels and environments

    @property
    def size(self) -> int:
        return sum(a.size for a in self.areas)


@dataclass(frozen=True, slots=True)
class Pruned:
    files: int  # blobs and named wheels (inodes)
    environments: int
    bases: int  # unpacked bases
    metadata: int
    freed: int  # bytes
    left: int  # bytes the cache holds afterwards
    dry_run: bool


@dataclass(frozen=True, slots=True)
class _Item:
    """One removable unit: an inode with its paths, or a build environment or unpacked base."""

    paths: tuple[Path, ...]
    size: int
    used: float
    kind: str  # "file", "environment", "base", "metadata"


def survey(cache: Cache) -> Survey:
    """Sizes and counts of the cache's areas (read only; marks nothing used)."""
    items = list(_items(cache.root))
    areas = []
    for kind, label in (
        ("file", "blobs and wheels"),
        ("environment", "build environments"),
        ("base", "unpacked bases (for bytecode)"),
        ("metadata", "metadata"),
    ):
        chosen = [i for i in items if i.kind == kind]
        areas.append(Area(label, len(chosen), sum(i.size for i in chosen)))
    big = [i.used for i in items if i.kind != "metadata"]
    return Survey(cache.root, tuple(areas), min(big) if big else None)


def prune(
    cache: Cache,
    *,
    older_than: float,
    max_size: int | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> Pruned:
    """Remove what was not used in the last ``older_than`` seconds, then the least recently
    used until at most ``max_size`` bytes remain (see the module's contract)."""
    now = time.time() if now is None else now
    with cache.lock(exclusive=True):
        items = list(_items(cache.root))
        cutoff = now - older_than
        gone = [i for i in items if i.used < cutoff]
        kept = sorted((i for i in items if i.used >= cutoff), key=lambda i: i.used)
        if max_size is not None:
            total = sum(i.size for i in kept)
            for item in list(kept):
                if total <= max_size:
                    break
                if item.kind == "metadata":
                    continue
                kept.remove(item)
                gone.append(item)
                total -= item.size
        if not dry_run:
            for item in gone:
                _remove(item)
            _remove_leftovers(cache.root, now)
        return Pruned(
            files=sum(1 for i in gone if i.kind == "file"),
            environments=sum(1 for i in gone if i.kind == "environment"),
            bases=sum(1 for i in gone if i.kind == "base"),
            metadata=sum(1 for i in gone if i.kind == "metadata"),
            freed=sum(i.size for i in gone),
            left=sum(i.size for i in kept),
            dry_run=dry_run,
        )


def _items(root: Path) -> Iterator[_Item]:
    by_inode: dict[tuple[int, int], list[Path]] = {}
    stats: dict[tuple[int, int], os.stat_result] = {}
    for area in _CONTENT:
        for path in _files(root / area):
            if path.name.endswith(".part"):
                continue
            st = path.lstat()
            ident = (st.st_dev, st.st_ino)
            by_inode.setdefault(ident, []).append(path)
            stats[ident] = st
    for ident, paths in by_inode.items():
        st = stats[ident]
        yield _Item(tuple(paths), st.st_blocks * 512, st.st_mtime, "file")
    envs = root / _ENVS
    for env in _dirs(envs):
        yield _environment(env, ".slimline-env.json", envs / f"{env.name}.lock")
    targets = root / _TARGET_ENVS  # build requirements for a builder's interpreter
    for env in _dirs(targets):
        yield _environment(env, ".complete")
    for lock in sorted(targets.glob("*.lock")) if targets.is_dir() else []:  # one per family of sets
        st = lock.lstat()
        yield _Item((lock,), st.st_blocks * 512, st.st_mtime, "metadata")
    for base in _dirs(root / _ROOTFS):
        if not base.name.startswith(_TMP):
            yield _Item((base,), _tree_size(base), base.stat().st_mtime, "base")
    for namespace in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if namespace.name in (*_CONTENT, _ENVS, _TARGET_ENVS, _ROOTFS):
            continue
        for path in sorted(namespace.iterdir()):
            # slimline's metadata files are flat, named by a hex key; anything else is not ours
            if path.is_file() and not path.is_symlink() and _is_key(path.name):
                st = path.lstat()
                yield _Item((path,), st.st_blocks * 512, st.st_mtime, "metadata")


def _environment(env: Path, marker: str, *also: Path) -> _Item:
    """An environment directory (and ``also``, its lock), last used when its ``marker`` file was
    (a build that reuses it marks that file), else when the directory was made."""
    used = (env / marker if (env / marker).exists() else env).stat().st_mtime
    return _Item((env, *also), _tree_size(env), used, "environment")


def _is_key(name: str) -> bool:
    return len(name) >= 16 and all(c in "0123456789abcdef" for c in name)


def _dirs(top: Path) -> list[Path]:
    """The directories in ``top`` (not symlinks to them), sorted; none if it does not exist."""
    return sorted(p for p in top.iterdir() if p.is_dir() and not p.is_symlink()) if top.is_dir() else []


def _files(top: Path) -> Iterator[Path]:
    if not top.is_dir():
        return
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            yield Path(dirpath) / name


def _tree_size(top: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirs, files in os.walk(top):
        for name in [*files, *dirs]:
            st = (Path(dirpath) / name).lstat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _remove(item: _Item) -> None:
    for path in item.paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
            if path.parent.parent.name == "wheels":  # wheels/<sha>/<name>: drop the empty <sha>
                with contextlib.suppress(OSError):
                    path.parent.rmdir()


def _remove_leftovers(root: Path, now: float) -> None:
    """Temporary files of writes that never finished (a killed process), older than a day."""
    for area in (*_CONTENT, keys.LAYERS):
        for path in _files(root / area):
            if path.name.endswith(".part") and path.lstat().st_mtime < now - DAY:
                path.unlink(missing_ok=True)
    for base in _dirs(root / _ROOTFS):
        if base.name.startswith(_TMP) and base.stat().st_mtime < now - DAY:
            shutil.rmtree(base, ignore_errors=True)
