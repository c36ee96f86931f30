"""The project's own files as a file tree, for ``package-mode = false`` projects.

:func:`app_tree` copies the project directory into the image's working directory
(``/app`` by default).  What is copied, in the order the rules are applied:

1. **Always left out** (cannot be re-included; :func:`slimline.project.ignore.skip_when_copying`):
   version-control and tool directories anywhere in the tree (``.git``, ``.hg``, ``.svn``,
   ``.venv``, ``__pycache__``, ``.mypy_cache``, ``.pytest_cache``, ``.ruff_cache``, ``.tox``,
   ``.nox``, ``.slimline``, ``*.egg-info``), compiled files (``*.pyc``, ``*.pyo``), any
   directory holding a ``pyvenv.cfg`` (a virtualenv under another name), the build outputs
   ``dist/`` and ``build/`` at the top, and every path in ``also_exclude`` (the build's own outputs).
2. **``.dockerignore``** at the project root, with Docker's semantics: one pattern a
   line, ``#`` comments, Go ``filepath.Match`` globs where ``*``/``?`` do not cross ``/``,
   ``**`` matches any number of directories, a pattern that matches a directory matches
   everything below it, ``!pattern`` re-includes, and the last matching line wins.
3. **``exclude``** patterns (same syntax) are applied after the ``.dockerignore`` lines,
   as if appended to it.
4. **``include``**: when given, only paths matching one of these patterns (or lying below
   a matching directory) are copied.

Entries are normalised: files 0644, or 0755 when any execute bit is set; directories
0755; owner ``uid``/``gid``; symlinks are kept when they point inside the project
(relative targets only), anything else is refused with :class:`EscapingSymlink`.
Sockets, FIFOs and device files are refused too.  Files stay on disk
(:class:`~slimline.layers.filetree.FileOnDisk`) until the layer is written.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from slimline.errors import ExitStatus, SlimlineError
from slimline.layers.filetree import FileOnDisk, FileTree, TreeBuilder
from slimline.project.ignore import is_virtualenv, skip_when_copying

__all__ = [
    "AppFilesError",
    "EscapingSymlink",
    "Matcher",
    "Pattern",
    "app_tree",
    "parse_patterns",
]

_DOING = "copying the project's files into the image"


class AppFilesError(SlimlineError):
    """A project file cannot be copied into the image; ``path`` is relative to the project."""

    exit_status = ExitStatus.INPUT

    def __init__(self, problem: str, *, path: str, hint: str = "") -> None:
        super().__init__(problem, doing=_DOING, hint=hint)
        self.path = path


class EscapingSymlink(AppFilesError):
    """A symlink whose target lies outside the project directory (or is absolute)."""

    def __init__(self, *, path: str, target: str) -> None:
        super().__init__(
            f"the symlink {path} -> {target} points outside the project directory",
            path=path,
            hint="make it a relative link to a file inside the project, replace it with a copy, "
            "or exclude it (.dockerignore or the exclude setting)",
        )
        self.target = target


@dataclass(frozen=True, slots=True)
class Pattern:
    """One cleaned pattern; ``negated`` for ``!`` lines (they re-include)."""

    text: str
    negated: bool
    regex: re.Pattern[str]

    def match(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None


def _translate(pattern: str) -> str:
    """Docker/moby patternmatcher's glob -> regex translation (for ``/`` separators).

    ``*`` and ``?`` do not match ``/``; ``**`` (with an optional following ``/``) matches
    any number of directories, and at the end of a pattern anything; ``[...]`` is a
    character class (``^`` negates, ``lo-hi`` ranges); ``\\`` escapes the next character.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                i += 1
                out.append(re.escape(pattern[i]))
            else:
                out.append(r"\\")
        elif ch == "[":
            i = _translate_class(pattern, i, out)
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _translate_class(pattern: str, start: int, out: list[str]) -> int:
    """Translate the class opening at ``start``; return the index after its ``]``."""
    i, n = start + 1, len(pattern)
    parts = ["["]
    if i < n and pattern[i] == "^":
        parts.append("^")
        i += 1
    first = True
    while i < n and (pattern[i] != "]" or first):
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            i += 1
            parts.append(re.escape(pattern[i]))
        elif ch == "-" and not first and i + 1 < n and pattern[i + 1] != "]":
            parts.append("-")
        else:
            parts.append(re.escape(ch))
        first = False
        i += 1
    if i >= n:
        raise re.error("unterminated character class")
    parts.append("]")
    out.append("".join(parts))
    return i + 1


