"""Replace a directory atomically: build the new one beside it, then swap.

Contract, for a destination ``DEST`` (with parent ``P`` and name ``NAME``):

- writers take turns: :func:`locked` holds an exclusive ``flock`` on ``P`` (where the
  filesystem has no locks, writers go on without);
- the new directory is built at ``P/.NAME.slimline-new-XXXX`` (:func:`new_dir`), on the same
  filesystem as ``DEST`` so that renames are atomic; its files are written and fsynced with
  :func:`write_file` (:func:`write_files` for many),
  :func:`copy_file`, :func:`link`, :func:`link_tree` and :func:`fsync_dir`;
- :func:`replace_dir` puts it at ``DEST``.  When ``DEST`` is absent or an empty directory, one
  ``rename``.  Otherwise ``renameat2(RENAME_EXCHANGE)`` exchanges the two in one atomic step;
  where the kernel or filesystem lacks it, two renames: ``DEST`` to ``P/.NAME.slimline-old-PID``,
  then the new directory to ``DEST`` (a failure of the second rename renames the old one back).
  Then the previous contents are deleted and ``P`` is fsynced.  Readers see the old directory
  or the new one, never a mix; with two renames ``DEST`` is missing between them, and an
  interruption there leaves it missing, with the old directory under its ``slimline-old`` name;
- :func:`recover`, called under the lock before each write, deletes unfinished new directories
  and renames the newest ``slimline-old`` one back to ``DEST`` if ``DEST`` is missing (deleting
  any others), so the next write starts from the last complete directory.

A failure before :func:`replace_dir` leaves ``DEST`` untouched; the caller deletes the new
directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slimline.cache.store import CHUNK

__all__ = [
    "copy_file",
    "exchange",
    "fsync_dir",
    "link",
    "link_tree",
    "locked",
    "new_dir",
    "recover",
    "replace_dir",
    "same_size",
    "write_file",
    "write_files",
]

_NEW, _OLD = "slimline-new", "slimline-old"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``directory``; where the filesystem has no locks, go on without."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def recover(dest: Path) -> None:
    """Under the lock: delete unfinished new directories; restore an old one a crash left mid-swap."""
    for p in dest.parent.glob(f".{_glob_escape(dest.name)}.{_NEW}-*"):
        shutil.rmtree(p, ignore_errors=True)
    olds = sorted(dest.parent.glob(f".{_glob_escape(dest.name)}.{_OLD}-*"), key=lambda p: p.stat().st_mtime)
    if olds and not dest.exists():
        os.rename(olds.pop(), dest)
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def new_dir(dest: Path) -> Path:
    """A new empty directory (mode 0700) beside ``dest`` to build its replacement in."""
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.{_NEW}-", dir=dest.parent))


def replace_dir(new: Path, dest: Path, *, has_old: bool) -> None:
    """Put ``new`` at ``dest``, delete the previous ``dest``, fsync the parent.

    ``has_old``: ``dest`` exists and is not an empty directory.  On an exception ``dest`` is
    the old directory still and ``new`` is left for the caller to delete.
    """
    leftover = _swap(new, dest, has_old=has_old)
    if leftover is not None:
        shutil.rmtree(leftover, ignore_errors=True)
    fsync_dir(dest.parent)


def _swap(new: Path, dest: Path, *, has_old: bool) -> Path | None:
    """Put ``new`` at ``dest``; return where the previous ``dest`` now is (to delete), or None."""
    if not has_old:
        os.rename(new, dest)  # dest is absent or an empty directory: rename replaces it atomically
        return None
    if exchange(new, dest):
        return new
    old = dest.parent / f".{dest.name}.{_OLD}-{os.getpid()}"
    os.rename(dest, old)
    try:
        os.rename(new, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    return old


def exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths with renameat2(2); False where that is unavailable."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def same_size(path: Path, size: int) -> bool:
    """``path`` exists and holds ``size`` bytes."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def link(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` at ``dst``; False where that fails (other filesystem, no links, ...)."""
    try:
        os.link(src, dst)
    except OSError:
        return False
    return True


def link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` (file, symlink or directory tree) at ``dst`` with hard links, else copies."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(
            src,
            dst,
            symlinks=True,
            dirs_exist_ok=True,
            copy_function=lambda s, d: None if link(Path(s), Path(d)) else shutil.copy2(s, d),
        )
    elif not link(src, dst):
        copy_file(src, dst)


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to the new file ``dst`` and fsync it."""
    with src.open("rb") as s, dst.open("xb") as d:
        shutil.copyfileobj(s, d, CHUNK)
        d.flush()
        os.fsync(d.fileno())


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0644) and fsync it."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def write_files(directory: Path, files: Mapping[str, bytes], *, old: Path | None) -> None:
    """Write each ``files`` entry (a digest: its bytes) into ``directory`` under the digest's hex, like
    :func:`write_file`; one that ``old`` (the old layout's blob directory) holds with the same
    size is hard-linked instead.  From a few threads at once: concurrent fsyncs share the file
    system's journal commits."""

    def one(item: tuple[str, bytes]) -> None:
        name, data = item[0].removeprefix("sha256:"), item[1]
        target = directory / name
        if old is not None and same_size(old / name, len(data)) and link(old / name, target):
            return
        write_file(target, data)

    if len(files) <= 2:
        for item in files.items():
            one(item)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        list(pool.map(one, files.items()))


def fsync_dir(path: Path) -> None:
    """fsync the directory ``path`` (its entries: names created, renamed or removed)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
