"""Wheels of a local source tree derived from the last one its backend built.

A one-line change to an app should not cost a PEP 517 build (a backend subprocess: about
0.2 s with poetry-core, most of a code-change rebuild).  Contract:

- :func:`remember` is called after the backend built tree ``T`` into wheel ``W``.  It records
  ``T``'s files (:func:`slimline.artifacts.wheelcache.tree_files`) and which members of ``W`` are
  verbatim copies of which files of ``T``.
- :func:`derive` returns, for a tree ``T'`` with the same files as ``T`` whose changes are all
  to the *contents* of such copied module files or of files that were not in ``W`` at all (a
  test, ``poetry.lock``), the wheel the backend would have written: ``W`` with the copied
  members replaced and their RECORD lines updated, every other member, its order, timestamps
  and compression as in ``W``.  Anything else returns None and the caller runs the backend: a
  file added, removed, renamed or whose mode changed; a change to ``pyproject.toml``, the
  readme, a VCS ignore file or any file whose bytes were in ``W`` but not as a copied module
  (license files, data under another name); a backend other than the ones known to copy files
  verbatim and derive nothing from their contents (poetry-core without a ``build`` script).

The derived wheel is a pure function of ``W`` and ``T'``, so equal inputs still give equal
layers; the tests check it against what the backend itself writes for ``T'``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimline.artifacts.wheelcache import (
    TreeFile,
    build_key,
    built_wheel,
    keep_built,
    stored_wheel,
    tree_files,
    tree_hash,
)
from slimline.cache import keys
from slimline.cache.store import Cache, sha256_file

__all__ = ["Known", "derive", "known", "module_changes", "new_record", "record_member", "remember"]

FORMAT = 2
_COPYING_BACKENDS = frozenset({"poetry.core.masonry.api"})


@dataclass(frozen=True, slots=True)
class Known:
    """What the cache knows of a local tree's wheel (:func:`known`)."""

    files: tuple[TreeFile, ...]
    key: str  # the built-wheel key of this exact tree
    slot: str  # the tree across its versions, for :func:`remember`
    wheel: Path | None  # None: the backend must build it
    derived: bool  # the wheel was just derived (not found built)


def known(root: Path, *, cache: Cache) -> Known:
    """The wheel of the tree at ``root`` if one was built from these exact files or can be
    derived from the previous one; without running a backend or importing one."""
    files = tree_files(root, cache=cache)
    path = str(root.resolve())
    key = build_key(kind="tree", tree=tree_hash(files), path=path)
    slot = build_key(kind="tree-slot", path=path)
    hit = built_wheel(cache, key, package=path)
    if hit is not None:
        return Known(files, key, slot, hit, False)
    made = derive(root, files, cache=cache, slot=slot, key=key)
    return Known(files, key, slot, made, made is not None)


def remember(root: Path, files: Sequence[TreeFile], wheel: Path, *, cache: Cache, slot: str) -> None:
    """Record that the backend built ``files`` (the tree at ``root``) into ``wheel``.

    ``slot`` names the tree across its versions (its path and the host that builds it).
    Nothing is recorded for a backend whose output :func:`derive` cannot reproduce.
    """
    data = _pyproject(root)
    if not _copying_backend(data):
        cache.write_meta(keys.DERIVE, slot, b"{}")
        return
    protected = _protected(data)
    by_digest: dict[str, list[str]] = {}
    for f in files:
        if not f.link and f.path not in protected:
            by_digest.setdefault(f.digest, []).append(f.path)
    members = _member_digests(wheel)
    copies: dict[str, str] = {}
    for member, digest in members.items():
        top = member.split("/", 1)[0]
        if "/" not in member or top.endswith((".dist-info", ".data")):
            continue
        # the source is the one tree file with these bytes whose path ends in the member's
        sources = [p for p in by_digest.get(digest, ()) if p == member or p.endswith("/" + member)]
        if len(sources) == 1:
            copies[member] = sources[0]
    # a file copied into two members is not derivable (one member would go stale)
    counts: dict[str, int] = {}
    for source in copies.values():
        counts[source] = counts.get(source, 0) + 1
    copies = {m: s for m, s in copies.items() if counts[s] == 1}
    _record(files, wheel, members, copies, sorted(protected), cache=cache, slot=slot)


