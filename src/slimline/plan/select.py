"""Which locked distributions go into the image, and from which artifact: Poetry's semantics, for the target.

Groups: ``only`` if given, else ``{"main"} | with - without`` (slimline builds production images,
so the default is the main group alone, like ``poetry install --only main``).  Extras: the
root project's extras as named, or all of them.  Every marker is evaluated with the
*target's* environment (:meth:`Target.marker_env`), never the host's.

* lock-version 2.1: a package is selected when one of its groups is selected and the marker of
  that group holds (Poetry's ``Transaction.calculate_operations``).
* lock-version 2.0 and 1.1 carry no groups or markers per package: the dependency graph is
  walked from the root's dependencies of the selected groups and extras, following only the
  dependency entries whose markers hold and the extras each package is asked for.
* ``uv.lock``: the same walk, from the project's own entry in the lock; ``pylock.toml``: each
  package's marker with the extras and groups asked for (:mod:`slimline.plan.formats`).

Pure: reads nothing but its arguments.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import packaging
from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from slimline.errors import ExitStatus, SlimlineError
from slimline.plan import formats, wheels
from slimline.plan.model import Allowance, Origin, OriginKind, Plan, Selected
from slimline.project.lockfile import Lock, LockedPackage
from slimline.project.pyproject import MAIN, Dependency, Group, Project, poetry_constraint
from slimline.target import Target

__all__ = ["SelectError", "active_groups", "default_origin", "holds", "origin_of", "select"]

_SETS_OK = Version(packaging.__version__) >= Version("26.4")  # ``extra`` may be a set of names


class SelectError(SlimlineError):
    """The requested groups/extras do not exist, or the lock cannot satisfy the project for this target."""

    exit_status = ExitStatus.INPUT

    def __init__(self, problem: str, *, hint: str = "", doing: str = "selecting packages") -> None:
        super().__init__(problem, doing=doing, hint=hint)


@dataclass(frozen=True, slots=True)
class _Want:
    """A request for a package: by name, with extras and the version constraint of the requester."""

    name: str
    extras: frozenset[str]
    specifier: str
    requester: str


def active_groups(
    project: Project,
    *,
    with_groups: Sequence[str] = (),
    without_groups: Sequence[str] = (),
    only_groups: Sequence[str] = (),
    also_known: Collection[str] = (),
) -> frozenset[str]:
    """The selected group names (canonical); unknown names are an error, as in Poetry
    (``also_known``: groups the lock declares beyond the project's)."""
    known = set(project.groups) | set(also_known)
    wanted = {"--with": with_groups, "--without": without_groups, "--only": only_groups}
    missing = sorted(
        {
            f"{canonicalize_name(g)} (via {opt})"
            for opt, gs in wanted.items()
            for g in gs
            if canonicalize_name(g) not in known
        }
    )
    if missing:
        raise SelectError(
            f"group(s) not found: {', '.join(missing)}",
            hint=f"the project defines: {', '.join(sorted(known))}",
        )
    if only_groups:
        return frozenset(canonicalize_name(g) for g in only_groups)
    return frozenset({MAIN, *(canonicalize_name(g) for g in with_groups)}) - {
        canonicalize_name(g) for g in without_groups
    }


def select(
    project: Project,
    lock: Lock,
    target: Target,
    *,
    with_groups: Sequence[str] = (),
    without_groups: Sequence[str] = (),
    only_groups: Sequence[str] = (),
    extras: Sequence[str] = (),
    all_extras: bool = False,
    unverified: Collection[str] = (),
    plain_http: Collection[str] = (),
) -> Plan:
    """The plan for ``target``: every selected distribution with its origin and chosen artifact.

    ``unverified`` and ``plain_http`` name (canonically) the packages whose url or file
    dependency may lack a hash in the lock, or come over plain HTTP (:attr:`Selected.allow`)."""
    full = ".".join(str(p) for p in target.python_version)
    if not project.allows_python(full):
        spec = " || ".join(str(s) or "*" for s in project.python_alternatives)
        raise SelectError(
            f"the base image has Python {full} but the project requires Python {spec}",
            hint="pick a base image whose Python satisfies requires-python",
        )
    groups = active_groups(
        project,
        with_groups=with_groups,
        without_groups=without_groups,
        only_groups=only_groups,
        also_known=(*lock.dependency_groups, *lock.default_groups, *lock.root),  # pylock, uv.lock
    )
    known_extras = set(lock.extras) | set(project.extras)
    every = set(lock.extras) if lock.format == "pylock" else known_extras  # a pylock: what it declares
    chosen_extras = frozenset(every if all_extras else (canonicalize_name(e) for e in extras))
    if unknown := sorted(chosen_extras - known_extras):
        raise SelectError(
            f"extra(s) not defined by the project: {', '.join(unknown)}",
            hint=f"defined extras: {', '.join(sorted(known_extras)) or '(none)'}",
        )
    picked, requested = _picked(project, lock, target, groups, chosen_extras)
    _check_unique(picked)
    default = default_origin(project)
    allowed: dict[str, set[Allowance]] = {}
    for n in unverified:
        allowed.setdefault(canonicalize_name(n), set()).add("unverified")
    for n in plain_http:
        allowed.setdefault(canonicalize_name(n), set()).add("plain-http")
    packages = tuple(
        sorted(
            (
                _selected(p, lock, target, requested.get(p.name, frozenset()), default, allowed)
                for p in picked
            ),
            key=lambda s: (s.name, s.version),
        )
    )
    return Plan(
        target=target, packages=packages, groups=tuple(sorted(groups)), extras=tuple(sorted(chosen_extras))
    )


def _picked(
    project: Project, lock: Lock, target: Target, groups: frozenset[str], chosen_extras: frozenset[str]
) -> tuple[list[LockedPackage], dict[str, frozenset[str]]]:
    """The selected packages by the lock format's rule, and the extras each was asked for."""
    env = target.marker_env()
    requested: dict[str, frozenset[str]]
    if lock.format == "pylock":
        picked, requested = formats.pylock_packages(lock, groups, chosen_extras, env), {}
    elif lock.format == "uv":
        forks = formats.uv_conflict_names(project.name, groups, chosen_extras)
        holding = partial(holds, env=env, extras=chosen_extras | forks, what=project.name)
        roots = formats.uv_roots(lock, groups, holding)
        wants = [_Want(name, frozenset(d.extras), d.version, project.name) for name, d in roots]
        picked, requested = _walk(lock, target, wants, env, forks)
    elif lock.has_groups_and_markers:
        picked = _by_groups_and_markers(lock, groups, chosen_extras, env)
        requested = _requested_extras(project, picked, groups, chosen_extras, env)
    else:
        picked, requested = _walk(lock, target, _root_wants(project, groups, chosen_extras, env), env)
    return picked, requested


# --- markers ------------------------------------------------------------------------------------


@cache
def _marker(text: str) -> Marker:
    return Marker(text)


def holds(text: str, env: Mapping[str, str], extras: Iterable[str] = (), *, what: str = "") -> bool:
    """Does marker ``text`` hold in ``env`` with the set of ``extras`` requested ("" always holds)."""
    if not text or text == "*":
        return True
    try:
        marker = _marker(text)
        if _SETS_OK:
            return marker.evaluate({**env, "extra": frozenset(extras)})
        return any(marker.evaluate({**env, "extra": e}) for e in (*extras, ""))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as err:
        raise SelectError(
            f"cannot evaluate marker {text!r}: {err}",
            doing=f"evaluating markers of {what}",
            hint="re-lock with a current Poetry (`poetry lock`)",
        ) from err


# --- lock 2.1 -----------------------------------------------------------------------------------


def _by_groups_and_markers(
    lock: Lock, groups: frozenset[str], extras: frozenset[str], env: Mapping[str, str]
) -> list[LockedPackage]:
    return [
        p
        for p in lock.packages
        if any(holds(p.marker_for(g), env, extras, what=p.name) for g in p.groups if g in groups)
    ]


def _requested_extras(
    project: Project,
    picked: Sequence[LockedPackage],
    groups: frozenset[str],
    extras: frozenset[str],
    env: Mapping[str, str],
) -> dict[str, frozenset[str]]:
    """Extras each selected package is asked for (information only: the lock already resolved them)."""
    out: dict[str, set[str]] = {}
    for w in _root_wants(project, groups, extras, env):
        out.setdefault(w.name, set()).update(w.extras)
    for p in picked:
        for name, alts in p.dependencies.items():
            for d in alts:
                if d.extras and holds(d.markers, env, (), what=p.name):
                    out.setdefault(name, set()).update(d.extras)
    return {k: frozenset(v) for k, v in out.items()}


# --- lock 2.0 / 1.1: walk the graph ---------------------------------------------------------------


def _group_deps(
    project: Project, name: str, seen: frozenset[str] = frozenset()
) -> list[tuple[Group, Dependency]]:
    group = project.groups[name]
    out: list[tuple[Group, Dependency]] = [(group, d) for d in group.dependencies]
    for inc in group.includes:
        if inc not in seen:
            out.extend(_group_deps(project, inc, seen | {name}))
    return out


def _root_wants(
    project: Project, groups: frozenset[str], extras: frozenset[str], env: Mapping[str, str]
) -> list[_Want]:
    wants = []
    for g in sorted(groups):
        for group, d in _group_deps(project, g):
            if d.optional and not (group.name == MAIN and set(d.in_extras) & extras):
                continue
            if holds(d.marker, env, extras, what=f"{project.name} ({group.name})"):
                wants.append(_Want(d.name, frozenset(d.extras), d.specifier, project.name))
    return wants


def _walk(
    lock: Lock,
    target: Target,
    roots: Sequence[_Want],
    env: Mapping[str, str],
    also: frozenset[str] = frozenset(),
) -> tuple[list[LockedPackage], dict[str, frozenset[str]]]:
    """The packages reached from ``roots``, and the extras each was asked for (``also``: names
    every marker sees among the extras, uv's for the project's selected extras and groups)."""
    asked: dict[tuple[str, str], frozenset[str]] = {}  # (name, version) -> extras asked so far
    order: list[LockedPackage] = []
    queue = deque(roots)
    while queue:
        want = queue.popleft()
        pkg = _candidate(lock, want, target)
        key = (pkg.name, pkg.version)
        before = asked.get(key)
        if before is not None and want.extras <= before:
            continue
        now = (before or frozenset()) | want.extras
        asked[key] = now
        if before is None:
            order.append(pkg)
        in_extras = {canonicalize_name(_req_name(r)) for e in now for r in pkg.extras.get(e, ())}
        for name, alts in pkg.dependencies.items():
            for d in alts:
                if d.optional and name not in in_extras:
                    continue
                if holds(d.markers, env, now | also, what=f"{pkg.name} {pkg.version}"):
                    queue.append(_Want(name, frozenset(d.extras), d.version, f"{pkg.name} {pkg.version}"))
    requested = {name: e for (name, _), e in asked.items()}
    return order, requested


def _candidate(lock: Lock, want: _Want, target: Target) -> LockedPackage:
    found = lock.named(want.name)
    if not found:
        raise SelectError(
            f"{want.requester} needs {want.name}, which {lock.path.name} does not contain",
            hint="run `poetry lock` to update the lock file",
        )
    if len(found) == 1:
        return found[0]
    full = Version(".".join(str(p) for p in target.python_version))
    fits = [
        p for p in found if _allows(want.specifier, p.version) and _allows_python(p.python_versions, full)
    ]
    if not fits:
        raise SelectError(
            f"no locked version of {want.name} fits {want.requester}'s constraint "
            f"{want.specifier or '*'} on Python {full}",
            hint="run `poetry lock` again",
        )
    return max(fits, key=lambda p: Version(p.version))


def _allows(specifier: str, version: str) -> bool:
    try:
        return SpecifierSet(specifier).contains(version, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        try:
            return any(s.contains(version, prereleases=True) for s in poetry_constraint(specifier))
        except (ValueError, InvalidVersion):
            return True  # unreadable constraint: it does not rule anything out


def _allows_python(constraint: str, version: Version) -> bool:
    try:
        return any(s.contains(version, prereleases=True) for s in poetry_constraint(constraint))
    except (ValueError, InvalidVersion):
        return True


def _req_name(text: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    return m.group(1) if m else text


# --- results ------------------------------------------------------------------------------------


def _check_unique(picked: Sequence[LockedPackage]) -> None:
    seen: dict[str, str] = {}
    for p in picked:
        if p.name in seen and seen[p.name] != p.version:
            raise SelectError(
                f"both {p.name} {seen[p.name]} and {p.version} are selected for this target",
                hint="the lock's markers overlap; run `poetry lock` again",
            )
        seen[p.name] = p.version


def default_origin(project: Project) -> Origin:
    """Where a lock package without a source table comes from.

    PyPI, i.e. ``Origin("index", "", "")`` for the fetch layer to resolve from configuration,
    unless the project replaced PyPI (a ``primary`` or old-style ``default`` source and no
    explicit ``PyPI`` source), in which case its first such source.
    """
    if any(s.name.lower() == "pypi" for s in project.sources):
        return Origin(kind="index", url="", name="")
    for s in project.sources:
        if s.priority in ("default", "primary"):
            return Origin(kind="index", url=s.url, name=s.name)
    return Origin(kind="index", url="", name="")


def origin_of(p: LockedPackage, lock: Lock, *, default: Origin | None = None) -> Origin:
    """The origin of a locked package; directory/file paths are made absolute relative to the lock."""
    s = p.source
    if s is None:
        return default or Origin(kind="index", url="", name="")
    if s.type == "legacy":
        return Origin(kind="index", url=s.url, name=s.reference)
    if s.type in ("directory", "file"):
        path = (lock.path.parent / Path(s.url)).resolve()
        kind: OriginKind = "directory" if s.type == "directory" else "file"
        return Origin(kind=kind, url=str(path), subdirectory=s.subdirectory, develop=p.develop)
    if s.type == "url":
        return Origin(kind="url", url=s.url, subdirectory=s.subdirectory)
    if s.type == "git":
        return Origin(
            kind="git",
            url=s.url,
            reference=s.reference,
            resolved=s.resolved_reference,
            subdirectory=s.subdirectory,
            develop=p.develop,
        )
    raise SelectError(
        f"{p.name} {p.version} comes from a source of type {s.type!r}, which slimline cannot fetch",
        hint="use an index, path, URL or git dependency",
    )


def _selected(
    p: LockedPackage,
    lock: Lock,
    target: Target,
    extras: frozenset[str],
    default: Origin,
    allowed: Mapping[str, set[Allowance]],
) -> Selected:
    origin = origin_of(p, lock, default=default)
    artifact = None if origin.kind in ("directory", "git") else wheels.choose(p.files, target)
    return Selected(
        name=p.name,
        version=p.version,
        origin=origin,
        artifact=artifact,
        extras=tuple(sorted(extras)),
        files=p.files if origin.kind in ("file", "url") else (),
        allow=frozenset(allowed.get(p.name, ())),
    )
