"""The packages an image's final file system holds, and which package owns each file.

Python distributions: every ``*.dist-info`` directory (any site-packages, the venv's and the
system's); name and version from its ``METADATA`` (else from the directory's name); its files
are the ``RECORD`` entries (relative to the directory holding the dist-info) that are regular
files of the final file system, or, without a ``RECORD``, the dist-info's own files.

Debian packages: the entries of ``var/lib/dpkg/status`` whose status is installed, and the
control files under ``var/lib/dpkg/status.d/`` (distroless and slimline's own bases); their
files from ``var/lib/dpkg/info/<pkg>[:<arch>].list`` or ``status.d/<pkg>.md5sums``.  A package
without a file list has no measured size (``size`` None); ``installed_size`` is what its
control file declares (bytes).

Sizes are the final file system's: a file removed or replaced by a later layer counts as what
the container sees.  A path listed by several packages belongs to the first (Python
distributions before Debian packages, each in name order).
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from slimline.layers.filetree import Kind
from slimline.layers.read import FinalEntry
from slimline.trees import slim

__all__ = ["DebPackage", "PyDist", "debian", "owners", "python"]

_STATUS = "var/lib/dpkg/status"
_STATUS_D = "var/lib/dpkg/status.d/"
_INFO = "var/lib/dpkg/info/"
_MAX_HOPS = 40  # symlinks followed for one path, as Linux's limit


@dataclass(frozen=True)
class PyDist:
    name: str
    version: str
    location: str  # the directory holding the dist-info, with a leading "/"
    size: int  # bytes of its files in the final file system
    files: tuple[str, ...]  # its regular files (paths without a leading "/")
    listed: tuple[str, ...] = ()  # every path it names, there or not (a later layer removed it)
    dropped: tuple[tuple[str, int], ...] | None = None  # slim mode's list: (path with "/", bytes); None: none


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    architecture: str
    installed_size: int | None  # bytes its control file declares
    size: int | None  # bytes of its listed files in the final file system; None: no file list
    files: tuple[str, ...]
    listed: tuple[str, ...] = ()  # every path it names, there or not


def _text(entry: FinalEntry | None) -> str:
    return entry.data.decode("utf-8", "replace") if entry is not None and entry.data is not None else ""


def _headers(text: str) -> dict[str, str]:
    """The first stanza's fields of an RFC 822-style text (METADATA, a dpkg control file)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        if line[:1] in (" ", "\t") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def _regular(
    final: Mapping[str, FinalEntry], paths: Iterator[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the regular files ``paths`` name once their directories' symlinks are followed, a hard
    link as the file it links to: its bytes count once, whichever names a package lists;
    every path named, so resolved, whether the final file system has it or not)."""
    out, named = set(), set()
    for path in paths:
        entry = final.get(found := _resolve(final, path) or "")
        named.add(found)
        if entry is not None and entry.kind is Kind.HARDLINK:
            entry = final.get(found := entry.target)
        if entry is not None and entry.kind is Kind.FILE:
            out.add(found)
    named.discard("")
    return tuple(sorted(out)), tuple(sorted(named))


def _resolve(final: Mapping[str, FinalEntry], path: str) -> str | None:
    """``path`` with symlinked parent directories followed inside the image (a merged-/usr
    image lists ``/bin/bash`` in dpkg records and holds ``usr/bin/bash``); None after
    :data:`_MAX_HOPS` links (a loop)."""
    for _ in range(_MAX_HOPS):
        parts = path.split("/")
        for i in range(1, len(parts)):
            entry = final.get(head := "/".join(parts[:i]))
            if entry is not None and entry.kind is Kind.SYMLINK:
                target = (
                    entry.target
                    if entry.target.startswith("/")
                    else f"{posixpath.dirname(head)}/{entry.target}"
                )
                path = _inside(posixpath.normpath(f"{target}/{'/'.join(parts[i:])}"))
                break
        else:
            return path
    return None


def _inside(path: str) -> str:
    """A normalised path as a path inside the root: without a leading "/" or ".." (the root's
    parent is the root)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    while parts and parts[0] == "..":
        parts.pop(0)
    return "/".join(parts)


def _record_paths(text: str, parent: str) -> Iterator[str]:
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0]:
            continue
        raw = row[0]
        path = (
            posixpath.normpath(raw).lstrip("/")
            if raw.startswith("/")
            else posixpath.normpath(f"{parent}/{raw}")
        )
        if path != ".." and not path.startswith("../"):
            yield path


