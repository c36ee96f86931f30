"""Debian ``Packages`` indexes: download (hash-checked against the signed Release), parse, merge.

Trust chain, step 2: each index is downloaded by the SHA256 that the verified Release lists
(:meth:`slimline.http.Http.download` hashes while streaming, stops at the size the Release
gives and stores nothing that does not match), so every stanza parsed here, including each
``.deb``'s SHA256, is vouched for by the archive signature.  Parsing reads only the fields the
resolver needs, line by line as the index decompresses (:func:`read_stanzas`): neither the
text nor the stanzas of other architectures are held, so reading the 60k-stanza main index
costs the memory of the stanzas kept, not of its 60 MB of text.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from debian.debian_support import version_compare

from slimline.base.debian.errors import IndexError_
from slimline.base.debian.release import IndexFile, Release
from slimline.cache.store import Cache
from slimline.http import PACKAGES_TEXT_CAP, Http, HttpError

__all__ = [
    "Record", "Stanza", "download", "from_record", "merge", "parse", "read_index", "read_stanzas",
    "to_record",
]  # fmt: skip

_FIELDS = (
    "Package",
    "Version",
    "Architecture",
    "Source",
    "Depends",
    "Pre-Depends",
    "Provides",
    "Filename",
    "Size",
    "SHA256",
    "Essential",
    "Multi-Arch",
    "Priority",
    "Installed-Size",
)
_LINE = re.compile(r"^(" + "|".join(re.escape(f) for f in _FIELDS) + r"):[ \t]*(.*?)[ \t]*$", re.M)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Stanza:
    """The fields of one binary package that resolution and download need.

    ``origin`` is the index of the archive the stanza came from (0: the suite, 1: -updates,
    2: -security ...), so the caller knows which mirror serves ``filename``.
    """

    name: str
    version: str
    architecture: str
    filename: str
    size: int
    sha256: str
    origin: int
    source: str = ""
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    essential: bool = False
    multi_arch: str = ""
    priority: str = ""
    installed_size: int = 0

    @property
    def source_name(self) -> str:
        """Name of the source package ("python3.11" for "python3.11 (3.11.2-6)")."""
        return (self.source or self.name).split(" ")[0]


def _stanza(d: dict[str, str], *, origin: int, what: str) -> Stanza:
    try:
        name, version, filename = d["Package"], d["Version"], d["Filename"]
        size, sha = int(d["Size"]), d["SHA256"]
    except (KeyError, ValueError) as err:
        raise IndexError_(what, f"stanza {d.get('Package', '?')} lacks or has a bad field: {err}") from err
    if not _SHA256.fullmatch(sha):
        raise IndexError_(what, f"{name}: malformed SHA256 {sha!r}")
    if filename.startswith("/") or ".." in filename.split("/") or "://" in filename or "\\" in filename:
        raise IndexError_(what, f"{name}: unsafe Filename {filename!r}")
    return Stanza(
        name=name,
        version=version,
        architecture=d.get("Architecture", ""),
        filename=filename,
        size=size,
        sha256=sha,
        origin=origin,
        source=d.get("Source", ""),
        depends=d.get("Depends", ""),
        pre_depends=d.get("Pre-Depends", ""),
        provides=d.get("Provides", ""),
        essential=d.get("Essential", "").lower() == "yes",
        multi_arch=d.get("Multi-Arch", ""),
        priority=d.get("Priority", ""),
        installed_size=int(d.get("Installed-Size") or 0),
    )


def parse(text: str, *, origin: int, what: str) -> Iterator[Stanza]:
    """Stanzas of a Packages file, in file order.  ``Package`` starts each stanza (as the archive writes)."""
    return parse_lines(io.StringIO(text), origin=origin, what=what)


def parse_lines(lines: Iterable[str], *, origin: int, what: str) -> Iterator[Stanza]:
    """:func:`parse` over the lines of a Packages file, read one at a time."""
    current: dict[str, str] = {}
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue  # continuation lines, blank lines, fields nobody reads
        key, value = m.group(1), m.group(2)
        if key == "Package":
            if current:
                yield _stanza(current, origin=origin, what=what)
            current = {}
        current[key] = value
    if current:
        yield _stanza(current, origin=origin, what=what)


def _decompressed(path: Path, index: IndexFile) -> BinaryIO:
    """The index file opened for reading its text (xz or gzip undone as it is read)."""
    if index.path.endswith(".xz"):
        return cast(BinaryIO, lzma.open(path))
    if index.path.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path))
    return path.open("rb")


class _Capped(io.RawIOBase):
    """At most ``limit`` bytes of ``raw``; more is an :class:`IndexError_`."""

    def __init__(self, raw: BinaryIO, limit: int, what: str) -> None:
        self._raw, self._left, self._limit, self._what = raw, limit, limit, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise IndexError_(
                self._what, f"it holds more than {self._limit} bytes, the most slimline reads for one index"
            )
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def read_stanzas(path: Path, index: IndexFile, *, origin: int, what: str, arch: str) -> dict[str, Stanza]:
    """:func:`merge` of the stanzas of a downloaded (already hash-verified) index file, parsed as it
    decompresses (at most :data:`slimline.http.PACKAGES_TEXT_CAP` bytes of text)."""
    try:
        with _decompressed(path, index) as f:
            text = io.TextIOWrapper(
                io.BufferedReader(_Capped(f, PACKAGES_TEXT_CAP.bytes, index.path), 1 << 20),
                encoding="utf-8",
                errors="replace",
            )
            return merge([parse_lines(text, origin=origin, what=what)], arch=arch)
    except (lzma.LZMAError, OSError, EOFError) as err:
        raise IndexError_(index.path, f"cannot decompress: {err}") from err


def read_index(path: Path, index: IndexFile) -> str:
    """Decompress a downloaded (already hash-verified) index file into text, of at most
    :data:`slimline.http.PACKAGES_TEXT_CAP` bytes (inflated in bounded steps)."""
    limit = PACKAGES_TEXT_CAP.bytes
    try:
        with _decompressed(path, index) as f:
            raw = f.read(limit + 1)
    except (lzma.LZMAError, OSError, EOFError) as err:
        raise IndexError_(index.path, f"cannot decompress: {err}") from err
    if len(raw) > limit:
        raise IndexError_(
            index.path, f"it holds more than {limit} bytes, the most slimline reads for one index"
        )
    return raw.decode("utf-8", errors="replace")


def download(http: Http, release: Release, index: IndexFile, *, cache: Cache) -> Path:
    """The verified index file in the cache (downloaded if absent).  A mismatch raises
    :class:`slimline.errors.HashMismatch` and stores nothing.

    The by-hash location is tried first; where the archive does not serve it (HTTP 404; the
    security archive lacks it for some indexes) the plain path is fetched, as apt does.  Either
    way the bytes must hash to the signed value.
    """
    what = f"{release.base.rsplit('/', 1)[-1]}/{index.path}"

    def get(url: str) -> Path:
        return http.download(
            url, cache=cache, sha256=index.sha256, what=what, package="Packages index", size=index.size
        )

    url = release.url_of(index)
    plain = f"{release.base}/{index.path}"
    try:
        return get(url)
    except HttpError as err:
        if err.status != 404 or url == plain:
            raise
        return get(plain)


def merge(indexes: Iterable[Iterable[Stanza]], *, arch: str) -> dict[str, Stanza]:
    """One stanza per package name: the highest version over all indexes (the first wins a tie).

    Stanzas for another architecture than ``arch`` or ``all`` are ignored.
    """
    best: dict[str, Stanza] = {}
    for stanzas in indexes:
        for st in stanzas:
            if st.architecture not in (arch, "all"):
                continue
            old = best.get(st.name)
            if old is None or version_compare(st.version, old.version) > 0:
                best[st.name] = st
    return best


_RECORD_FIELDS = tuple(Stanza.__dataclass_fields__)


def to_record(merged: Mapping[str, Stanza]) -> bytes:
    """A compact record of merged stanzas for :func:`from_record`: a JSON header line (the fields,
    each package's name and where its line starts in the body, the ``Provides`` of those that
    provide others, the body's SHA256), then a JSON array of field values per stanza, a line each."""
    names: list[str] = []
    starts: list[int] = []
    lines: list[str] = []
    at = 0
    for st in merged.values():
        line = json.dumps([getattr(st, f) for f in _RECORD_FIELDS], separators=(",", ":")) + "\n"
        names.append(st.name)
        starts.append(at)
        lines.append(line)
        at += len(line)
    body = "".join(lines).encode()
    head = {
        "fields": _RECORD_FIELDS,
        "names": names,
        "starts": starts,
        "provides": [[st.name, st.provides] for st in merged.values() if st.provides],
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + body


def from_record(data: bytes) -> Record:
    """What :func:`to_record` wrote; ``ValueError``/``KeyError``/``TypeError`` if it is not that
    (another version's fields, bytes that are not the ones written)."""
    first, _, body = data.partition(b"\n")
    head = json.loads(first)
    if tuple(head["fields"]) != _RECORD_FIELDS:
        raise ValueError("the record's fields are not this version's")
    if hashlib.sha256(body).hexdigest() != head["sha256"]:
        raise ValueError("the record is not the one written")
    rows = dict(zip(head["names"], head["starts"], strict=True))
    provides = tuple((str(name), str(text)) for name, text in head["provides"])
    if not {name for name, _ in provides} <= rows.keys():
        raise ValueError("the record's providing packages are not in it")
    return Record(body.decode(), rows, provides)


class Record(Mapping[str, Stanza]):
    """Merged stanzas read back from their record: a stanza's fields are parsed when it is first
    looked up (resolution looks at a few hundred of the 60k), so reading a record costs a split
    of its lines.  Its bytes were checked whole against the hash written with them."""

    def __init__(self, text: str, rows: dict[str, int], provides: tuple[tuple[str, str], ...]) -> None:
        self._text = text  # the record's lines
        self._rows = rows  # name -> where its line starts in ``text``
        self._parsed: dict[str, Stanza] = {}
        self._provides = provides

    def __getitem__(self, name: str) -> Stanza:
        st = self._parsed.get(name)
        if st is None:
            start = self._rows[name]
            row = self._text[start : self._text.index("\n", start)]
            st = self._parsed.setdefault(name, _from_row(row))
        return st

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def provides(self) -> tuple[tuple[str, str], ...]:
        """(name, ``provides``) of the stanzas whose ``provides`` is not empty, in order."""
        return self._provides


def _from_row(row: str) -> Stanza:
    st = Stanza(*json.loads(row))
    if not isinstance(st.size, int) or not _SHA256.fullmatch(st.sha256):
        raise ValueError(f"bad stanza {st.name!r} in the record")
    return st
