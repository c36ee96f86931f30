"""Wheels installed into the image's virtual environment as file trees.

Nothing here touches the host's disk except to *read* wheel files: every result is a
:class:`~slimline.layers.filetree.FileTree` whose paths are image paths ("app/.venv/bin/python").
The venv's layout and its skeleton are in :mod:`slimline.trees.venv` (:class:`VenvLayout`,
:func:`venv_tree` and ``DEFAULT_PREFIX`` are importable from here too).

Wheels are installed by pypa ``installer`` through :class:`TreeDestination`, which files
each member into a :class:`~slimline.layers.filetree.TreeBuilder` instead of writing it.
Contracts of :func:`wheel_tree`:

* The wheel is checked first (every member listed in RECORD, RECORD well formed), and
  every member's sha256 and size are checked against RECORD while it is streamed for
  installation: one decompression pass instead of two.  A mismatch refuses the wheel
  (:class:`InvalidWheel`).
* Wheel members are *not* copied into memory: the tree holds
  ``ZipMember(wheel, member)`` sources that re-read the member when the layer is written,
  so the wheel file must stay in place (the cache's blob store) until then.  Only small
  generated files (entry-point scripts, ``#!python`` scripts whose shebang is rewritten,
  RECORD, INSTALLER, REQUESTED, direct_url.json) are held as bytes.  (``ZipMember.open``
  currently decompresses a member into memory when the layer is written; members are
  streamed here, one at a time.)
* Shebangs name the venv's interpreter inside the image (``#!/app/.venv/bin/python``).
  Prefixes that would need installer's ``/bin/sh`` trampoline (spaces, over 125 bytes)
  are refused, because distroless bases have no ``/bin/sh``.
* Modes: 0755 for members with an executable bit and for everything in ``bin/``,
  0644 otherwise; directories 0755; owner ``uid``/``gid``.  The same wheel and options
  always give the same tree (hence the same layer digest).

Bytecode (``.pyc``) is deliberately not produced: it must be compiled by the *target's*
Python minor version, which the build host may not have.  Python compiles on first import
(or skips caching on a read-only filesystem).  This is a possible later addition when the
host and target versions agree.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import posixpath
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from installer import install
from installer.destinations import WheelDestination
from installer.exceptions import InstallerError
from installer.records import Hash, InvalidRecordEntry, RecordEntry, parse_record_file
from installer.scripts import InvalidScript, Script
from installer.sources import WheelFile
from installer.utils import Scheme, construct_record_file, fix_shebang

from slimline.errors import SlimlineError, UnsafePath
from slimline.layers.filetree import FileTree, TreeBuilder, ZipMember
from slimline.target import Target
from slimline.trees.venv import DEFAULT_PREFIX, VenvLayout, venv_tree

if TYPE_CHECKING:
    from installer.scripts import ScriptSection

__all__ = [
    "DEFAULT_PREFIX",
    "FORMAT_VERSION",
    "INSTALLER_NAME",
    "InstallError",
    "InvalidWheel",
    "TreeDestination",
    "VenvLayout",
    "venv_tree",
    "wheel_tree",
]

INSTALLER_NAME = "slimline"
FORMAT_VERSION = "1"  # bump when the tree made from the same wheel and options changes
_CHUNK = 1 << 20


class InstallError(SlimlineError):
    """Installing a wheel into the image's venv failed; ``wheel`` is its file name."""

    def __init__(self, problem: str, *, wheel: str, hint: str = "") -> None:
        super().__init__(problem, doing=f"installing {wheel}", hint=hint)
        self.wheel = wheel


class InvalidWheel(InstallError):
    """The wheel is malformed, or its contents do not match its RECORD; ``issues`` lists why."""

    def __init__(self, *, wheel: str, issues: Iterable[str]) -> None:
        self.issues = tuple(issues)
        more = len(self.issues) - 5
        shown = "; ".join(self.issues[:5]) + (f" (and {more} more)" if more > 0 else "")
        super().__init__(
            f"the wheel is invalid: {shown}",
            wheel=wheel,
            hint="the wheel is damaged or was built wrongly; do not install it. Re-download it "
            "(clear it from the cache) or rebuild it, and report it to the package's maintainers",
        )


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _entry(rel: str, data: bytes) -> RecordEntry:
    return RecordEntry(rel, Hash("sha256", _b64(hashlib.sha256(data).digest())), len(data))


