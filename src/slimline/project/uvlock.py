"""``uv.lock`` read once into the same :class:`~slimline.project.lockfile.Lock` values as ``poetry.lock``.

uv publishes no parser for its lock, so it is read here with the typed reader
(:mod:`slimline.project.toml`), strictly: a field of the wrong shape is reported with its path
(``package[3].wheels[0].hash``), and an index package's files must each carry a sha256.

Contract of :func:`load`: ``Lock.format`` is ``"uv"``; the project's own entry (the package whose
source is the project directory) is not a package to install but :attr:`Lock.root`: its
dependencies by group (``main``, and each of ``[package.dev-dependencies]``).  Every optional
dependency (of the root or of any package) is an ordinary dependency whose marker is and-ed with
``extra == "<name>"``, so the graph walk of :mod:`slimline.plan.select` needs no more.  An edge
that names a version (uv writes one when several are locked) becomes ``==<version>``.
Sources: ``registry`` is an index (``legacy``), ``editable``/``directory`` a directory,
``path`` a file, ``url`` an archive URL, ``git`` a repository at the locked commit; ``virtual``
members other than the project and local registries are kept with their own type, which the
plan refuses clearly.  :func:`check_fresh` compares the names the lock records for the project's
requirements with pyproject.toml's (uv writes no content hash).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from packaging.utils import canonicalize_name

from slimline.errors import ExitStatus, SlimlineError
from slimline.project import toml
from slimline.project.groups import MAIN
from slimline.project.lockfile import (
    Artifact,
    Lock,
    LockedDependency,
    LockedPackage,
    LockError,
    LockSource,
    artifact_kind,
    by_name,
)
from slimline.project.pyproject import Project
from slimline.project.toml import (
    FieldError,
    check_table,
    each,
    get,
    get_list,
    get_list_of,
    get_table,
    within,
)

__all__ = ["StaleUvLock", "UvLockError", "check_fresh", "load"]

_Edges = dict[str, tuple[LockedDependency, ...]]


class UvLockError(LockError):
    """``uv.lock`` is missing, not TOML, of an unknown version, or has a field of the wrong shape."""

    fix = "regenerate the lock file with `uv lock`"


def load(path: Path, *, project_root: Path) -> Lock:
    """Read ``path`` (a ``uv.lock``) for the project in ``project_root``.  Raises :class:`UvLockError`."""
    data = toml.load(path, error=UvLockError)
    with toml.raising(UvLockError, path):
        return _lock(path, data, project_root.resolve())


def _lock(path: Path, data: Mapping[str, Any], project_root: Path) -> Lock:
    version = get(data, "version", int, required=True)
    if version != 1:
        raise FieldError(
            f"uv.lock version {version} is not supported (slimline reads version 1)", field="version"
        )
    root: dict[str, _Edges] = {}
    packages: list[LockedPackage] = []
    extras: dict[str, tuple[str, ...]] = {}
    for i, value in enumerate(get_list_of(data, "package", check_table)):
        with within(f"package[{i}]"):
            pkg, groups = _package(value, lock_dir=path.parent)
        if (
            pkg.source is not None
            and pkg.source.type in ("directory", "virtual")
            and ((path.parent / pkg.source.url).resolve() == project_root)
        ):
            root = groups
            extras = dict(pkg.extras)
        else:
            packages.append(pkg)
    if not root:
        raise FieldError(f"no package in the lock is the project in {project_root}", field="package")
    found = tuple(packages)
    return Lock(
        path=path,
        lock_version=str(version),
        content_hash="",
        python_versions=get(data, "requires-python", str, default="*"),
        packages=found,
        extras={e: tuple(canonicalize_name(n) for n in names) for e, names in extras.items()},
        format="uv",
        root=root,
        _by_name=by_name(found),
    )


def _package(d: Mapping[str, Any], *, lock_dir: Path) -> tuple[LockedPackage, dict[str, _Edges]]:
    """One ``[[package]]`` and its dependencies by group (``main``, then dev groups)."""
    name = canonicalize_name(get(d, "name", str, required=True))
    source = _source(get_table(d, "source", required=True))
    registry = source.type == "legacy"
    files: list[Artifact] = []
    if "sdist" in d:
        with within("sdist"):
            files.extend(_artifact(d["sdist"], registry=registry))
    with within("wheels"):
        for got in each(get_list(d, "wheels", dict), lambda w: _artifact(w, registry=registry)):
            files.extend(got)
    main = _edges(d, "dependencies")
    optional = get_table(d, "optional-dependencies")
    extras: dict[str, tuple[str, ...]] = {}
    for extra in optional:
        with within("optional-dependencies"):
            edges = _edges(optional, extra)
        key = canonicalize_name(extra)
        extras[key] = tuple(edges)
        for dep, alts in edges.items():
            tagged = tuple(_with_extra(a, key) for a in alts)
            main[dep] = (*main.get(dep, ()), *tagged)
    groups: dict[str, _Edges] = {MAIN: main}
    dev = get_table(d, "dev-dependencies")
    for group in dev:
        with within("dev-dependencies"):
            groups[canonicalize_name(group)] = _edges(dev, group)
    package = LockedPackage(
        name=name,
        version=get(d, "version", str, default=""),
        optional=False,
        python_versions="*",
        groups=(),
        markers="",
        files=tuple(files),
        dependencies=main,
        extras=extras,
        source=source,
        develop=bool(get_table(d, "source").get("editable")),
    )
    return package, groups


def _source(s: Mapping[str, Any]) -> LockSource:
    kinds = [k for k in ("registry", "editable", "directory", "virtual", "path", "url", "git") if k in s]
    if len(kinds) != 1:
        raise FieldError(
            "expected exactly one of registry, editable, directory, virtual, path, url, git", field="source"
        )
    kind = kinds[0]
    with within("source"):
        where = get(s, kind, str, required=True)
        if kind == "registry":
            web = urlsplit(where).scheme.lower() in ("http", "https")
            return LockSource(type="legacy" if web else "local-registry", url=where)
        if kind in ("editable", "directory"):
            return LockSource(type="directory", url=where)
        if kind in ("virtual", "path"):
            return LockSource(type="virtual" if kind == "virtual" else "file", url=where)
        if kind == "url":
            return LockSource(type="url", url=where, subdirectory=get(s, "subdirectory", str, default=""))
    return _git(where)


def _git(text: str) -> LockSource:
    """``https://host/repo?rev=main&subdirectory=sub#<commit>`` (uv's form)."""
    parts = urlsplit(text)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if not re.fullmatch(r"[0-9a-f]{40}", parts.fragment):
        raise FieldError(f"expected the locked commit after '#', got {text[:120]!r}", field="source.git")
    ref = query.get("rev") or query.get("tag") or query.get("branch") or ""
    return LockSource(
        type="git",
        url=parts._replace(query="", fragment="").geturl(),
        reference=ref,
        resolved_reference=parts.fragment,
        subdirectory=query.get("subdirectory", ""),
    )


