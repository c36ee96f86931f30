"""Hostile wheels, sdists and locks, generated at test time for :mod:`tests.hostile.test_artifacts`.

Every builder writes real archives byte for byte as an attacker could: ``zipfile``/``tarfile``
where they can express the trick, and a small raw zip writer (:func:`raw_zip`) where they
cannot (declared sizes that lie, members repeated under one name, bombs whose compressed
bytes are one deflate segment repeated).  Nothing here imitates slimline's own code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NAME, VERSION = "evil", "1.0"
DIST = f"{NAME}-{VERSION}.dist-info"
WHEEL_NAME = f"{NAME}-{VERSION}-py3-none-any.whl"
SDIST_NAME = f"{NAME}-{VERSION}.tar.gz"
MIB = 1 << 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def metadata(name: str = NAME, version: str = VERSION) -> list[tuple[str, bytes]]:
    dist = f"{name}-{version}.dist-info"
    return [
        (f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()),
        (
            f"{dist}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]


def wheel(
    members: Sequence[tuple[str, bytes]] = (),
    *,
    unlisted: Sequence[tuple[str, bytes]] = (),
    record: str | None = None,
    dist: str = DIST,
    meta: Sequence[tuple[str, bytes]] | None = None,
) -> bytes:
    """A wheel of ``members`` plus METADATA and WHEEL, with a correct RECORD unless ``record``
    replaces it; ``unlisted`` members are added to the zip after RECORD and not listed in it."""
    files = [(f"{NAME}/__init__.py", b"VALUE = 1\n"), *members, *(meta if meta is not None else metadata())]
    text = (
        record if record is not None else "".join(record_line(p, d) for p, d in files) + f"{dist}/RECORD,,\n"
    )
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in [*files, (f"{dist}/RECORD", text.encode()), *unlisted]:
            zf.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


# --- raw zips -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """One zip member as written: ``payload`` is the raw deflate stream (method 8) or the bytes
    (method 0); ``size`` and ``crc`` are what the headers declare, true or not."""

    name: str
    payload: bytes
    size: int
    crc: int
    method: int = 8

    @classmethod
    def of(cls, name: str, data: bytes) -> Raw:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return cls(name, c.compress(data) + c.flush(), len(data), zlib.crc32(data))


def repeated(chunk: bytes, times: int, *, head: bytes = b"", tail: bytes = b"") -> tuple[bytes, int, int]:
    """A deflate stream of ``head + chunk * times + tail`` that costs one compression of
    ``chunk``: after a full flush no block refers back, so one segment may be repeated.
    Returns (stream, uncompressed size, crc32)."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH)
    seg_c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = seg_c.compress(chunk) + seg_c.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    end = last.compress(tail) + last.flush()
    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    return start + segment * times + end, len(head) + len(chunk) * times + len(tail), crc


def raw_zip(members: Iterable[Raw]) -> bytes:
    """A zip (no zip64) of ``members`` in order, exactly as declared."""
    out = io.BytesIO()
    central = io.BytesIO()
    count = 0
    for m in members:
        name = m.name.encode()
        offset = out.tell()
        fields = (20, 0, m.method, 0, 0x21, m.crc, len(m.payload), m.size & 0xFFFFFFFF, len(name), 0)
        out.write(struct.pack("<4s5HIIIHH", b"PK\x03\x04", *fields) + name + m.payload)
        central.write(
            struct.pack(
                "<4s6HIIIHHHHHII", b"PK\x01\x02", 0x031E, *fields[:-1], 0, 0, 0, 0, 0o644 << 16, offset
            )
            + name
        )
        count += 1
    start = out.tell()
    out.write(central.getvalue())
    out.write(struct.pack("<4s4HIIH", b"PK\x05\x06", 0, 0, count, count, len(central.getvalue()), start, 0))
    return out.getvalue()


def bomb_wheel(name: str, *, mib: int, head: bytes = b"", chunk: bytes = bytes(MIB)) -> bytes:
    """A valid-looking wheel whose member ``name`` unpacks to ``head`` + ``mib`` MiB of ``chunk``,
    listed in RECORD with its true size and hash (so only its size is wrong with it)."""
    stream, size, crc = repeated(chunk, mib, head=head)
    h = hashlib.sha256(head)
    for _ in range(mib):
        h.update(chunk)
    digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    small = [(f"{NAME}/__init__.py", b"VALUE = 1\n"), *metadata()]
    record = (
        "".join(record_line(p, d) for p, d in small) + f"{name},sha256={digest},{size}\n{DIST}/RECORD,,\n"
    )
    members = [Raw.of(p, d) for p, d in small]
    return raw_zip([*members, Raw(name, stream, size, crc), Raw.of(f"{DIST}/RECORD", record.encode())])


