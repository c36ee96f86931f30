"""Wheels installed into the image's virtual environment as file trees.

Nothing here touches the host's disk except to *read* wheel files: every result is a
:class:`~slimline.layers.filetree.FileTree` whose paths are image paths ("app/.venv/bin/python").
The venv's layout and its skeleton are in :mod:`slimline.trees.venv` (:class:`VenvLayout`,
:func:`venv_tree` and ``DEFAULT_PREFIX`` are importable from here too).

Wheels are installed by pypa ``installer`` through :class:`TreeDestination`, which files
each member into a :class:`~slimline.layers.filetree.TreeBuilder` instead of writing it.
Contracts of :func:`wheel_tree`:

* The wheel is checked first: the limits of :func:`slimline.layers.archives.check_zip`
  (no duplicate members, metadata files at most 64 MiB, no zip bomb), RECORD at most
  :data:`MAX_RECORD_ROWS` rows more than twice the members, every member listed in RECORD,
  RECORD well formed.  Then every member's sha256 and size are checked against RECORD while
  it is streamed (:mod:`slimline.trees.members`): one decompression pass instead of two.  A
  mismatch refuses the wheel (:class:`InvalidWheel`).
* Wheel members are *not* copied into memory: the tree holds sources that re-read the
  member when the layer is written, so the wheel file must stay in place (the cache's blob
  store) until then; ``#!python`` scripts are streamed too, their first line replaced.  Only
  small generated files (entry-point scripts, RECORD, INSTALLER, REQUESTED,
  direct_url.json, slimline_artifact.json) are held as bytes, and what is read whole (RECORD, METADATA, WHEEL,
  entry_points.txt) is capped by the limits above.
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

import configparser
import hashlib
import io
import json
import os
import posixpath
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from installer import install
from installer.destinations import WheelDestination
from installer.exceptions import InstallerError
from installer.records import Hash, InvalidRecordEntry, RecordEntry, parse_record_file
from installer.scripts import InvalidScript
from installer.scripts import Script as EntryPoint
from installer.sources import WheelFile
from installer.utils import Scheme, construct_record_file, fix_shebang

from slimline.errors import SlimlineError, UnsafePath
from slimline.layers.archives import ArchiveRefused, check_zip
from slimline.layers.filetree import FileTree, TreeBuilder
from slimline.target import Target
from slimline.trees import artifactrecord
from slimline.trees.members import (
    CHUNK,
    Check,
    InstallError,
    InvalidWheel,
    Script,
    VerifiedMember,
    b64,
    entry,
    stream_script,
)
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
MAX_RECORD_ROWS = 1000  # RECORD rows allowed beyond twice the wheel's members


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
        check = Check.of(self._expected.get(member) if member is not None else None)
        head = stream.read(8) if scheme == "scripts" else b""
        if head == b"#!python":
            return self._script(full, rel, head, stream, member, check)
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
            source = VerifiedMember(self._archive, member, self._wheel, row)
            self._b.file(full, source, row.size, mode=mode)
            return RecordEntry(rel, row.hash_, row.size)
        h = hashlib.sha256(head)
        check.update(head)
        if member is not None and self._archive is not None:
            while chunk := stream.read(CHUNK):
                h.update(chunk)
                check.update(chunk)
            self._verify(check, member)
            self._b.file(full, VerifiedMember(self._archive, member, self._wheel, row), check.size, mode=mode)
        else:
            buf = io.BytesIO(head)
            buf.seek(0, io.SEEK_END)
            while chunk := stream.read(CHUNK):
                h.update(chunk)
                check.update(chunk)
                buf.write(chunk)
            self._verify(check, member)
            self._b.data(full, buf.getvalue(), mode=mode)
        return RecordEntry(rel, Hash("sha256", b64(h.digest())), check.size)

    def _script(
        self, full: str, rel: str, head: bytes, stream: BinaryIO, member: str | None, check: Check
    ) -> RecordEntry:
        """A ``#!python`` script pointed at the venv's interpreter (installer's fix_shebang):
        streamed from the wheel, or rewritten in memory when it is not from a wheel on disk."""
        new_head = f"#!{self._layout.interpreter}\n".encode()
        check.update(head)
        if member is None or self._archive is None:
            data = head + stream.read()
            check.update(data[len(head) :])
            self._verify(check, member)
            with fix_shebang(io.BytesIO(data), self._layout.interpreter) as fixed:
                data = fixed.read()
            self._b.data(full, data, mode=0o755)
            return entry(rel, data)
        skip, size, h = stream_script(stream, head=new_head, check=check)
        self._verify(check, member)
        source = VerifiedMember(self._archive, member, self._wheel, self._expected.get(member))
        self._b.file(full, Script(source, new_head, skip), size, mode=0o755)
        return RecordEntry(rel, Hash("sha256", b64(h.digest())), size)

    def _verify(self, check: Check, member: str | None) -> None:
        if not check.ok():
            raise InvalidWheel(wheel=self._wheel, issues=[f"hash / size of {member} does not match RECORD"])

    def write_script(self, name: str, module: str, attr: str, section: ScriptSection) -> RecordEntry:
        try:
            script = EntryPoint(name, module, attr, section)
            script_name, data = script.generate(self._layout.interpreter, "posix")
        except InvalidScript as err:
            raise InvalidWheel(wheel=self._wheel, issues=[f"entry point {name}: {err}"]) from err
        full = self._target_path(Scheme("scripts"), script_name)
        self._b.data(full, data, mode=0o755)
        return entry(script_name, data)

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
    artifact: tuple[str, str] | None = None,
) -> FileTree:
    """Install ``wheel`` into the venv at ``prefix`` as a file tree (see the module contracts).

    ``filename`` is the wheel's real name when ``wheel`` is a cache blob path (whose name is
    a hash); the name carries the distribution and version installer needs.  ``direct_url``
    is the PEP 610 document for path/git/URL dependencies; ``requested`` marks a direct
    dependency of the project (PEP 376 ``REQUESTED``).  ``artifact`` is the locked artifact's
    (file name, sha256) the wheel is, or was built from: recorded in the dist-info
    (:mod:`slimline.trees.artifactrecord`).
    """
    name = filename or wheel.name
    layout = VenvLayout.of(target, prefix)
    metadata = _metadata(requested=requested, direct_url=direct_url, artifact=artifact)
    builder = TreeBuilder(uid=uid, gid=gid, archive=name)
    try:
        with zipfile.ZipFile(wheel) as zf:
            check_zip(zf, size=wheel.stat().st_size, archive=name)
            _check_record_rows(zf, name)
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
    except (InstallerError, ValueError, AssertionError, KeyError, configparser.Error) as err:
        issues = getattr(err, "issues", None)
        raise InvalidWheel(wheel=name, issues=issues or [str(err) or type(err).__name__]) from err
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise InvalidWheel(wheel=name, issues=[f"not a zip archive, or a damaged one: {err}"]) from err
    except OSError as err:
        raise InstallError(
            f"cannot read {wheel}: {err.strerror or err}",
            wheel=name,
            hint="check that the file exists and is readable (a cleaned cache?)",
        ) from err
    return builder.freeze()


def _metadata(
    *, requested: bool, direct_url: Mapping[str, Any] | None, artifact: tuple[str, str] | None
) -> dict[str, bytes]:
    """The files installer adds to the dist-info (and lists in its RECORD)."""
    metadata = {"INSTALLER": f"{INSTALLER_NAME}\n".encode()}
    if requested:
        metadata["REQUESTED"] = b""
    if direct_url is not None:
        text = json.dumps(dict(direct_url), sort_keys=True, separators=(",", ":"))
        metadata["direct_url.json"] = text.encode()
    if artifact is not None:
        metadata[artifactrecord.FILENAME] = artifactrecord.render(*artifact)
    return metadata


def _check_record_rows(zf: zipfile.ZipFile, name: str) -> None:
    """Refuse a RECORD of more rows than the wheel could need (it is parsed whole, several
    times): :data:`MAX_RECORD_ROWS` beyond twice the members.  Counted in chunks."""
    infos = zf.infolist()
    limit = 2 * len(infos) + MAX_RECORD_ROWS
    for info in infos:
        top, _, rest = info.filename.partition("/")
        if rest != "RECORD" or not top.endswith(".dist-info"):
            continue
        rows = 0
        with zf.open(info) as stream:
            while chunk := stream.read(CHUNK):
                rows += chunk.count(b"\n")
                if rows > limit:
                    raise ArchiveRefused(
                        f"{info.filename} has more than {limit} rows for {len(infos)} members",
                        archive=name,
                    )


def _record_rows(source: WheelFile, name: str) -> dict[str, RecordEntry]:
    rows: dict[str, RecordEntry] = {}
    for elements in parse_record_file(source.read_dist_info("RECORD").splitlines()):
        try:
            rows[elements[0]] = RecordEntry.from_elements(*elements)
        except InvalidRecordEntry as err:
            raise InvalidWheel(wheel=name, issues=[f"RECORD row for {elements[0]}: {err.issues}"]) from err
    return rows
