"""Wheel members as tree sources, checked against the wheel's RECORD while they stream.

Contract: a source made here re-reads its member from the wheel file each time it is opened
(the layer writer opens it once), hashes the bytes as they pass and compares them with the
member's RECORD row at the end of the member: a mismatch, a damaged zip stream (bad CRC,
truncated data) or a member shorter than its row raises :class:`InvalidWheel` there, so no
layer is stored from it.  Nothing is held in memory but one chunk.

* :class:`VerifiedMember`: a member installed as it is;
* :class:`Script`: a ``#!python`` script whose first line is replaced by the venv's
  interpreter (what installer's ``fix_shebang`` does), streamed instead of read whole.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from installer.records import Hash, RecordEntry

from slimline.errors import SlimlineError
from slimline.layers.filetree import ZipMember

__all__ = [
    "Check",
    "InstallError",
    "InvalidWheel",
    "Script",
    "VerifiedMember",
    "b64",
    "entry",
    "stream_script",
]

CHUNK = 1 << 20


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


def b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def entry(rel: str, data: bytes) -> RecordEntry:
    return RecordEntry(rel, Hash("sha256", b64(hashlib.sha256(data).digest())), len(data))


class Check:
    """Hashes a member as it streams past and compares it with its RECORD row (if it has one)."""

    def __init__(self, row: RecordEntry | None, hasher: Any) -> None:
        self._row = row
        self._h = hasher
        self.size = 0

    @classmethod
    def of(cls, row: RecordEntry | None) -> Check:
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
        return bool(self._row.hash_.value == b64(self._h.digest()))


@dataclass(frozen=True, slots=True)
class VerifiedMember:
    """A wheel member whose bytes are checked against ``row`` as they are read (see the contract)."""

    archive: Path
    name: str
    wheel: str
    row: RecordEntry | None

    def open(self) -> BinaryIO:
        return _Verifying(ZipMember(self.archive, self.name).open(), self)  # type: ignore[return-value]


class _Reader(io.RawIOBase):
    """A readable raw stream defined by :meth:`read` alone."""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Verifying(_Reader):
    def __init__(self, stream: BinaryIO, member: VerifiedMember) -> None:
        self._s, self._m = stream, member
        self._check = Check.of(member.row)
        self._done = False

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._s.read(n)
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise InvalidWheel(wheel=self._m.wheel, issues=[f"{self._m.name} is damaged: {err}"]) from err
        self._check.update(data)
        row_size = self._m.row.size if self._m.row is not None else None
        if not self._done and (not data or self._check.size >= (row_size or 0)):
            self._done = True
            if not self._check.ok():
                raise InvalidWheel(
                    wheel=self._m.wheel, issues=[f"hash / size of {self._m.name} does not match RECORD"]
                )
        return data

    def close(self) -> None:
        self._s.close()
        super().close()


@dataclass(frozen=True, slots=True)
class Script:
    """``member``'s bytes with its first ``skip`` bytes (the ``#!python`` line) replaced by ``head``."""

    member: VerifiedMember
    head: bytes
    skip: int

    def open(self) -> BinaryIO:
        stream = self.member.open()
        left = self.skip
        while left > 0:
            data = stream.read(min(left, CHUNK))
            if not data:
                break
            left -= len(data)
        return _Prefixed(self.head, stream)  # type: ignore[return-value]


class _Prefixed(_Reader):
    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._s = head, stream

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            data, self._head = self._head + self._s.read(), b""
            return data
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._s.read(n)

    def close(self) -> None:
        self._s.close()
        super().close()


def stream_script(stream: BinaryIO, *, head: bytes, check: Check) -> tuple[int, int, Any]:
    """Read a ``#!python`` script after its first 8 bytes, in chunks, updating ``check`` with the
    member's bytes; returns (bytes of its first line, size with ``head`` instead, sha256 of that)."""
    skip = 8
    line = b""
    while not line.endswith(b"\n"):
        line = stream.readline(CHUNK)
        if not line:
            break
        check.update(line)
        skip += len(line)
    h = hashlib.sha256(head)
    size = len(head)
    while chunk := stream.read(CHUNK):
        check.update(chunk)
        h.update(chunk)
        size += len(chunk)
    return skip, size, h
