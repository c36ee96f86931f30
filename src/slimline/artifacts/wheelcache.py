"""Where wheels live in the cache: ``<cache>/wheels/<sha256>/<filename>``, by content and real name.

Contract:

- a named wheel is the blob-store bytes under the wheel's real file name (installers need it),
  a hard link to the blob where possible, else a copy; it is put in place atomically
  (:func:`store_wheel`);
- every hand-out re-hashes: :func:`named_wheel` and :func:`built_wheel` return a path only
  after the file's sha256 matched the name it is kept under, and refuse a changed file with
  :class:`~slimline.errors.HashMismatch`;
- a wheel built on this host is recorded under a key (meta ``built-wheels/<key>`` =
  filename + sha256, :func:`keep_built`), so :func:`built_wheel` finds it again without a
  rebuild; what goes into a key is the caller's business
  (:func:`build_key`);
- :func:`tree_hash` is the content hash of a local source tree, for keys of wheels built from
  one: an unchanged tree is not rebuilt;
- a path is made only of a sha256 (64 lower-case hex digits) and a wheel name checked by
  :func:`slimline.artifacts.filenames.wheel_name`, whoever gave them (a lock, a server, a
  backend, a cache record): anything else is refused before it touches the disk.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from slimline.artifacts.filenames import wheel_name
from slimline.cache.store import Cache, sha256_file, touch
from slimline.errors import HashMismatch, SlimlineError
from slimline.project import ignore

__all__ = [
    "FileDigests",
    "TreeFile",
    "build_key",
    "built_wheel",
    "host_identity",
    "keep_built",
    "named_wheel",
    "store_wheel",
    "stored_wheel",
    "tree_files",
    "tree_hash",
]

KEY_FORMAT = 1  # bump when what a built wheel depends on changes
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _wheel_path(cache: Cache, sha256: str, filename: str) -> Path:
    """``<cache>/wheels/<sha256>/<filename>``, after checking both parts (see the contract)."""
    if not _HEX64.fullmatch(sha256):
        raise SlimlineError(
            f"{sha256[:80]!r} is not a sha256 digest", doing=f"naming {filename!r} in the cache"
        )
    return (
        cache.root
        / "wheels"
        / sha256
        / wheel_name(filename, what=f"naming a wheel in the cache {cache.root}")
    )


def named_wheel(cache: Cache, sha256: str, filename: str, *, package: str) -> Path | None:
    """``<cache>/wheels/<sha256>/<filename>`` after re-hashing it; None if absent.

    A named wheel whose bytes changed is refused with :class:`HashMismatch`.
    """
    path = _wheel_path(cache, sha256, filename)
    if not path.is_file():
        return None
    touch(path)
    actual = sha256_file(path)
    if actual != sha256:
        raise HashMismatch(
            package=package,
            file=filename,
            expected=f"sha256:{sha256}",
            actual=f"sha256:{actual}",
            doing=f"reading {filename} from the cache {cache.root}",
        )
    return path


def store_wheel(cache: Cache, blob: Path, sha256: str, filename: str) -> Path:
    """Give the verified blob ``blob`` its wheel name (hard link, else copy); atomic."""
    dest = _wheel_path(cache, sha256, filename)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{filename}.{os.getpid()}.{threading.get_ident()}.part"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(blob, tmp)
    except OSError:
        shutil.copyfile(blob, tmp)
    os.replace(tmp, dest)
    return dest


def keep_built(cache: Cache, wheel: Path, *, key: str) -> Path:
    """Store the freshly built ``wheel`` by content, record it under ``key``; return its named copy."""
    wheel_name(wheel.name, what=f"keeping the wheel built under {wheel.parent}")
    with wheel.open("rb") as stream:
        digest, _ = cache.put_stream(stream, what=wheel.name)
    cache.write_meta("built-wheels", key, json.dumps({"filename": wheel.name, "sha256": digest}).encode())
    return store_wheel(cache, cache.blob_path(digest), digest, wheel.name)


def built_wheel(cache: Cache, key: str, *, package: str) -> Path | None:
    """A wheel recorded under ``key`` by an earlier build, verified; None when there is none."""
    raw = cache.read_meta("built-wheels", key)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        filename, sha = str(data["filename"]), str(data["sha256"])
    except (ValueError, KeyError, TypeError):
        return None
    if not _HEX64.fullmatch(sha):
        return None  # not a record this module wrote: build again
    return stored_wheel(cache, sha, filename, package=package)


def stored_wheel(cache: Cache, sha256: str, filename: str, *, package: str) -> Path | None:
    """The wheel with these bytes, verified, under its name (made from the blob store if need be)."""
    hit = named_wheel(cache, sha256, filename, package=package)
    if hit is not None:
        return hit
    blob = cache.verified_blob(sha256, what=filename, package=package)
    return None if blob is None else store_wheel(cache, blob, sha256, filename)


@dataclass(frozen=True, slots=True)
class TreeFile:
    """One file or symlink of a source tree: ``digest`` is the content's sha256, or the link target."""

    path: str  # relative, "/"-separated
    link: bool
    exec_bits: int  # st_mode & 0o111
    size: int
    digest: str


