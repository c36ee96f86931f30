"""PEP 751 ``pylock.toml`` (and ``pylock.<name>.toml``) read into ``Lock`` values (``packaging.pylock``).

Parsed and validated by the maintained parser, ``packaging.pylock`` (its validation errors keep
their field path, ``packages[2].wheels[0]``), then mapped onto slimline's model:

* ``Lock.format`` is ``"pylock"``: :mod:`slimline.plan.select` evaluates each package's
  ``marker`` for the target with ``extras`` and ``dependency_groups`` (PEP 751's lock-file
  context); the declared ``extras``, ``dependency-groups``, ``default-groups`` and
  ``environments`` are kept on the lock.
* every wheel and sdist must carry a sha256 (slimline checks every byte it installs against one);
* ``index`` is the source the files are downloaded through (absent: the default index, by file
  name, the bytes still checked against the lock's hash); ``directory`` is a path dependency,
  ``archive`` a URL or file, ``vcs`` of type git a repository at ``commit-id`` (other VCS types
  are kept by type and refused by the plan);
* a ``directory`` package that is the project itself (uv exports the project so) is left out:
  the project is built and laid in its own layer.

A pylock file records nothing of pyproject.toml (no content hash): there is no freshness check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from slimline.project import toml
from slimline.project.lockfile import (
    Artifact,
    Lock,
    LockedPackage,
    LockError,
    LockSource,
    artifact_kind,
    by_name,
)

__all__ = ["PylockError", "load"]


class PylockError(LockError):
    """``pylock.toml`` is missing, not TOML, not valid PEP 751, or lacks a sha256 slimline needs."""

    fix = "export the lock file again (`poetry export -f pylock.toml`, `uv export --format pylock.toml`)"


def load(path: Path, *, project_root: Path) -> Lock:
    """Read ``path`` for the project in ``project_root``.  Raises :class:`PylockError` naming the field."""
    from packaging import pylock as pep751  # the maintained parser; loaded only for pylock projects

    data = toml.load(path, error=PylockError)
    try:
        parsed = pep751.Pylock.from_dict(data)
    except pep751.PylockValidationError as err:
        raise PylockError(err.message, file=path, field=err.context or "") from err
    packages = []
    for i, pkg in enumerate(parsed.packages):
        try:
            got = _package(pkg, lock_dir=path.parent, project_root=project_root.resolve())
        except _BadFile as err:
            raise PylockError(str(err), file=path, field=f"packages[{i}].{err.field}") from err
        if got is not None:
            packages.append(got)
    found = tuple(packages)
    return Lock(
        path=path,
        lock_version=str(parsed.lock_version),
        content_hash="",
        python_versions=str(parsed.requires_python or "") or "*",
        packages=found,
        extras={str(e): () for e in parsed.extras or ()},
        format="pylock",
        dependency_groups=tuple(parsed.dependency_groups or ()),
        default_groups=tuple(parsed.default_groups or ()),
        environments=tuple(str(m) for m in parsed.environments or ()),
        _by_name=by_name(found),
    )


class _BadFile(Exception):
    def __init__(self, problem: str, *, field: str) -> None:
        super().__init__(problem)
        self.field = field


def _package(pkg: Any, *, lock_dir: Path, project_root: Path) -> LockedPackage | None:
    """One ``[[packages]]`` entry (a validated ``packaging.pylock.Package``); None for the project."""
    source: LockSource | None = None
    files: list[Artifact] = []
    develop = False
    if pkg.directory is not None:
        if (lock_dir / pkg.directory.path).resolve() == project_root:
            return None
        source = LockSource("directory", pkg.directory.path, subdirectory=pkg.directory.subdirectory or "")
        develop = bool(pkg.directory.editable)
    elif pkg.vcs is not None:
        v = pkg.vcs
        source = LockSource(
            v.type, v.url or v.path or "", v.requested_revision or "", v.commit_id, v.subdirectory or ""
        )
    elif pkg.archive is not None:
        a = pkg.archive
        kind = "url" if a.url else "file"
        source = LockSource(kind, a.url or a.path or "", subdirectory=a.subdirectory or "")
        files.append(_artifact(_file_name(a), a.hashes, field="archive.hashes", default_kind="sdist"))
    else:
        if pkg.index:
            source = LockSource("legacy", pkg.index)
        if pkg.sdist is not None:
            files.append(_artifact(_file_name(pkg.sdist), pkg.sdist.hashes, field="sdist.hashes"))
        for j, wheel in enumerate(pkg.wheels or ()):
            files.append(_artifact(_file_name(wheel), wheel.hashes, field=f"wheels[{j}].hashes"))
    return LockedPackage(
        name=str(pkg.name),
        version=str(pkg.version or ""),
        optional=False,
        python_versions=str(pkg.requires_python or "") or "*",
        groups=(),
        markers=str(pkg.marker or ""),
        files=tuple(files),
        dependencies={},
        extras={},
        source=source,
        develop=develop,
    )


def _file_name(dist: Any) -> str:
    """The file's name as its URL or path has it (the index lists it so; uv writes a normalised
    ``name``), else its ``name``."""
    where = getattr(dist, "url", None) or getattr(dist, "path", None) or ""
    return unquote(urlsplit(where).path).rsplit("/", 1)[-1] or str(getattr(dist, "name", "") or "")


def _artifact(filename: str, hashes: Any, *, field: str, default_kind: str = "") -> Artifact:
    digest = hashes.get("sha256") if hasattr(hashes, "get") else None
    if (
        not isinstance(digest, str)
        or len(digest) != 64
        or not all(c in "0123456789abcdefABCDEF" for c in digest)
    ):
        raise _BadFile(
            f"{filename} has no sha256 hash (found: {', '.join(sorted(hashes)) or 'none'}); "
            "slimline checks every file against one",
            field=field,
        )
    kind = artifact_kind(filename) or default_kind
    if kind not in ("wheel", "sdist"):
        raise _BadFile(f"{filename} is neither a wheel nor a source archive", field=field.rsplit(".", 1)[0])
    return Artifact(filename=filename, sha256=digest.lower(), kind="wheel" if kind == "wheel" else "sdist")
