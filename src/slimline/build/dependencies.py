"""The layers below the project: the venv skeleton, the third-party dependencies (grouped by
:mod:`slimline.plan.grouping`) and local path or VCS dependencies, as
:class:`~slimline.layers.job.Job` values.

Contract: :func:`infos` knows every distribution's wheel size and native needs, from the cache's
``wheel-info`` records when it can (then no wheel is fetched or read) and else by fetching the
plan's wheels; :func:`jobs` keys each layer by every input (the artifacts' hashes, the venv
prefix, the target, the bytecode compiler), so a layer found under its key is the layer the job
would make.  Wheels are fetched at most once, when the first layer that needs one is made: a
build whose dependency layers are all cached fetches nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from slimline.artifacts import fetch
from slimline.artifacts.targetbuild import TargetBuilds
from slimline.artifacts.wheelinfo import Providers, WheelInfo
from slimline.base import builder
from slimline.build.jobs import Placement, job
from slimline.build.start import Started
from slimline.cache.store import sha256_file
from slimline.context import Context
from slimline.errors import SlimlineError, without_credentials
from slimline.layers.filetree import FileTree
from slimline.layers.job import Job
from slimline.plan import grouping
from slimline.plan.model import Plan, Selected
from slimline.report import Nested
from slimline.trees import artifactrecord

if TYPE_CHECKING:
    from slimline.build.sharing import Sharing

__all__ = ["Wheels", "direct_url", "infos", "jobs", "needs"]


class Wheels:
    """The plan's wheels (canonical name -> verified wheel file), fetched once, on first need, by
    whichever thread asks first; the others wait for that fetch."""

    def __init__(self, plan: Plan, *, ctx: Context, started: Started, targets: TargetBuilds | None) -> None:
        self._plan, self._ctx = plan, ctx
        self._index, self._envs, self._root = started.default_index, started.envs, started.project.root
        self.targets = targets  # builds for the target, in the builder (debian: bases)
        self._lock = threading.Lock()
        self._done: dict[str, Path] | None = None

    def get(self) -> Mapping[str, Path]:
        with self._lock:
            if self._done is None:
                self._ctx.report.step(f"fetching {len(self._plan.packages)} distributions")
                self._done = fetch.fetch(
                    self._plan,
                    ctx=self._ctx.with_report(Nested(self._ctx.report)),
                    default_index=self._index,
                    build_env=self._envs,
                    project_root=self._root,
                    target_builds=self.targets,
                )
            return self._done


def infos(plan: Plan, wheels: Wheels, *, ctx: Context, shared: Sharing | None = None) -> dict[str, WheelInfo]:
    """Every distribution's :class:`WheelInfo`; fetches the wheels only when some is not known
    here nor to ``shared`` (or there are local dependencies, whose wheels key their layers)."""
    found = _known(plan, ctx)
    if len(found) == len(plan.packages):
        return found
    shas = [p.artifact.sha256 for p in plan.packages if p.artifact is not None and not p.is_local]
    if shared is not None and len(shas) == len(plan.packages) and shared.recall_infos(shas):
        found = _known(plan, ctx)
        if len(found) == len(plan.packages):
            return found
    found = _fetched(plan, wheels, found, ctx=ctx)
    if shared is not None and len(shas) == len(plan.packages):
        shared.keep_infos({p.artifact.sha256: found[p.name] for p in plan.packages if p.artifact is not None})
    return found


def _known(plan: Plan, ctx: Context) -> dict[str, WheelInfo]:
    found: dict[str, WheelInfo] = {}
    for p in plan.packages:
        info = (
            None if p.is_local or p.artifact is None else WheelInfo.known(p.artifact.sha256, cache=ctx.cache)
        )
        if info is not None:
            found[p.name] = info
    return found


def _fetched(
    plan: Plan, wheels: Wheels, found: dict[str, WheelInfo], *, ctx: Context
) -> dict[str, WheelInfo]:
    got = wheels.get()
    providers = _providers(wheels.targets)
    for p in plan.packages:
        if p.name not in found:
            found[p.name] = WheelInfo.of(got[p.name], providers=providers)
            if p.artifact is not None and not p.is_local:
                found[p.name].remember(p.artifact.sha256, cache=ctx.cache)
    return found


def needs(found: Mapping[str, WheelInfo]) -> dict[str, dict[str, str | None]]:
    """The system sonames each distribution's native code links (for those that link any), with
    the Debian package known to ship each, or None."""
    return {name: {s: info.packages.get(s) for s in info.needs} for name, info in found.items() if info.needs}


def _providers(targets: TargetBuilds | None) -> Providers:
    """Which builder package ships a soname, for wheels built in the builder (when a build had its
    files written: a builder only resolved, early, is not written for this)."""

    def find(sonames: Iterable[str]) -> Mapping[str, str]:
        made = targets.made if targets is not None else None
        root = made.written if made is not None else None
        return builder.providers(root, sonames) if root is not None else {}

    return find


def jobs(plan: Plan, found: Mapping[str, WheelInfo], wheels: Wheels, *, place: Placement) -> list[Job]:
    """The venv job, then one job per group of third-party distributions, then one per local one."""
    target, made_with = place.target, place.compiler
    where = (place.venv, target.interpreter, list(target.python_version), str(target.platform))

    def venv() -> FileTree:
        from slimline.trees import install

        return install.venv_tree(target, prefix=place.venv)

    out = [job("venv", where, venv, created_by="slimline: python venv", compiler=made_with)]
    third = [p for p in plan.packages if not _by_content(p)]
    for group in _groups(third, found):
        names = ", ".join(f"{p.name} {p.version}" for p in group)
        parts: tuple[object, ...] = (*where, [_artifact_id(p) for p in group], artifactrecord.FORMAT)
        parts += _slim_part(group, place)
        make = _installer(group, wheels, place=place)
        out.append(job("deps", parts, make, created_by=f"slimline: dependencies {names}", compiler=made_with))
    for p in (p for p in plan.packages if _by_content(p)):
        wheel = wheels.get()[p.name]  # known: infos() fetched them
        parts = (
            *where,
            p.name,
            sha256_file(wheel),
            json.dumps(direct_url(p), sort_keys=True),
            _artifact_id(p),
        )
        parts += _slim_part([p], place)
        make, said = _installer([p], wheels, place=place), f"slimline: local dependency {p.name} {p.version}"
        out.append(job("local", parts, make, created_by=said, compiler=made_with))
    return out


def _slim_part(group: Sequence[Selected], place: Placement) -> tuple[object, ...]:
    """What slim mode adds to a dependency layer's key: nothing when it is off (keys as before)."""
    if place.slim is None:
        return ()
    from slimline.trees import slim

    return (["slim", slim.FORMAT, {p.name: list(place.slim.get(p.name, ())) for p in group}],)