def tree_files(root: Path, *, cache: Cache | None = None) -> tuple[TreeFile, ...]:
    """The files and symlinks of a source tree, sorted by directory walk (the order of :func:`tree_hash`).

    Skips what cannot change the built wheel (:func:`slimline.project.ignore.skip_when_hashing`:
    VCS data, tool caches, ``*.egg-info`` and virtual environments anywhere; ``dist``, ``build``,
    ``.venv``, ``venv`` and ``node_modules`` at the top).  Symlinked directories count as links,
    not followed (a link to a virtual environment is skipped).  With ``cache``, unchanged files
    are not read again (:class:`FileDigests`).
    """
    digests = FileDigests(root, cache=cache, purpose="tree")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        top = base == root
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not ignore.skip_when_hashing(d, top=top) and not ignore.is_virtualenv(base / d)
        )
        links = [d for d in dirnames if (base / d).is_symlink()]
        for name in sorted([*filenames, *links]):
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out.append(TreeFile(rel, True, 0, 0, os.readlink(path)))
            elif path.is_file():
                st = path.stat()
                out.append(TreeFile(rel, False, st.st_mode & 0o111, st.st_size, digests.of(path, st)))
    digests.save()
    return tuple(out)


class FileDigests:
    """sha256 of files under ``root``, remembered in ``cache`` by each file's stat identity.

    A file whose device, inode, size, mtime and ctime (nanoseconds) are what they were when it
    was last hashed is not read again (as git's index does): any write to a file changes its
    ctime, which no tool can set back.  Files changed in the two seconds before they were
    hashed are not remembered (a write in the same clock tick could go unseen).  ``purpose``
    keeps the memos of different walks of one root apart; without ``cache`` every file is read.
    """

    _SETTLE_NS = 2_000_000_000

    def __init__(self, root: Path, *, cache: Cache | None, purpose: str) -> None:
        self._root, self._cache = root, cache
        self._key = hashlib.sha256(f"{purpose}|{root.resolve()}".encode()).hexdigest()
        self._known: dict[str, tuple[list[int], str]] = {}
        self._seen: dict[str, tuple[list[int], str]] = {}
        raw = cache.read_meta("tree-stat", self._key) if cache is not None else None
        try:
            self._known = {str(k): (list(v[0]), str(v[1])) for k, v in json.loads(raw).items()} if raw else {}
        except (ValueError, TypeError, IndexError, AttributeError):
            self._known = {}

    @property
    def key(self) -> str:
        return self._key

    def of(self, path: Path, st: os.stat_result | None = None) -> str:
        """The sha256 (hex) of the regular file ``path`` (under the root)."""
        st = st or path.stat()
        rel = path.relative_to(self._root).as_posix()
        ident = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        prior = self._known.get(rel)
        digest = prior[1] if prior is not None and prior[0] == ident else sha256_file(path)
        self._seen[rel] = (ident, digest)
        return digest

    def save(self) -> None:
        """Remember the settled files hashed since this value was made (replacing the memo)."""
        if self._cache is None:
            return
        settled = time.time_ns() - self._SETTLE_NS
        keep = {rel: v for rel, v in self._seen.items() if max(v[0][3], v[0][4]) < settled}
        if keep != self._known:
            self._cache.write_meta("tree-stat", self._key, json.dumps(keep, sort_keys=True).encode())


def tree_hash(files: Sequence[TreeFile]) -> str:
    """sha256 over the relative paths, exec bits, symlink targets and contents of a source tree,
    as :func:`tree_files` lists it."""
    h = hashlib.sha256()
    for f in files:
        if f.link:
            h.update(f"L {f.path}\0{f.digest}\0".encode())
        else:
            h.update(f"F {f.path}\0{f.exec_bits:o}\0{f.size}\0".encode())
            h.update(bytes.fromhex(f.digest))
    return h.hexdigest()


@functools.cache
def host_identity() -> Mapping[str, str]:
    """What a host build depends on: the interpreter and platform that run the backend."""
    import sysconfig  # imported here: rebuilds served from the memo never key a host build

    return {
        "python": sys.version,
        "executable": os.path.realpath(sys.executable),
        "platform": sysconfig.get_platform(),
        "libc": _libc(),
    }


def _libc() -> str:
    """``glibc-2.36``: the C library and version, as :func:`platform.libc_ver` names them."""
    try:  # glibc answers here; platform (slow to import) asks the same before scanning files
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (ValueError, OSError):
        name = version = ""
    if not name or not version:
        import platform

        name, version = platform.libc_ver()
    return f"{name}-{version}"


def build_key(**parts: str) -> str:
    """A cache key for a built wheel: its inputs plus the host that builds it."""
    data = {"format": KEY_FORMAT, "host": host_identity(), **parts}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