def record_bomb(*, mib: int) -> bytes:
    """A wheel whose RECORD unpacks to ``mib`` MiB of rows (the listed files come first)."""
    small = [(f"{NAME}/__init__.py", b"VALUE = 1\n"), *metadata()]
    head = ("".join(record_line(p, d) for p, d in small) + f"{DIST}/RECORD,,\n").encode()
    row = b"evil/x.py,,\n" * (MIB // 12)
    stream, size, crc = repeated(row, mib, head=head)
    return raw_zip([*(Raw.of(p, d) for p, d in small), Raw(f"{DIST}/RECORD", stream, size, crc)])


def declared_size_lie(*, declared: int) -> bytes:
    """A wheel whose module's headers declare ``declared`` bytes; RECORD has the true ones."""
    data = b"VALUE = 1\n"
    files = [(f"{NAME}/__init__.py", data), *metadata()]
    record = "".join(record_line(p, d) for p, d in files) + f"{DIST}/RECORD,,\n"
    raw = Raw.of(f"{NAME}/__init__.py", data)
    lying = Raw(raw.name, raw.payload, declared, raw.crc)
    return raw_zip([lying, *(Raw.of(p, d) for p, d in files[1:]), Raw.of(f"{DIST}/RECORD", record.encode())])


def duplicate_member() -> bytes:
    """Two members named ``evil/__init__.py``: RECORD lists the first one's bytes."""
    first, second = b"VALUE = 1\n", b"import os; os.system('id')\n"
    files = [(f"{NAME}/__init__.py", first), *metadata()]
    record = "".join(record_line(p, d) for p, d in files) + f"{DIST}/RECORD,,\n"
    members = [Raw.of(p, d) for p, d in files]
    return raw_zip(
        [*members, Raw.of(f"{NAME}/__init__.py", second), Raw.of(f"{DIST}/RECORD", record.encode())]
    )


def elf_bomb(*, mib: int) -> bytes:
    """A wheel shipping ``evil/_x.so``: a 64-bit ELF header then ``mib`` MiB of zeros."""
    header = (
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, 64, 0, 64, 56, 0, 64, 0, 0)
    )
    return bomb_wheel(f"{NAME}/_x.so", mib=mib, head=header)


# --- sdists ---------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One tar entry: ``kind`` is file, dir, symlink, hardlink, fifo, chr or blk."""

    name: str
    kind: str = "file"
    data: bytes = b""
    link: str = ""


_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
}