def _member_digests(wheel: Path) -> dict[str, str]:
    """The sha256 (hex) of every file member of ``wheel``, by member name (streamed)."""
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                h = hashlib.sha256()
                with zf.open(info) as stream:
                    while chunk := stream.read(1 << 20):
                        h.update(chunk)
                out[info.filename] = h.hexdigest()
    return out


def record_member(names: Iterable[str]) -> str | None:
    """The wheel's ``<name>.dist-info/RECORD`` among its member ``names``."""
    return next((n for n in names if n.endswith(".dist-info/RECORD") and n.count("/") == 1), None)


def _record(
    files: Sequence[TreeFile],
    wheel: Path,
    members: Mapping[str, str],
    copies: Mapping[str, str],
    protected: Sequence[str],
    *,
    cache: Cache,
    slot: str,
) -> None:
    record = {
        "format": FORMAT,
        "tree": [[f.path, f.link, f.exec_bits, f.size, f.digest] for f in files],
        "wheel": {"filename": wheel.name, "sha256": sha256_file(wheel)},
        "copies": dict(copies),
        "members": sorted(set(members.values())),  # the sha256 of every member's contents
        "protected": list(protected),
    }
    cache.write_meta(keys.DERIVE, slot, json.dumps(record, sort_keys=True).encode())