def python(final: Mapping[str, FinalEntry]) -> list[PyDist]:
    """Every Python distribution of the final file system, largest first (then by name)."""
    out = []
    # found from the files' paths (a layer need not list the directories it implies), in one pass
    children: dict[str, list[str]] = {}
    for path in final:
        if (head := posixpath.dirname(path)).endswith(".dist-info"):
            children.setdefault(head, []).append(path)
    for info in sorted(children):
        parent = posixpath.dirname(info)
        meta = _headers(_text(final.get(f"{info}/METADATA")))
        stem = posixpath.basename(info).removesuffix(".dist-info")
        name, _, version = stem.partition("-")
        record = final.get(f"{info}/RECORD")
        if record is not None and record.data is not None:
            files, listed = _regular(final, _record_paths(_text(record), parent))
        else:
            files, listed = _regular(final, iter(children[info]))
        size = sum(final[p].size for p in files)
        name, version = meta.get("Name") or name, meta.get("Version") or version
        out.append(PyDist(name, version, f"/{parent}", size, files, listed, _dropped(final, info, parent)))
    return sorted(out, key=lambda d: (-d.size, d.name.lower()))


def _dropped(final: Mapping[str, FinalEntry], info: str, parent: str) -> tuple[tuple[str, int], ...] | None:
    entry = final.get(f"{info}/{slim.DROPPED}")
    if entry is None or entry.data is None:
        return None
    rows = {
        f"/{_inside(posixpath.normpath(f'{parent}/{r.path}'))}": r.size or 0 for r in slim.read(entry.data)
    }
    return tuple(sorted(rows.items()))


def _stanzas(final: Mapping[str, FinalEntry]) -> Iterator[dict[str, str]]:
    for stanza in _text(final.get(_STATUS)).split("\n\n"):
        fields = _headers(stanza.strip("\n"))
        status = fields.get("Status", "")
        if fields.get("Package") and status.endswith(" installed"):
            yield fields
    for path in sorted(p for p in final if p.startswith(_STATUS_D)):
        if "/" not in path[len(_STATUS_D) :] and not path.endswith(".md5sums"):
            fields = _headers(_text(final.get(path)))
            if fields.get("Package"):
                yield fields


def _deb_files(
    final: Mapping[str, FinalEntry], name: str, arch: str
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    for listing in (f"{_INFO}{name}.list", f"{_INFO}{name}:{arch}.list"):
        if (entry := final.get(listing)) is not None and entry.data is not None:
            return _regular(final, (line.strip().lstrip("/") for line in _text(entry).splitlines()))
    sums = final.get(f"{_STATUS_D}{name}.md5sums")
    if sums is not None and sums.data is not None:
        lines = (
            line.split(None, 1)[1].strip().lstrip("/") for line in _text(sums).splitlines() if " " in line
        )
        return _regular(final, lines)
    return None


def debian(final: Mapping[str, FinalEntry]) -> list[DebPackage]:
    """Every installed Debian package of the final file system, largest first (then by name)."""
    found: dict[str, DebPackage] = {}
    for fields in _stanzas(final):
        name, arch = fields["Package"].split(":")[0], fields.get("Architecture", "")
        declared = fields.get("Installed-Size", "")
        found_files = _deb_files(final, name, arch)
        files, listed = found_files if found_files is not None else (None, ())
        found[name] = DebPackage(
            name=name,
            version=fields.get("Version", ""),
            architecture=arch,
            installed_size=int(declared) * 1024 if declared.isdigit() else None,
            size=None if files is None else sum(final[p].size for p in files),
            files=files or (),
            listed=listed,
        )
    return sorted(found.values(), key=lambda d: (-(d.size or 0), d.name))


def owners(dists: list[PyDist], debs: list[DebPackage]) -> dict[str, str]:
    """Path -> the package that names it ("python: NAME" or "debian: NAME"), also a path a
    later layer removed (the size map shows whose bytes were wasted)."""
    out: dict[str, str] = {}
    for dist in sorted(dists, key=lambda d: d.name.lower()):
        for path in dist.listed:
            out.setdefault(path, f"python: {dist.name}")
    for deb in sorted(debs, key=lambda d: d.name):
        for path in deb.listed:
            out.setdefault(path, f"debian: {deb.name}")
    return out