def _by_content(p: Selected) -> bool:
    """Keyed by its wheel's hash (fetched first), not by the lock: local and VCS dependencies,
    and url ones without a locked artifact for the target (their bytes are known once fetched)."""
    return p.is_local or p.artifact is None


def _artifact_id(p: Selected) -> str:
    if p.artifact is not None:
        return f"{p.name}=={p.version}#{p.artifact.filename}:{p.artifact.sha256}"
    return f"{p.name}=={p.version}#{p.origin.kind}:{p.origin.url}@{p.origin.resolved}"


def _groups(third: Sequence[Selected], found: Mapping[str, WheelInfo]) -> list[list[Selected]]:
    items = [grouping.Item(name=p.name, size=found[p.name].size) for p in third]
    by_name = {p.name: p for p in third}
    return [[by_name[i.name] for i in g] for g in grouping.group(items)]


def _installer(group: Sequence[Selected], wheels: Wheels, *, place: Placement) -> Callable[[], FileTree]:
    def make() -> FileTree:
        from slimline.trees import install

        got = wheels.get()
        tree = FileTree()
        for p in group:
            if p.name not in got:
                raise SlimlineError(
                    f"no wheel was fetched for {p.name}", doing="laying out dependency layers"
                )
            wheel_tree = install.wheel_tree(
                got[p.name],
                target=place.target,
                prefix=place.venv,
                direct_url=direct_url(p),
                artifact=(p.artifact.filename, p.artifact.sha256) if p.artifact is not None else None,
            )
            if place.slim is not None:
                wheel_tree = _slimmed(wheel_tree, p.name, place)
            tree = tree.merge(wheel_tree)
        return tree

    return make


def _slimmed(tree: FileTree, name: str, place: Placement) -> FileTree:
    from slimline.trees import slim

    assert place.slim is not None
    venv = place.venv.strip("/")
    site = f"{venv}/lib/python{place.target.python_xy}/site-packages"
    return slim.prune(tree, venv=venv, site=site, keep=place.slim.get(name, ()), name=name)


def direct_url(p: Selected) -> dict[str, object] | None:
    """PEP 610 ``direct_url.json`` for a distribution not from an index, or None.

    Local directories and files get none: their URL would be a path on the build host, which
    means nothing inside the image and would make the image differ per checkout directory.
    URLs are recorded without their credentials (PEP 610)."""
    o = p.origin
    if o.kind in ("directory", "file"):
        return None
    if o.kind == "git":
        info: dict[str, object] = {"vcs": "git", "commit_id": o.resolved}
        if o.reference:
            info["requested_revision"] = o.reference
        d: dict[str, object] = {"url": without_credentials(o.url), "vcs_info": info}
        if o.subdirectory:
            d["subdirectory"] = o.subdirectory
        return d
    if o.kind == "url":
        return {"url": without_credentials(o.url), "archive_info": {}}
    return None