def _clean(pattern: str) -> str:
    """Go's ``filepath.Clean`` plus Docker's stripping of one leading ``/``."""
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


def parse_patterns(lines: Iterable[str], *, origin: str = ".dockerignore") -> tuple[Pattern, ...]:
    """Parse ignore-file lines (Docker's rules for comments, blanks, ``!`` and cleaning)."""
    out: list[Pattern] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.removeprefix("\ufeff") if number == 1 else raw
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        negated = line.startswith("!")
        body = line[1:].strip() if negated else line
        if not body:
            raise AppFilesError(
                f"{origin} line {number}: {raw.strip()!r} is not a valid pattern",
                path=origin,
                hint="a '!' must be followed by a pattern",
            )
        cleaned = _clean(body)
        try:
            regex = re.compile(_translate(cleaned))
        except re.error as err:
            raise AppFilesError(
                f"{origin} line {number}: {raw.strip()!r} is not a valid pattern ({err})",
                path=origin,
                hint="check the brackets and backslashes of the pattern",
            ) from err
        out.append(Pattern(cleaned, negated, regex))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Matcher:
    """An ordered pattern list; :meth:`matches` is Docker's ``MatchesOrParentMatches``."""

    patterns: tuple[Pattern, ...] = ()

    @property
    def has_negations(self) -> bool:
        return any(p.negated for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated) is matched: the last pattern that
        matches it or one of its parent directories decides."""
        parents: list[str] = []
        parts = path.split("/")[:-1]
        for i in range(len(parts)):
            parents.append("/".join(parts[: i + 1]))
        matched = False
        for p in self.patterns:
            if p.negated != matched:
                continue  # cannot change the outcome
            if p.match(path) or any(p.match(parent) for parent in parents):
                matched = not p.negated
        return matched


def _always_excluded(rel: str, name: str, full: Path, *, is_dir: bool, also: frozenset[str]) -> bool:
    if skip_when_copying(name, top="/" not in rel) or rel in also:
        return True
    return is_dir and is_virtualenv(full)


def _relative_outputs(paths: Sequence[Path], root: Path, real_root: Path) -> frozenset[str]:
    """``also_exclude`` paths (absolute, or relative to ``root``) that lie inside the project."""
    out: set[str] = set()
    for p in paths:
        resolved = (p if p.is_absolute() else root / p).resolve()
        if resolved.is_relative_to(real_root) and resolved != real_root:
            out.add(resolved.relative_to(real_root).as_posix())
    return frozenset(out)


def _mode(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644


def _dest(dest: str) -> str:
    norm = posixpath.normpath(dest) if dest else ""
    if not norm.startswith("/") or norm.strip("/") == "":
        raise AppFilesError(
            f"the working directory {dest!r} is not an absolute path below /",
            path=dest,
            hint="set the working directory to an absolute path such as /app",
        )
    return norm


def app_tree(
    root: Path,
    *,
    dest: str = "/app",
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    uid: int = 0,
    gid: int = 0,
    also_exclude: Sequence[Path] = (),
) -> FileTree:
    """The project directory ``root`` as a tree under ``dest`` (see the module rules)."""
    base = _dest(dest)
    if not root.is_dir():
        raise AppFilesError(
            f"{root} is not a directory", path=str(root), hint="point slimline at the project"
        )
    real_root = root.resolve()
    rules = _Rules.read(root, real_root, include=include, exclude=exclude, also_exclude=also_exclude)
    b = TreeBuilder(uid=uid, gid=gid, archive=str(root))
    b.dir(base)
    copy = _Copy(b, base=base, real_root=real_root, rules=rules)
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(current)
        rel_dir = here.relative_to(root).as_posix()
        dirnames[:] = copy.dirs(here, rel_dir, dirnames)
        copy.files(here, rel_dir, filenames)
    return b.freeze()


@dataclass(frozen=True, slots=True)
class _Rules:
    """Which project paths are copied: rules 2 to 4 of the module (rule 1 is :func:`_always_excluded`)."""

    ignored: Matcher  # the .dockerignore lines, then the exclude setting
    included: Matcher | None  # the include setting; None: everything not ignored
    outputs: frozenset[str]  # ``also_exclude`` paths inside the project, relative to it

    @classmethod
    def read(
        cls,
        root: Path,
        real_root: Path,
        *,
        include: Sequence[str],
        exclude: Sequence[str],
        also_exclude: Sequence[Path],
    ) -> _Rules:
        ignore_file = root / ".dockerignore"
        lines = ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.is_file() else []
        ignored = Matcher(parse_patterns(lines) + parse_patterns(exclude, origin="the exclude setting"))
        included = Matcher(parse_patterns(include, origin="the include setting")) if include else None
        return cls(ignored, included, _relative_outputs(also_exclude, root, real_root))

    def wants(self, rel: str) -> bool:
        """Whether the include setting lets ``rel`` in (everything, when it is not set)."""
        return self.included is None or self.included.matches(rel)


@dataclass(frozen=True, slots=True)
class _Copy:
    """Adds what :class:`_Rules` copy into ``builder`` under ``base``, one directory of the walk at a
    time, in name order."""

    builder: TreeBuilder
    base: str
    real_root: Path
    rules: _Rules

    def dirs(self, here: Path, rel_dir: str, names: Sequence[str]) -> list[str]:
        """Add the copied subdirectories (and directory symlinks) of ``here``; return the names of
        those to walk into: an ignored directory too, when a ``!`` pattern may re-include below it."""
        keep: list[str] = []
        for name in sorted(names):
            full = here / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if _always_excluded(rel, name, full, is_dir=not full.is_symlink(), also=self.rules.outputs):
                continue
            ignored = self.rules.ignored.matches(rel)
            if full.is_symlink():
                if not ignored and self.rules.wants(rel):
                    _link(self.builder, self.base, rel, full, self.real_root)
                continue
            if ignored and not self.rules.ignored.has_negations:
                continue  # nothing below can be re-included
            keep.append(name)
            if not ignored and self.rules.wants(rel):
                self.builder.dir(f"{self.base}/{rel}")
        return keep

    def files(self, here: Path, rel_dir: str, names: Sequence[str]) -> None:
        """Add the copied files and symlinks of ``here``; refuse sockets, FIFOs and devices."""
        for name in sorted(names):
            full = here / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if _always_excluded(rel, name, full, is_dir=False, also=self.rules.outputs):
                continue
            if self.rules.ignored.matches(rel) or not self.rules.wants(rel):
                continue
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                _link(self.builder, self.base, rel, full, self.real_root)
            elif stat.S_ISREG(st.st_mode):
                self.builder.file(f"{self.base}/{rel}", FileOnDisk(full), st.st_size, mode=_mode(st.st_mode))
            else:
                raise AppFilesError(
                    f"{rel} is not a regular file, directory or symlink (a socket, FIFO or device)",
                    path=rel,
                    hint="exclude it (.dockerignore or the exclude setting)",
                )


def _link(b: TreeBuilder, base: str, rel: str, full: Path, real_root: Path) -> None:
    """Add the symlink ``rel`` if its target stays inside the project, else refuse it."""
    target = os.readlink(full)
    lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if posixpath.isabs(target) or lexical == ".." or lexical.startswith("../"):
        raise EscapingSymlink(path=rel, target=target)
    resolved = full.resolve()  # follows chains through other links, as the kernel will
    if resolved != real_root and not resolved.is_relative_to(real_root):
        raise EscapingSymlink(path=rel, target=target)
    b.symlink(f"{base}/{rel}", target)
