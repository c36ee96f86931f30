"""A content-addressed store on disk, and atomic file writes.

Layout under the cache root (``SLIMLINE_CACHE_DIR``, else the platform's user cache dir)::

    blobs/sha256/<hex>      immutable content, the file name is the sha256 of the bytes
    <namespace>/<key>       small metadata files (JSON) written atomically

Contract: a file under ``blobs/`` exists only if its bytes were hashed while they were
written and matched the name; writers stream into a temp file in the same directory and
``os.replace`` it into place, so a reader never sees a half-written file.  The store knows
nothing about images or packages.

Names: a blob is asked for by ``sha256:<64 lowercase hex digits>`` (:meth:`Cache.digest_path`)
or by the hex alone (:meth:`Cache.blob_path`); anything else raises :class:`BadDigest` before
it becomes a path, so no digest read from an image or a lock can name a file outside ``blobs/``.
Writing: a full disk, a read-only file system or a permission problem while the cache is
written (or locked) raises :class:`CacheError`, which says so and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slimline.errors import HashMismatch, SlimlineError, describe_os_error, os_hint

__all__ = [
    "DIGEST_RULE",
    "BadDigest",
    "Cache",
    "CacheBusy",
    "CacheError",
    "HashingWriter",
    "atomic_write",
    "default_root",
    "hex_of",
    "sha256_file",
    "touch",
]

CHUNK = 1 << 20
DIGEST_RULE = "sha256:<64 lowercase hex digits>"
_HEX = re.compile(r"[0-9a-f]{64}")
# what a write into the cache can meet that the user, not slimline, must fix
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class BadDigest(SlimlineError):
    """A digest that is not ``sha256:<64 lowercase hex digits>`` (or a hex part that is not 64
    lowercase hex digits): never used as a name."""

    def __init__(self, digest: object, *, doing: str = "") -> None:
        super().__init__(
            f"refusing the digest {str(digest)[:150]!r}: slimline takes only {DIGEST_RULE}",
            doing=doing or "looking a blob up by its digest",
            hint="what names this digest (an image, a lock file) is malformed or malicious; "
            "check where it came from",
        )
        self.digest = digest


def hex_of(digest: object, *, doing: str = "") -> str:
    """The hex part of ``sha256:<64 lowercase hex digits>``; anything else raises :class:`BadDigest`."""
    if isinstance(digest, str) and digest.startswith("sha256:") and _HEX.fullmatch(digest, 7):
        return digest[7:]
    raise BadDigest(digest, doing=doing)


def default_root() -> Path:
    env = os.environ.get("SLIMLINE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("slimline"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class HashingWriter:
    """Wraps a writable binary stream; counts and sha256-hashes every byte written through it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


