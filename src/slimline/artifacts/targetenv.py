"""Build requirements already installed for the target: one environment serves every build whose
requirements it satisfies the way pip would have.

Each source build asks for its own requirements (``setuptools>=61``, ``setuptools>=70.1``, ...).
Installing them is a pip run per distinct set, a second or more each; most sets resolve to the
same latest releases.  Contract of :func:`reusable`: an environment made earlier (its
``.complete`` record: the requirement strings and the target) serves ``requires`` when

* both name the same distributions (no extras, markers or URLs anywhere), and
* every version installed for them satisfies ``requires``, and
* the earlier requirements bound versions from below only (``>=``, ``>`` or nothing): then pip
  chose the newest release of each, and would choose the same release for ``requires`` (which
  admits it), so a build gets the same environment whichever build made it first.

:func:`record` is what such an environment's ``.complete`` holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import Distribution
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["COMPLETE", "names", "record", "reusable"]

COMPLETE = ".complete"
_LOWER = frozenset({">=", ">"})


def names(requires: Sequence[str]) -> list[str]:
    """The distributions ``requires`` name, canonical and sorted (a string that does not parse
    stands for itself)."""
    out: set[str] = set()
    for text in requires:
        try:
            out.add(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            out.add(text)
    return sorted(out)


def record(requires: Sequence[str], target: Sequence[str]) -> bytes:
    return json.dumps({"requires": sorted(requires), "target": list(target)}).encode()


def reusable(root: Path, requires: Sequence[str], target: Sequence[str]) -> Path | None:
    """An environment under ``root`` that serves ``requires`` for ``target`` (see the module's
    contract), the first by name; None if none does."""
    wanted = _parsed(requires)
    if wanted is None or not root.is_dir():
        return None
    for env in sorted(p for p in root.iterdir() if p.is_dir()):
        made = _made_for(env, target)
        if made is None or _names(made) != _names(wanted):
            continue
        if any(s.operator not in _LOWER for r in made for s in r.specifier):
            continue
        installed = _versions(env)
        if all(_admits(r, installed.get(canonicalize_name(r.name))) for r in wanted):
            return env
    return None


def _parsed(requires: Sequence[str]) -> list[Requirement] | None:
    try:
        reqs = [Requirement(r) for r in requires]
    except InvalidRequirement:
        return None
    if any(r.extras or r.marker or r.url for r in reqs):
        return None
    return reqs


def _made_for(env: Path, target: Sequence[str]) -> list[Requirement] | None:
    try:
        data = json.loads((env / COMPLETE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("target") != list(target):
        return None
    requires = data.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        return None
    return _parsed(requires)


def _names(reqs: Sequence[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in reqs}


def _versions(env: Path) -> dict[str, Version]:
    """Name -> version of each distribution installed in ``env`` (pip ``--target``: dist-info dirs)."""
    out: dict[str, Version] = {}
    for info in env.glob("*.dist-info"):
        meta = Distribution.at(info).metadata
        name, version = meta["Name"], meta["Version"]
        try:
            if name and version:
                out[canonicalize_name(name)] = Version(version)
        except InvalidVersion:
            continue
    return out


def _admits(req: Requirement, version: Version | None) -> bool:
    return version is not None and req.specifier.contains(version, prereleases=True)