def sdist(entries: Sequence[Entry]) -> bytes:
    """A ``.tar.gz`` of ``evil-1.0/PKG-INFO`` and ``pyproject.toml`` followed by ``entries``."""
    top = f"{NAME}-{VERSION}"
    base = [
        Entry(f"{top}/PKG-INFO", data=f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode()),
        Entry(f"{top}/pyproject.toml", data=b'[project]\nname = "evil"\nversion = "1.0"\n'),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for e in [*base, *entries]:
            info = tarfile.TarInfo(e.name)
            info.type = _KINDS[e.kind]
            info.mode = 0o755 if e.kind == "dir" else 0o644
            info.linkname = e.link
            info.size = len(e.data) if e.kind == "file" else 0
            tf.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return buf.getvalue()


def record_rows_bomb(*, mib: int) -> bytes:
    """A wheel whose RECORD stays under the size cap but holds ``mib`` MiB of four-byte rows."""
    small = [(f"{NAME}/__init__.py", b"VALUE = 1\n"), *metadata()]
    head = ("".join(record_line(p, d) for p, d in small) + f"{DIST}/RECORD,,\n").encode()
    stream, size, crc = repeated(b"x,,\n" * (MIB // 4), mib, head=head)
    return raw_zip([*(Raw.of(p, d) for p, d in small), Raw(f"{DIST}/RECORD", stream, size, crc)])


def record_long_row(*, mib: int) -> bytes:
    """A wheel whose RECORD ends in one row of ``mib`` MiB (under the size cap, few rows)."""
    small = [(f"{NAME}/__init__.py", b"VALUE = 1\n"), *metadata()]
    head = ("".join(record_line(p, d) for p, d in small) + f"{DIST}/RECORD,,\n").encode()
    stream, size, crc = repeated(b"x" * MIB, mib, head=head, tail=b",,\n")
    return raw_zip([*(Raw.of(p, d) for p, d in small), Raw(f"{DIST}/RECORD", stream, size, crc)])


def entry_points(*, count: int, duplicate: bool = False) -> bytes:
    """A wheel declaring ``count`` console scripts (each becomes a file), or one name twice."""
    lines = [
        b"[console_scripts]\n",
        *(b"s%07d = evil:main\n" % (0 if duplicate else i) for i in range(count)),
    ]
    return wheel(meta=[*metadata(), (f"{DIST}/entry_points.txt", b"".join(lines))])


def crc_lie() -> bytes:
    """A wheel whose module's bytes match RECORD but not the CRC its zip headers declare."""
    data = b"VALUE = 1\n"
    files = [(f"{NAME}/__init__.py", data), *metadata()]
    record = "".join(record_line(p, d) for p, d in files) + f"{DIST}/RECORD,,\n"
    raw = Raw.of(f"{NAME}/__init__.py", data)
    lying = Raw(raw.name, raw.payload, raw.size, raw.crc ^ 0xFFFF)
    return raw_zip([lying, *(Raw.of(p, d) for p, d in files[1:]), Raw.of(f"{DIST}/RECORD", record.encode())])


def pax_bomb(*, mib: int) -> bytes:
    """A ``.tar.gz`` whose first header is a pax record of ``mib`` MiB (``tarfile`` reads those whole)."""
    chunk = (b"100 comment=" + b"x" * 87 + b"\n") * (MIB // 100)  # 100-byte records
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(chunk) * mib
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    pad = bytes(-info.size % tarfile.BLOCKSIZE)
    after = tarfile.TarInfo(f"{NAME}-{VERSION}/x").tobuf(format=tarfile.USTAR_FORMAT) + bytes(1024)
    stream, total, crc = repeated(chunk, mib, head=header, tail=pad + after)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + stream + struct.pack("<II", crc, total & 0xFFFFFFFF)


def gzip_bomb(*, mib: int) -> bytes:
    """A ``.tar.gz`` whose one file unpacks to ``mib`` MiB of zeros (about ``mib`` KiB of gzip)."""
    info = tarfile.TarInfo(f"{NAME}-{VERSION}/zeros")
    info.size = mib * MIB
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    stream, size, crc = repeated(bytes(MIB), mib, head=header, tail=bytes(1024))
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + stream + struct.pack("<II", crc, size & 0xFFFFFFFF)


# --- projects and locks ---------------------------------------------------------------------------


@dataclass
class Locked:
    """A ``[[package]]`` of the lock: ``files`` are (file name, sha256 hex); ``source`` is the
    ``[package.source]`` table (None: the project's index)."""

    name: str = NAME
    version: str = VERSION
    files: Sequence[tuple[str, str]] = ()
    source: dict[str, str] | None = None


@dataclass
class Project:
    """A ``package-mode = false`` project with one file, depending on every locked package."""

    packages: Sequence[Locked]
    index_url: str
    slimline: dict[str, object] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)


def _toml(value: object) -> str:
    """A TOML value of strings, lists and flat tables (JSON strings are TOML basic strings)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def write_project(root: Path, spec: Project) -> Path:
    from slimline.project import pyproject as project_mod

    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text("print('hello')\n")
    # a url source is named by the dependency, as Poetry writes it (slimline refuses a lock that
    # takes a package from a URL the project does not name)
    deps = [
        f"{p.name} @ {p.source['url']}" if p.source is not None and p.source.get("type") == "url" else p.name
        for p in spec.packages
    ]
    urls = "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in spec.urls.items())
    settings = "".join(f"{k} = {_toml(v)}\n" for k, v in {"include": ["main.py"], **spec.slimline}.items())
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "victim"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = {_toml(deps)}\n\n[project.urls]\n{urls}\n"
        f'[tool.poetry]\npackage-mode = false\n\n[[tool.poetry.source]]\nname = "local"\n'
        f'url = {json.dumps(spec.index_url)}\npriority = "primary"\n\n[tool.slimline]\n{settings}'
    )
    blocks = []
    for p in spec.packages:
        files = "".join(f'    {{file = {json.dumps(f)}, hash = "sha256:{h}"}},\n' for f, h in p.files)
        source = p.source or {"type": "legacy", "url": spec.index_url, "reference": "local"}
        table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in source.items())
        blocks.append(
            f'[[package]]\nname = "{p.name}"\nversion = "{p.version}"\ndescription = ""\noptional = false\n'
            f'python-versions = "*"\ngroups = ["main"]\nfiles = [\n{files}]\n\n[package.source]\n{table}\n'
        )
    digest = project_mod.load(root).content_hash()
    (root / "poetry.lock").write_text(
        "# This file is automatically @generated by Poetry 2.1.3 and should not be changed by hand.\n\n"
        + "".join(blocks)
        + f'[metadata]\nlock-version = "2.1"\npython-versions = ">=3.11"\ncontent-hash = "{digest}"\n'
    )
    return root