@dataclass(frozen=True, slots=True)
class _VerifiedMember:
    """A wheel member whose bytes are hashed and compared with its RECORD row while they are
    read (normally once, by the layer writer); a mismatch raises :class:`InvalidWheel` then,
    so the layer is never stored."""

    archive: Path
    name: str
    wheel: str
    row: RecordEntry

    def open(self) -> BinaryIO:
        return _Verifying(ZipMember(self.archive, self.name).open(), self)  # type: ignore[return-value]


class _Verifying(io.RawIOBase):
    def __init__(self, stream: BinaryIO, member: _VerifiedMember) -> None:
        self._s, self._m = stream, member
        self._check = _Check.of(member.row)
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._s.read(n)
        self._check.update(data)
        if not self._done and (not data or self._check.size >= (self._m.row.size or 0)):
            self._done = True
            if not self._check.ok():
                raise InvalidWheel(
                    wheel=self._m.wheel, issues=[f"hash / size of {self._m.name} does not match RECORD"]
                )
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._s.close()
        super().close()


class _Check:
    """Hashes a member as it streams past and compares it with its RECORD row (if it has one)."""

    def __init__(self, row: RecordEntry | None, hasher: Any) -> None:
        self._row = row
        self._h = hasher
        self.size = 0

    @classmethod
    def of(cls, row: RecordEntry | None) -> _Check:
        if row is None or row.hash_ is None:
            # validate_record already refused members missing from RECORD; signatures may be.
            return cls(None, None)
        try:
            return cls(row, hashlib.new(row.hash_.name))
        except ValueError:
            return cls(row, None)  # an unknown algorithm: ok() reports the mismatch

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if self._h is not None:
            self._h.update(data)

    def ok(self) -> bool:
        if self._row is None or self._row.hash_ is None:
            return True
        if self._h is None or self._row.size != self.size:
            return False
        return bool(self._row.hash_.value == _b64(self._h.digest()))


class TreeDestination(WheelDestination):
    """A ``WheelDestination`` that files everything into ``builder`` under ``layout``.

    ``archive`` is the wheel file on disk: members streamed from it are recorded as
    :class:`ZipMember` sources instead of being copied.  ``expected`` maps member names to
    their RECORD rows; each member streamed from ``archive`` is checked against its row.
    """

    def __init__(
        self,
        builder: TreeBuilder,
        *,
        layout: VenvLayout,
        distribution: str,
        wheel_name: str,
        archive: Path | None = None,
        expected: Mapping[str, RecordEntry] | None = None,
    ) -> None:
        self._b = builder
        self._layout = layout
        self._scheme = layout.scheme(distribution)
        self._wheel = wheel_name
        self._archive = archive
        self._expected = dict(expected or {})
        self._written: set[str] = set()

    def _target_path(self, scheme: Scheme, path: str) -> str:
        base = self._scheme[scheme]
        full = posixpath.normpath(posixpath.join(base, path))
        if not full.startswith(base + "/") or "\x00" in full:
            raise UnsafePath(path=f"{scheme}/{path}", archive=self._wheel)
        if full in self._written:
            raise InstallError(
                f"{full} would be written twice",
                wheel=self._wheel,
                hint="the wheel lists the same installed file twice (e.g. a script and an entry point "
                "of the same name); it needs fixing upstream",
            )
        self._written.add(full)
        return full

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        rel = os.fspath(path)
        full = self._target_path(scheme, rel)
        member = stream.name if isinstance(stream, zipfile.ZipExtFile) else None
        check = _Check.of(self._expected.get(member) if member is not None else None)
        head = stream.read(8) if scheme == "scripts" else b""
        if head == b"#!python":
            # A script to point at the venv's interpreter: small, so rewritten in memory.
            data = head + stream.read()
            check.update(data)
            self._verify(check, member)
            with fix_shebang(io.BytesIO(data), self._layout.interpreter) as fixed:
                data = fixed.read()
            self._b.data(full, data, mode=0o755)
            return _entry(rel, data)
        mode = 0o755 if is_executable or scheme == "scripts" else 0o644
        row = self._expected.get(member) if member is not None else None
        if (
            not head
            and member is not None
            and self._archive is not None
            and row is not None
            and row.hash_ is not None
            and row.size is not None
            and isinstance(stream, zipfile.ZipExtFile)
            and stream._orig_file_size == row.size  # type: ignore[attr-defined]  # the central directory
        ):
            # One pass: the bytes are checked against RECORD when the layer writer reads them.
            source = _VerifiedMember(self._archive, member, self._wheel, row)
            self._b.file(full, source, row.size, mode=mode)
            return RecordEntry(rel, row.hash_, row.size)
        h = hashlib.sha256(head)
        check.update(head)
        if member is not None and self._archive is not None:
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
                check.update(chunk)
            self._verify(check, member)
            self._b.file(full, ZipMember(self._archive, member), check.size, mode=mode)
        else:
            buf = io.BytesIO(head)
            buf.seek(0, io.SEEK_END)
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
                check.update(chunk)
                buf.write(chunk)
            self._verify(check, member)
            self._b.data(full, buf.getvalue(), mode=mode)
        return RecordEntry(rel, Hash("sha256", _b64(h.digest())), check.size)

    def _verify(self, check: _Check, member: str | None) -> None:
        if not check.ok():
            raise InvalidWheel(wheel=self._wheel, issues=[f"hash / size of {member} does not match RECORD"])

    def write_script(self, name: str, module: str, attr: str, section: ScriptSection) -> RecordEntry:
        try:
            script = Script(name, module, attr, section)
            script_name, data = script.generate(self._layout.interpreter, "posix")
        except InvalidScript as err:
            raise InvalidWheel(wheel=self._wheel, issues=[f"entry point {name}: {err}"]) from err
        full = self._target_path(Scheme("scripts"), script_name)
        self._b.data(full, data, mode=0o755)
        return _entry(script_name, data)

    def finalize_installation(
        self, scheme: Scheme, record_file_path: str, records: Iterable[tuple[Scheme, RecordEntry]]
    ) -> None:
        root = self._scheme[scheme]

        def prefix_for_scheme(file_scheme: Scheme) -> str | None:
            if file_scheme == scheme or self._scheme[file_scheme] == root:
                return None
            return posixpath.relpath(self._scheme[file_scheme], root) + "/"

        with construct_record_file(list(records), prefix_for_scheme) as stream:
            data = stream.read()
        self._b.data(self._target_path(scheme, record_file_path), data)


