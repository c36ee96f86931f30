"""Selection rules of the lock formats other than Poetry's, for :mod:`slimline.plan.select`.

* ``pylock.toml`` (PEP 751's installation steps): the target must satisfy the lock's
  ``requires-python`` and one of its ``environments``; a package is selected when its ``marker``
  holds in the lock-file context, where ``extras`` is the set of root extras asked for and
  ``dependency_groups`` the groups asked for, slimline's ``main`` standing for the lock's
  ``default-groups``; a selected package whose ``requires-python`` the target does not meet is
  an error.  Only extras and groups the lock declares can be asked for: a lock exported for one
  selection (Poetry's export) is installed as it is.
* ``uv.lock``: the graph is walked (by :mod:`slimline.plan.select`) from the project's own
  entry, :func:`uv_roots` giving its dependencies of the selected groups whose markers hold;
  markers of forks for conflicting extras or groups name them as uv encodes them
  (:func:`uv_conflict_names`).

Pure: reads nothing but its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from slimline.errors import InputError, SlimlineError
from slimline.project.groups import MAIN
from slimline.project.lockfile import Lock, LockedDependency, LockedPackage

__all__ = ["pylock_groups", "pylock_packages", "uv_conflict_names", "uv_roots"]

_HINT = "export the lock again with the groups and extras you want (`poetry export --with ... -E ...`)"


def pylock_groups(lock: Lock, groups: frozenset[str], extras: frozenset[str]) -> frozenset[str]:
    """The ``dependency_groups`` set for ``groups`` (``main`` = the default groups); raises
    when a group or extra is asked for that the lock does not declare."""
    declared = {*lock.dependency_groups, *lock.default_groups}
    if unknown := sorted(groups - {MAIN} - declared):
        raise _error(
            f"{lock.path.name} declares no dependency group {', '.join(unknown)} "
            f"(it declares: {', '.join(sorted(declared)) or 'none'})",
        )
    if unknown := sorted(extras - set(lock.extras)):
        raise _error(
            f"{lock.path.name} declares no extra {', '.join(unknown)} "
            f"(it declares: {', '.join(sorted(lock.extras)) or 'none'})",
        )
    return frozenset((set(lock.default_groups) if MAIN in groups else set()) | (groups - {MAIN}))


def pylock_packages(
    lock: Lock,
    groups: frozenset[str],
    extras: frozenset[str],
    env: Mapping[str, str],
) -> list[LockedPackage]:
    """The packages of ``lock`` to install in ``env`` (see the module's contract)."""
    full = env["python_full_version"]
    if lock.python_versions not in ("", "*") and not _contains(lock.python_versions, full):
        raise _error(f"{lock.path.name} requires Python {lock.python_versions}; the base has {full}")
    context = {**env, "extras": extras, "dependency_groups": pylock_groups(lock, groups, extras)}
    if lock.environments and not any(_holds(m, env, "requirement") for m in lock.environments):
        raise _error(
            f"{lock.path.name} was made for other environments ({' or '.join(lock.environments)})",
            hint="pick a base whose Python and platform the lock was made for, or lock for this one",
        )
    picked = [p for p in lock.packages if not p.markers or _holds(str(p.markers), context, "lock_file")]
    for p in picked:
        if p.python_versions not in ("", "*") and not _contains(p.python_versions, full):
            raise _error(f"{p.name} {p.version} requires Python {p.python_versions}; the base has {full}")
    return picked


def uv_roots(
    lock: Lock,
    groups: frozenset[str],
    holds: Callable[[str], bool],
) -> list[tuple[str, LockedDependency]]:
    """The project's own dependencies in ``lock`` (uv.lock) for ``groups`` whose marker ``holds``."""
    out: list[tuple[str, LockedDependency]] = []
    for g in sorted(groups):
        for name, alts in lock.root.get(g, {}).items():
            out.extend((name, d) for d in alts if holds(d.markers))
    return out


def uv_conflict_names(project: str, groups: frozenset[str], extras: frozenset[str]) -> frozenset[str]:
    """How uv names the project's selected extras and groups in the markers of forks it made for
    conflicting ones (``extra == 'extra-4-demo-cpu'``, ``'group-4-demo-dev'``): each marker of the
    walk sees these among its extras."""
    name = canonicalize_name(project)
    return frozenset(
        {f"extra-{len(name)}-{name}-{e}" for e in extras}
        | {f"group-{len(name)}-{name}-{g}" for g in groups - {MAIN}}
    )


def _contains(spec: str, version: str) -> bool:
    try:
        return SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidSpecifier:
        return True  # unreadable: packaging.pylock validated it; it rules nothing out here


def _holds(text: str, env: Mapping[str, object], context: str) -> bool:
    try:
        return Marker(text).evaluate(env, context=context)  # type: ignore[arg-type]
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as err:
        raise _error(f"cannot evaluate marker {text!r}: {err}", hint="export or lock again") from err


def _error(problem: str, *, hint: str = _HINT) -> SlimlineError:
    return InputError(problem, doing="selecting packages from a pylock.toml", hint=hint)
