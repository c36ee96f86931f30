"""``--dry-run``: the plan of a build, without fetching, building or writing an output.

What it reads: ``pyproject.toml``, the lock and the settings (checked as a build checks them);
slimline's cache (a Debian base's pin, wheels already downloaded, the recorded sizes of wheels);
a base on the local disk (``oci:``, ``docker-archive:``), read as a build reads it (its blobs
copied into the cache).  What it never does: contact a package index, a Debian mirror or a
registry, run a build backend, or write an output.  A ``debian:`` base that is not pinned in
the cache is planned for the Python and glibc its suite is known to have; a registry base is
not pulled, so its target, and the distributions chosen for it, stay unknown.

Contract: :func:`plan` returns a :class:`DryRun`, which the command line shows as text
(:meth:`DryRun.lines`) or as the ``--json`` document (:meth:`DryRun.to_json`,
``docs/build-plan.schema.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slimline.artifacts.wheelinfo import WheelInfo
from slimline.base import resolve as bases
from slimline.build import preflight
from slimline.build.image import compression
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import redact
from slimline.oci.image import Platform
from slimline.plan import grouping, select
from slimline.plan.model import Plan, Selected
from slimline.project import lockfile, locks
from slimline.project.pyproject import MAIN, Project
from slimline.project.settings import Settings

__all__ = ["SCHEMA_VERSION", "DryRun", "Planned", "PlannedLayer", "PlatformPlan", "plan"]

SCHEMA_VERSION = 1
_BASE_HOW = {
    "pinned": "pinned in the cache",
    "assemble": "would be assembled from the Debian archive (not pinned in the cache; not read in a dry run)",
    "read": "read from the local disk",
    "pull": "would be pulled from its registry (not read in a dry run: its Python decides the wheels)",
}


@dataclass(frozen=True, slots=True)
class Planned:
    """One selected distribution and what a build would do to get it."""

    name: str
    version: str
    origin: str  # index, directory, file, url, git
    source: str  # the index or URL (credentials removed), or the path
    artifact: str | None  # the wheel or sdist file it would use; None: built from its source
    action: str  # "cached" (the wheel is in the cache), "download", "build" (from source), "local"


@dataclass(frozen=True, slots=True)
class PlannedLayer:
    kind: str  # "base", "stdlib", "venv", "dependencies", "local", "project"
    created_by: str
    packages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlatformPlan:
    platform: str
    base: bases.Foreseen
    distributions: tuple[Planned, ...] | None  # None: unknown until the base is pulled
    layers: tuple[PlannedLayer, ...]
    sizes_known: bool  # every wheel's size is recorded (else unknown ones are grouped as small)


@dataclass(frozen=True, slots=True)
class DryRun:
    name: str
    lock: str
    groups: tuple[str, ...]
    groups_left: tuple[str, ...]
    extras: tuple[str, ...]
    outputs: tuple[str, ...]
    platforms: tuple[PlatformPlan, ...]

    def lines(self) -> list[str]:
        """The plan as text, for people."""
        out = [f"dry run: {self.name} from {self.lock}; nothing fetched, built or written"]
        left = f"; not included: {', '.join(self.groups_left)}" if self.groups_left else ""
        out.append(f"groups: {', '.join(self.groups) or '(none)'}{left}")
        if self.extras:
            out.append(f"extras: {', '.join(self.extras)}")
        for p in self.platforms:
            out += _platform_lines(p)
        out += [f"output: {o}" for o in self.outputs]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "dry_run": True,
            "name": self.name,
            "lock": self.lock,
            "groups": list(self.groups),
            "groups_not_included": list(self.groups_left),
            "extras": list(self.extras),
            "outputs": list(self.outputs),
            "platforms": [_platform_json(p) for p in self.platforms],
        }


def plan(
    project: Project, settings: Settings, *, outputs: Sequence[str], refresh: bool, ctx: Context
) -> DryRun:
    """The plan of building ``project`` with ``settings`` (see the module's contract)."""
    lock_path = locks.find(project.root, setting=settings.lock)
    lock = locks.load(lock_path, project_root=project.root)
    locks.check_fresh(project, lock)
    settings = preflight.settle(project, lock, settings, report=ctx.report)
    active = select.active_groups(
        project,
        with_groups=settings.with_groups,
        without_groups=settings.without_groups,
        only_groups=settings.only_groups,
    )
    platforms = tuple(
        _platform(Platform.parse(text), project, lock, settings, refresh=refresh, ctx=ctx)
        for text in settings.platforms
    )
    return DryRun(
        name=settings.tag or f"{project.name.lower().replace('_', '-')}:{project.version or 'latest'}",
        lock=str(lock_path),
        groups=tuple(sorted(active, key=lambda g: (g != MAIN, g))),
        groups_left=tuple(sorted(set(project.groups) - active, key=lambda g: (g != MAIN, g))),
        extras=tuple(sorted(settings.extras)),
        outputs=tuple(outputs),
        platforms=platforms,
    )


def _platform(
    platform: Platform, project: Project, lock: lockfile.Lock, s: Settings, *, refresh: bool, ctx: Context
) -> PlatformPlan:
    options = bases.Options(
        requires_python=project.requires_python,
        debian=s.debian.for_image(),
        compression=compression(s, base=True),
        refresh=refresh,
    )
    base = bases.foresee(s.base, platform=platform, options=options, ctx=ctx)
    if base.target is None:
        return PlatformPlan(str(platform), base, None, _layers(base, None, project, s, {}), False)
    chosen = preflight.selected(project, lock, base.target, s)
    sizes = _sizes(chosen, ctx.cache)
    known = all(p.name in sizes for p in chosen.packages if not _by_content(p))
    planned = tuple(_planned(p, ctx.cache) for p in chosen.packages)
    return PlatformPlan(str(platform), base, planned, _layers(base, chosen, project, s, sizes), known)


def _by_content(p: Selected) -> bool:
    """Layers of their own, keyed by their wheel (as :mod:`slimline.build.dependencies` does)."""
    return p.is_local or p.artifact is None


def _sizes(chosen: Plan, cache: Cache) -> dict[str, int]:
    """The recorded wheel sizes (what a build groups by); unknown ones are left out."""
    out = {}
    for p in chosen.packages:
        info = None if p.artifact is None else WheelInfo.known(p.artifact.sha256, cache=cache)
        if info is not None:
            out[p.name] = info.size
    return out


def _planned(p: Selected, cache: Cache) -> Planned:
    art = p.artifact
    if p.origin.kind in ("directory", "git") or (art is not None and art.kind == "sdist"):
        action = "build"
    elif p.origin.kind == "file":
        action = "local"
    elif art is None:
        action = "download"  # a url dependency: the archive is fetched, then built if it is an sdist
    else:
        action = "cached" if cache.digest_path("sha256:" + art.sha256).is_file() else "download"
    return Planned(
        p.name, p.version, p.origin.kind, redact(p.origin.url), art.filename if art else None, action
    )


def _layers(
    base: bases.Foreseen, chosen: Plan | None, project: Project, s: Settings, sizes: dict[str, int]
) -> tuple[PlannedLayer, ...]:
    """The base's layers, then the layers a build would make, in the image's order."""
    if base.image is not None:
        out = [PlannedLayer("base", h.created_by) for h in base.image.history if not h.empty_layer]
    else:
        out = [PlannedLayer("base", f"{base.name}: {_BASE_HOW[base.how]}")]
    if s.bytecode or (s.stdlib_bytecode and base.how in ("pinned", "assemble")):  # as build.image does
        out.append(PlannedLayer("stdlib", "slimline: bytecode for the base's standard library"))
    out.append(PlannedLayer("venv", "slimline: python venv"))
    if chosen is not None:
        third = [p for p in chosen.packages if not _by_content(p)]
        items = [grouping.Item(p.name, sizes.get(p.name, 0)) for p in third]
        by_name = {p.name: p for p in third}
        for group in grouping.group(items):
            names = tuple(f"{by_name[i.name].name} {by_name[i.name].version}" for i in group)
            out.append(PlannedLayer("dependencies", f"slimline: dependencies {', '.join(names)}", names))
        for p in (p for p in chosen.packages if _by_content(p)):
            said = f"slimline: local dependency {p.name} {p.version}"
            out.append(PlannedLayer("local", said, (f"{p.name} {p.version}",)))
    how = "its wheel, built by its backend" if project.package_mode else "its files"
    out.append(PlannedLayer("project", f"the project {project.name} {project.version}: {how}"))
    return tuple(out)


def _platform_lines(p: PlatformPlan) -> list[str]:
    base, target = p.base, p.base.target
    out = [f"{p.platform}:", f"  base {base.name}: {_BASE_HOW[base.how]}"]
    out.append(f"  target: {target}" if target is not None else "  target: unknown until the base is pulled")
    if p.distributions is None:
        out.append("  distributions: chosen once the base's Python is known")
    else:
        out.append(f"  {len(p.distributions)} distributions:")
        for d in p.distributions:
            out.append(f"    {d.name} {d.version}: {d.artifact or f'({d.origin} source)'} [{d.action}]")
    sizes = "" if p.sizes_known else " (wheels of unrecorded size grouped as small)"
    out.append(f"  {len(p.layers)} layers{sizes}:")
    out += [f"    {layer.kind}: {layer.created_by}" for layer in p.layers]
    return out


def _platform_json(p: PlatformPlan) -> dict[str, Any]:
    target = p.base.target
    return {
        "platform": p.platform,
        "base": {
            "ref": p.base.name,
            "how": p.base.how,
            "digest": p.base.image.digest if p.base.image is not None else None,
        },
        "target": None if target is None else {"description": str(target), **target.to_json()},
        "distributions": None
        if p.distributions is None
        else [
            {
                "name": d.name,
                "version": d.version,
                "origin": d.origin,
                "source": d.source,
                "artifact": d.artifact,
                "action": d.action,
            }
            for d in p.distributions
        ],
        "layers": [
            {"kind": x.kind, "created_by": x.created_by, "packages": list(x.packages)} for x in p.layers
        ],
        "sizes_known": p.sizes_known,
    }
