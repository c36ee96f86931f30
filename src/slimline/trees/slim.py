"""Slim mode (``slim = true``): what a running app does not read, left out of a distribution's
installed tree.

Contract of :func:`prune`: given one distribution's installed tree (as
:func:`slimline.trees.install.wheel_tree` makes it, under ``venv``), it returns the tree
without the files :func:`rule` names and without the directories that held nothing else,
plus ``<dist-info>/SLIMLINE-DROPPED``: the installed ``RECORD``'s rows of the dropped files
(path, hash, size), sorted, so that ``RECORD`` stays as the wheel installed it and a checker
can account for every row (present with its hash, or listed there).  A tree from which nothing
is dropped is returned unchanged.  Paths are compared relative to site-packages, as ``RECORD``
writes them (``numpy/_core/tests/test_api.py``, ``../../../include/site/...``).

Never dropped: anything in a ``.dist-info`` directory (metadata, licences), a ``docs`` or
``examples`` directory inside a ``templates`` or ``static`` one (a web framework's pages and
assets, such as Django REST framework's API documentation views), and any path a
``slim-keep`` pattern of the distribution matches (Docker's pattern syntax, relative to
site-packages: ``numpy/testing/**``).
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Callable, Sequence
from typing import NamedTuple

from slimline.layers.filetree import Bytes, Entry, FileTree, Kind, ancestors
from slimline.trees.appfiles import Matcher, parse_patterns

__all__ = ["DROPPED", "FORMAT", "Row", "prune", "read", "rule"]

FORMAT = "2"  # bump when the rules change: slim layers are keyed by it
DROPPED = "SLIMLINE-DROPPED"

_TESTS = frozenset({"tests"})  # directories of test suites ("test" and "testing" are often imported)
_DOCS = frozenset({"doc", "docs", "example", "examples"})  # dropped unless a package (has __init__.py)
_WEB = frozenset({"templates", "static"})  # Django's and Flask's app assets: a docs/ below them is kept
_HEADERS = (".h", ".hh", ".hpp", ".hxx", ".h++")
_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".pxd", ".pxi")
_STATIC = (".a", ".lib")
_STUBS = (".pyi",)  # type stubs: read by type checkers, never imported
_DATA = ("../../../include/", "../../../share/man/", "../../../share/doc/")


def rule(rel: str, *, is_package: Callable[[str], bool] = lambda _d: False) -> str | None:
    """Why the file at ``rel`` (relative to site-packages) is dropped, or None to keep it.
    ``is_package(dir)`` says whether ``dir`` (relative too) holds an ``__init__.py``."""
    parts = rel.split("/")
    if any(p.endswith(".dist-info") for p in parts[:1]):
        return None
    if rel.startswith(_DATA):
        return "headers and manuals installed outside site-packages"
    dirs = parts[:-1]
    if rel.startswith("../"):
        return None
    if any(d in _TESTS for d in dirs) or parts[-1] == "conftest.py":
        return "test suites"
    name = parts[-1].lower()
    if name.endswith(_HEADERS):
        return "C/C++ headers"
    if name.endswith(_SOURCES):
        return "C, C++ and Cython sources"
    if name.endswith(_STATIC):
        return "static libraries"
    if name.endswith(_STUBS):
        return "type stubs"
    for i, d in enumerate(dirs):
        if d in _WEB:  # served or rendered at run time (rest_framework/templates/rest_framework/docs)
            break
        if d in _DOCS and not is_package("/".join(dirs[: i + 1])):
            return "documentation and examples"
    return None


def prune(tree: FileTree, *, venv: str, site: str, keep: Sequence[str] = (), name: str = "") -> FileTree:
    """``tree`` (one distribution, installed under ``venv``; ``site`` is its site-packages,
    both relative) slimmed as the module's contract says; ``keep`` are its slim-keep patterns."""
    kept = Matcher(parse_patterns(keep, origin=f"tool.slimline.slim-keep.{name}")) if keep else None
    prefix = site.rstrip("/") + "/"

    def rel_of(path: str) -> str:
        return path[len(prefix) :] if path.startswith(prefix) else posixpath.relpath(path, site)

    present = set(tree.paths())

    def is_package(rel_dir: str) -> bool:
        return f"{prefix}{rel_dir}/__init__.py" in present

    dropped: list[str] = []
    for entry in tree.entries():
        if entry.kind is Kind.DIR or not entry.path.startswith(venv.rstrip("/") + "/"):
            continue
        rel = rel_of(entry.path)
        if rule(rel, is_package=is_package) is not None and not (kept and kept.matches(rel)):
            dropped.append(entry.path)
    if not dropped:
        return tree
    slim = tree.without(dropped)
    slim = slim.without(_emptied(slim, dropped))
    record = next((p for p in slim.paths() if p.startswith(prefix) and p.endswith(".dist-info/RECORD")), None)
    if record is None:
        return slim
    listing = _rows(slim.get(record), {rel_of(p) for p in dropped})
    path = posixpath.join(posixpath.dirname(record), DROPPED)
    return slim.merge(
        FileTree({path: Entry(path, Kind.FILE, 0o644, size=len(listing), source=Bytes(listing))})
    )


def _emptied(after: FileTree, dropped: Sequence[str]) -> list[str]:
    """Directories that held a dropped file and hold no file, link or kept directory now."""
    holding: set[str] = set()
    for p in after.paths():
        if (e := after.get(p)) is not None and e.kind is not Kind.DIR:
            holding.update(ancestors(p))
    lost = {d for p in dropped for d in ancestors(p)}
    gone = lost - holding
    for p in after.paths():  # a directory that stays (it held no dropped file) keeps its parents
        if (e := after.get(p)) is not None and e.kind is Kind.DIR and p not in gone:
            holding.update(ancestors(p))
    return sorted(lost - holding)


def _rows(record: Entry | None, dropped: set[str]) -> bytes:
    """RECORD's rows of the ``dropped`` paths (a path RECORD lacks gets a row with its path alone)."""
    rows: dict[str, list[str]] = {}
    if record is not None and record.source is not None:
        with record.source.open() as f:
            text = f.read().decode("utf-8")
        for row in csv.reader(io.StringIO(text)):
            if row and row[0] in dropped:
                rows[row[0]] = row
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for rel in sorted(dropped):
        writer.writerow(rows.get(rel, [rel, "", ""]))
    return out.getvalue().encode()


class Row(NamedTuple):
    """One row of a ``SLIMLINE-DROPPED`` list: a file slim mode left out, as ``RECORD`` has it."""

    path: str  # relative to site-packages, as RECORD writes it
    hash: str  # "sha256=<urlsafe base64>", or "" when RECORD had none
    size: int | None  # bytes, None when RECORD had none


def read(listing: bytes) -> tuple[Row, ...]:
    """The rows of a ``SLIMLINE-DROPPED`` list, in its order (rows without a path are skipped)."""
    rows = []
    for row in csv.reader(io.StringIO(listing.decode("utf-8", errors="replace"))):
        if row and row[0]:
            size = row[2] if len(row) > 2 else ""
            rows.append(Row(row[0], row[1] if len(row) > 1 else "", int(size) if size.isdigit() else None))
    return tuple(rows)