def wheel_tree(
    wheel: Path,
    *,
    target: Target,
    prefix: str = DEFAULT_PREFIX,
    uid: int = 0,
    gid: int = 0,
    direct_url: Mapping[str, Any] | None = None,
    requested: bool = False,
    filename: str | None = None,
) -> FileTree:
    """Install ``wheel`` into the venv at ``prefix`` as a file tree (see the module contracts).

    ``filename`` is the wheel's real name when ``wheel`` is a cache blob path (whose name is
    a hash); the name carries the distribution and version installer needs.  ``direct_url``
    is the PEP 610 document for path/git/URL dependencies; ``requested`` marks a direct
    dependency of the project (PEP 376 ``REQUESTED``).
    """
    name = filename or wheel.name
    layout = VenvLayout.of(target, prefix)
    metadata = {"INSTALLER": f"{INSTALLER_NAME}\n".encode()}
    if requested:
        metadata["REQUESTED"] = b""
    if direct_url is not None:
        text = json.dumps(dict(direct_url), sort_keys=True, separators=(",", ":"))
        metadata["direct_url.json"] = text.encode()
    builder = TreeBuilder(uid=uid, gid=gid, archive=name)
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.filename = name  # installer parses the distribution and version from this name
            source = WheelFile(zf)
            source.validate_record(validate_contents=False)
            expected = _record_rows(source, name)
            dest = TreeDestination(
                builder,
                layout=layout,
                distribution=source.distribution,
                wheel_name=name,
                archive=wheel,
                expected=expected,
            )
            install(source, dest, metadata)
    except SlimlineError:
        raise
    except (InstallerError, ValueError, AssertionError, KeyError) as err:
        issues = getattr(err, "issues", None)
        raise InvalidWheel(wheel=name, issues=issues or [str(err) or type(err).__name__]) from err
    except zipfile.BadZipFile as err:
        raise InvalidWheel(wheel=name, issues=[f"not a zip archive: {err}"]) from err
    except OSError as err:
        raise InstallError(
            f"cannot read {wheel}: {err.strerror or err}",
            wheel=name,
            hint="check that the file exists and is readable (a cleaned cache?)",
        ) from err
    return builder.freeze()


def _record_rows(source: WheelFile, name: str) -> dict[str, RecordEntry]:
    rows: dict[str, RecordEntry] = {}
    for elements in parse_record_file(source.read_dist_info("RECORD").splitlines()):
        try:
            rows[elements[0]] = RecordEntry.from_elements(*elements)
        except InvalidRecordEntry as err:
            raise InvalidWheel(wheel=name, issues=[f"RECORD row for {elements[0]}: {err.issues}"]) from err
    return rows