@contextlib.contextmanager
def atomic_write(dest: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temp file next to ``dest``; on normal exit fsync and rename it over ``dest``.

    On an exception the temp file is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Cache:
    root: Path  # made absolute: paths under it are handed to programs run elsewhere (the sandbox)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.abspath(self.root)))

    @classmethod
    def default(cls) -> Cache:
        return cls(default_root())

    def blob_path(self, hexdigest: str) -> Path:
        """Where the blob ``hexdigest`` (64 lowercase hex digits, else :class:`BadDigest`) lives.
        Asking marks it used (its mtime becomes now, if it exists): ``slimline cache prune``
        keeps what was used recently."""
        if not (isinstance(hexdigest, str) and _HEX.fullmatch(hexdigest)):
            raise BadDigest(hexdigest)
        path = self.root / "blobs" / "sha256" / hexdigest
        touch(path)
        return path

    def digest_path(self, digest: str) -> Path:
        """:meth:`blob_path` of a ``sha256:<hex>`` digest, as OCI descriptors name blobs (anything
        else raises :class:`BadDigest`)."""
        return self.blob_path(hex_of(digest))

    def has_blob(self, hexdigest: str) -> bool:
        return self.blob_path(hexdigest).is_file()

    def meta_path(self, namespace: str, key: str) -> Path:
        return self.root / namespace / key

    def read_meta(self, namespace: str, key: str) -> bytes | None:
        """The metadata file's bytes (marking it used), or None."""
        path = self.meta_path(namespace, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        touch(path)
        return data

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool = False) -> Iterator[None]:
        """Hold the cache: shared by builds (any number at once), exclusive for pruning.

        An exclusive request that cannot be granted at once raises :class:`CacheBusy`.  On a
        file system without locks a build goes ahead unlocked, and pruning refuses."""
        import fcntl

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = (self.root / ".lock").open("a")
        except OSError as err:
            raise CacheError(
                self.root, err, doing="taking the cache", also="slimline writes to its cache on every build"
            ) from err
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
            except BlockingIOError:
                raise CacheBusy(self.root) from None
            except OSError as err:
                if exclusive:
                    raise SlimlineError(
                        f"cannot lock {self.root / '.lock'}: {err.strerror}",
                        doing="taking the cache for pruning",
                        hint="prune on a file system that supports locks (flock), or delete the cache",
                    ) from err
                yield  # no locks here: builds still work, only pruning needs them
                return
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_meta(self, namespace: str, key: str, data: bytes) -> None:
        with self.writing(f"recording {namespace}"), atomic_write(self.meta_path(namespace, key)) as f:
            f.write(data)

    def _holds(self, filename: object) -> bool:
        """Whether an error's file name is in the cache (None: a write without a name, like ENOSPC)."""
        if filename is None:
            return True
        if not isinstance(filename, str | bytes):
            return False
        path = Path(os.fsdecode(filename))
        return path.is_relative_to(self.root) or path.is_relative_to(self.root.absolute())

    @contextlib.contextmanager
    def writing(self, doing: str) -> Iterator[None]:
        """Turn what the user must fix (a full disk, a read-only or foreign cache) that a write
        into the cache meets in this block into :class:`CacheError`; other errors pass."""
        try:
            yield
        except OSError as err:
            if err.errno in _WRITE_ERRNOS and self._holds(err.filename):
                raise CacheError(self.root, err, doing=doing) from err
            raise

    def put_stream(
        self, stream: BinaryIO, *, expected: str | None = None, what: str = "blob", package: str = ""
    ) -> tuple[str, int]:
        """Copy ``stream`` into the store; return ``(hexdigest, size)``.

        If ``expected`` (hex sha256) is given and the bytes differ, nothing is stored and
        :class:`HashMismatch` is raised.
        """
        with self.writing(f"storing {what}"):
            return self._put(stream, expected=expected, what=what, package=package)

    def _put(self, stream: BinaryIO, *, expected: str | None, what: str, package: str) -> tuple[str, int]:
        tmpdir = self.root / "blobs" / "sha256"
        tmpdir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".in.", suffix=".part", dir=tmpdir)
        try:
            with os.fdopen(fd, "wb") as f:
                w = HashingWriter(f)
                while chunk := stream.read(CHUNK):
                    w.write(chunk)
            digest = w.hexdigest()
            if expected is not None and digest != expected:
                raise HashMismatch(
                    package=package or what,
                    file=what,
                    expected=f"sha256:{expected}",
                    actual=f"sha256:{digest}",
                )
            os.replace(tmp, self.blob_path(digest))
            return digest, w.size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def verified_blob(self, hexdigest: str, *, what: str, package: str = "") -> Path | None:
        """Path of a cached blob after re-hashing it, or None if absent.

        A cached file whose bytes no longer match its name (disk corruption, tampering) is
        reported, not used: :class:`HashMismatch`.
        """
        path = self.blob_path(hexdigest)
        if not path.is_file():
            return None
        actual = sha256_file(path)
        if actual != hexdigest:
            raise HashMismatch(
                package=package or what,
                file=what,
                expected=f"sha256:{hexdigest}",
                actual=f"sha256:{actual}",
                doing=f"reading {what} from the cache {self.root}",
            )
        return path


class CacheError(SlimlineError):
    """The cache could not be written: ``err`` is what the system said."""

    def __init__(self, root: Path, err: OSError, *, doing: str, also: str = "") -> None:
        hint = os_hint(err) or "check the cache directory"
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            hint += "; `slimline cache prune` removes what recent builds did not use"
        hint += f"; choose the cache with --cache-dir or SLIMLINE_CACHE_DIR{f' ({also})' if also else ''}"
        problem = f"cannot write to the cache {root}: {describe_os_error(err)}"
        super().__init__(problem, doing=doing, hint=hint)
        self.root = root
        self.errno = err.errno


class CacheBusy(SlimlineError):
    def __init__(self, root: Path) -> None:
        super().__init__(
            f"the cache {root} is in use by another slimline process",
            doing="taking the cache for pruning",
            hint="run it again when no build is using this cache",
        )
        self.root = root


def touch(path: Path) -> None:
    """Mark a cache file used now (see ``slimline cache prune``); a missing file is left missing."""
    with contextlib.suppress(OSError):  # missing, not ours, or a read-only file system
        os.utime(path)


def check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SlimlineError(
            f"cannot create the cache directory {root}: {err.strerror}",
            doing="opening the cache",
            hint="set SLIMLINE_CACHE_DIR to a writable directory",
        ) from err