def derive(root: Path, files: Sequence[TreeFile], *, cache: Cache, slot: str, key: str) -> Path | None:
    """The wheel of ``files`` (the tree at ``root``) derived from the one :func:`remember`
    recorded in ``slot``, kept under the built-wheel ``key``; None when it cannot be derived."""
    raw = cache.read_meta(keys.DERIVE, slot)
    if not raw:
        return None
    try:
        record = json.loads(raw)
        if record.get("format") != FORMAT:
            return None
        before = {str(t[0]): (bool(t[1]), int(t[2]), int(t[3]), str(t[4])) for t in record["tree"]}
        copies: dict[str, str] = {str(k): str(v) for k, v in record["copies"].items()}
        filename, sha = str(record["wheel"]["filename"]), str(record["wheel"]["sha256"])
        members = frozenset(str(m) for m in record["members"])
        protected = frozenset(str(p) for p in record["protected"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    now = {f.path: (f.link, f.exec_bits, f.size, f.digest) for f in files}
    if now.keys() != before.keys():
        return None
    changed = {path for path, state in now.items() if state != before[path]}
    copied_from = {source: member for member, source in copies.items()}
    for path in changed:
        if now[path][:2] != before[path][:2] or path in protected or _selects(path):
            return None
        # a file that is not a copied module must not have been in the wheel at all: the
        # backend copies verbatim, so its old bytes would be among the members'
        if path not in copied_from and before[path][3] in members:
            return None
    old = stored_wheel(cache, sha, filename, package=filename)
    if old is None:
        return None
    replaced = {copied_from[p]: (root / p).read_bytes() for p in sorted(changed) if p in copied_from}
    if not replaced:  # only files outside the wheel changed: the same wheel
        wheel = keep_built(cache, old, key=key)
    else:
        with tempfile.TemporaryDirectory(prefix="slimline-derive-") as tmp:
            out = Path(tmp) / filename
            _rewrite(old, out, replaced)
            wheel = keep_built(cache, out, key=key)
    # the same pyproject.toml, so the same copies and protected files
    _record(files, wheel, _member_digests(wheel), copies, sorted(protected), cache=cache, slot=slot)
    return wheel


def _rewrite(old: Path, out: Path, replaced: Mapping[str, bytes]) -> None:
    """Copy the wheel ``old`` to ``out`` with the members in ``replaced`` given new contents."""
    with zipfile.ZipFile(old) as src, zipfile.ZipFile(out, "w") as dst:
        infos = src.infolist()
        record_name = record_member(i.filename for i in infos)
        for info in infos:
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr, copy.create_system = info.external_attr, info.create_system
            copy.compress_type, copy.comment, copy.extra = info.compress_type, info.comment, info.extra
            if info.filename in replaced:
                dst.writestr(copy, replaced[info.filename])
            elif info.filename == record_name:
                dst.writestr(copy, new_record(src.read(info), replaced))
            else:  # streamed: what writestr would write, without the member in memory
                copy.file_size = info.file_size
                with src.open(info) as data, dst.open(copy, "w") as sink:
                    shutil.copyfileobj(data, sink, 1 << 20)


def new_record(text: bytes, replaced: Mapping[str, bytes]) -> bytes:
    """RECORD with the hash and size of each replaced member updated, all else as it was."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text.decode("utf-8"))):
        if row and row[0] in replaced:
            data = replaced[row[0]]
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            row = [row[0], f"sha256={digest}", str(len(data))]
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _pyproject(root: Path) -> dict[str, Any]:
    import tomllib  # only when recording: a rebuild that derives never parses it

    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def module_changes(old: Path, new: Path) -> dict[str, bytes] | None:
    """The members of wheel ``new`` whose contents differ from wheel ``old``, with their new
    bytes, when those are all the differences and all are files of the wheel's root (installed
    into site-packages as they are) other than its dist-info; else None."""
    with zipfile.ZipFile(old) as a, zipfile.ZipFile(new) as b:
        infos_a, infos_b = a.infolist(), b.infolist()
        if [i.filename for i in infos_a] != [i.filename for i in infos_b]:
            return None
        out: dict[str, bytes] = {}
        for ia, ib in zip(infos_a, infos_b, strict=True):
            if ia.is_dir() and ib.is_dir():
                continue
            top = ia.filename.split("/", 1)[0]
            if top.endswith(".dist-info") and ia.filename.endswith("/RECORD"):
                continue
            if ia.CRC == ib.CRC and ia.file_size == ib.file_size and _same(a, ia, b, ib):
                continue
            if top.endswith((".dist-info", ".data")) or ia.external_attr != ib.external_attr:
                return None
            out[ib.filename] = b.read(ib)
    return out


def _same(a: zipfile.ZipFile, ia: zipfile.ZipInfo, b: zipfile.ZipFile, ib: zipfile.ZipInfo) -> bool:
    """Whether two members hold the same bytes, compared a chunk at a time."""
    with a.open(ia) as sa, b.open(ib) as sb:
        while True:
            x, y = sa.read(1 << 20), sb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _copying_backend(data: Mapping[str, Any]) -> bool:
    backend = data.get("build-system", {}).get("build-backend")
    poetry = data.get("tool", {}).get("poetry", {})
    return backend in _COPYING_BACKENDS and "build" not in poetry


def _selects(path: str) -> bool:
    """Whether the file decides which files a backend takes (VCS ignore files)."""
    return path.rsplit("/", 1)[-1] in (".gitignore", ".hgignore", ".ignore", ".gitattributes")


def _protected(data: Mapping[str, Any]) -> frozenset[str]:
    """Files whose contents go into the wheel's metadata: never derivable."""
    names = {"pyproject.toml"}
    for readme in (
        data.get("project", {}).get("readme"),
        data.get("tool", {}).get("poetry", {}).get("readme"),
    ):
        if isinstance(readme, str):
            names.add(readme)
        elif isinstance(readme, list):
            names.update(str(r) for r in readme)
        elif isinstance(readme, dict) and isinstance(readme.get("file"), str):
            names.add(readme["file"])
    return frozenset(Path(n).as_posix() for n in names)