def _artifact(value: Any, *, registry: bool) -> tuple[Artifact, ...]:
    """An sdist or wheel entry: its file name and sha256; () for a local file without a hash."""
    a = check_table(value)
    where = get(a, "url", str, default="") or get(a, "path", str, default="")
    filename = get(a, "filename", str, default="") or unquote(urlsplit(where).path).rsplit("/", 1)[-1]
    if not filename:
        raise FieldError("missing: expected url, path or filename")
    if registry and "hash" not in a:
        raise FieldError("missing: every file of an index package needs its sha256", field="hash")
    digest = get(a, "hash", str)
    if digest is None:
        return ()
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", hexdigest):
        raise FieldError(f"expected 'sha256:<64 hex digits>', got {digest[:80]!r}", field="hash")
    kind = artifact_kind(filename)
    if kind is None:
        return ()
    return (Artifact(filename=filename, sha256=hexdigest.lower(), kind=kind),)


def _edges(d: Mapping[str, Any], key: str) -> _Edges:
    out: _Edges = {}
    for dep_name, dep in get_list_of(d, key, _edge):
        out[dep_name] = (*out.get(dep_name, ()), dep)
    return out


def _edge(value: Any) -> tuple[str, LockedDependency]:
    e = check_table(value)
    version = get(e, "version", str, default="")
    return canonicalize_name(get(e, "name", str, required=True)), LockedDependency(
        version=f"=={version}" if version else "",
        markers=get(e, "marker", str, default=""),
        extras=tuple(canonicalize_name(x) for x in get_list(e, "extra", str)),
    )


def _with_extra(dep: LockedDependency, extra: str) -> LockedDependency:
    tag = f'extra == "{extra}"'
    return LockedDependency(
        version=dep.version,
        markers=f"({dep.markers}) and {tag}" if dep.markers else tag,
        extras=dep.extras,
    )


# --- freshness ------------------------------------------------------------------------------------


class StaleUvLock(SlimlineError):
    """pyproject.toml asks for other packages than uv.lock recorded for it."""

    exit_status = ExitStatus.INPUT


def check_fresh(project: Project, lock: Lock) -> None:
    """Raise :class:`StaleUvLock` when pyproject.toml names requirements (by group) that the
    lock's record of the project (``[package.metadata]``) does not, or the other way round.

    uv writes no content hash; comparing names catches an added or removed dependency, not a
    changed version constraint (``uv lock --check`` compares the full requirements)."""
    recorded = _recorded(lock.path, project)
    declared = {g: sorted(_declared(project, g)) for g in project.groups}
    for group in sorted(declared):  # a group pyproject.toml no longer has cannot be selected
        want, have = set(declared.get(group, ())), set(recorded.get(group, ()))
        if want != have:
            added, removed = sorted(want - have), sorted(have - want)
            raise StaleUvLock(
                f"pyproject.toml's {group!r} dependencies differ from what uv.lock was made for"
                + (f" (not in the lock: {', '.join(added)})" if added else "")
                + (f" (no longer in pyproject.toml: {', '.join(removed)})" if removed else ""),
                doing=f"checking {lock.path}",
                hint="run `uv lock` to update the lock file, then build again",
            )


def _declared(project: Project, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The requirement names of group ``name`` with those of the groups it includes (PEP 735
    ``{include-group = ...}``): uv records a group's requirements expanded so."""
    group = project.groups[name]
    out = {d.name for d in group.dependencies}
    for inc in group.includes:
        if inc in project.groups and inc not in seen:
            out |= _declared(project, inc, seen | {name})
    return out


def _recorded(path: Path, project: Project) -> dict[str, list[str]]:
    """Group -> canonical requirement names, from the project's ``[package.metadata]``."""
    data = toml.load(path, error=UvLockError)
    with toml.raising(UvLockError, path):
        for i, d in enumerate(get_list_of(data, "package", check_table)):
            if canonicalize_name(str(d.get("name", ""))) != canonicalize_name(project.name):
                continue
            with within(f"package[{i}].metadata"):
                meta = get_table(d, "metadata")
                out = {MAIN: sorted({_req_name(r) for r in get_list(meta, "requires-dist", dict)})}
                dev = get_table(meta, "requires-dev")
                for group in dev:
                    with within("requires-dev"):
                        reqs = get_list(dev, group, dict)
                    out[canonicalize_name(group)] = sorted({_req_name(r) for r in reqs if "name" in r})
            return out
    return {}


def _req_name(r: Mapping[str, Any]) -> str:
    return canonicalize_name(get(r, "name", str, required=True))
