"""A full build: one image per platform, made by calling the stages in order.

For each platform: the base (resolved, then completed with the Debian packages that wheels'
native code needs), the plan (distributions selected for the base's interpreter), what is known
of the wheels, the bytecode compiler (chosen before any layer is keyed), the layer jobs, the
layers (found in the layer cache or made), and the image (:mod:`slimline.build.assemble`).
Returns, per platform, a :class:`~slimline.build.memo.Recipe` (for the memo) and a
:class:`~slimline.build.result.Built` (what was made, for the command's result); writes nothing
but cache entries.

Times: every file in every layer has mtime 0 except the project layer, whose files get the
build epoch (``SOURCE_DATE_EPOCH``, else 0); the image's ``created`` is the build epoch too.
Dependency layers therefore stay byte-identical across commits even when CI sets
``SOURCE_DATE_EPOCH`` per commit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from slimline import layers
from slimline.artifacts import compiled, sources
from slimline.artifacts.build_backend import BuildFailed
from slimline.artifacts.targetbuild import TargetBuilds
from slimline.artifacts.wheelcache import tree_files, tree_hash
from slimline.base import builder, native
from slimline.base import resolve as bases
from slimline.build import assemble, attach, dependencies, dropped, imageconfig, preflight, writable
from slimline.build import stdlib as stdlib_layer
from slimline.build.jobs import AppFiles, Placement, project_job, stdlib_job
from slimline.build.memo import Compiled, Recipe, WheelRef
from slimline.build.result import Built, statuses
from slimline.build.start import Started
from slimline.cache.store import sha256_file
from slimline.context import Context
from slimline.errors import ExitStatus, SlimlineError
from slimline.layers.job import Job
from slimline.oci.image import Image, Platform
from slimline.plan.model import Plan
from slimline.project import lockfile, locks, locksources
from slimline.project.settings import DebianSettings, Settings

if TYPE_CHECKING:
    from slimline.build.sharing import Sharing
    from slimline.trees.compiler import Compiler

__all__ = ["BuildError", "build", "build_epoch"]


class BuildError(SlimlineError):
    """What the settings must change: a bad SOURCE_DATE_EPOCH, libraries the base lacks."""

    exit_status = ExitStatus.INPUT


@dataclass(frozen=True, slots=True)
class _Build:
    """What every platform's image of one build shares."""

    started: Started
    lock: lockfile.Lock
    settings: Settings
    epoch: int
    refresh: bool  # re-read the Debian archive
    exclude_outputs: tuple[Path, ...]  # outputs inside the project: never its files
    ctx: Context
    shared: Sharing | None  # the build cache shared through a registry (cache-repo)


def build(
    started: Started,
    *,
    settings: Settings,
    refresh: bool,
    exclude_outputs: Sequence[Path],
    ctx: Context,
    shared: Sharing | None = None,
) -> list[tuple[Recipe, Built]]:
    """One image per platform of ``settings.platforms`` (in that order), each with what the
    memo needs to remake it after an edit of the project alone, and what was made."""
    lock = locks.load(started.lock_path, project_root=started.project.root)
    locks.check_fresh(started.project, lock)
    if lock.format == "poetry":  # uv.lock and pylock.toml record their indexes themselves
        locksources.check(started.project, lock, default_index=started.default_index)
    settings = preflight.settle(
        started.project, lock, settings, report=ctx.report
    )  # the base, before downloads
    b = _Build(started, lock, settings, build_epoch(), refresh, tuple(exclude_outputs), ctx, shared)
    return [_image(Platform.parse(text), b) for text in settings.platforms]


def build_epoch() -> int:
    """``SOURCE_DATE_EPOCH`` if set (an integer), else 0."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise BuildError(
            f"SOURCE_DATE_EPOCH={raw!r} is not an integer",
            doing="reading SOURCE_DATE_EPOCH",
            hint="set it to seconds since 1970, e.g. $(git log -1 --format=%ct)",
        ) from None


def compression(settings: Settings, *, base: bool) -> layers.Compression:
    """The configured compression; by default zstd level 3, or gzip level 1 for the layers a
    build makes (fast, as ko and crane do: they are rebuilt often) and level 6 for an assembled
    Debian base (made once per pin, pulled by every deploy)."""
    if settings.compression_level is not None:
        return layers.Compression(settings.compression, settings.compression_level)
    if settings.compression == "zstd":
        return layers.Compression("zstd", 3)
    return layers.Compression(settings.compression, 6 if base else 1)


def _image(platform: Platform, b: _Build) -> tuple[Recipe, Built]:
    """The image for one platform, how the memo can remake it, and what was made."""
    started_at = time.perf_counter()
    ctx, settings, proj = b.ctx, b.settings, b.started.project
    base = _base(platform, b, settings.debian)
    ctx.report.step(f"base {base.name}: {base.target}")
    plan = _plan(base, platform, b)
    slim = settings.slim_keep if settings.slim else None
    early = _early_stdlib(base, Placement(settings.venv, plan.target, None, slim), b)
    watch = dropped.Watch() if slim is not None and settings.sbom else None  # slim mode's lists, for the SBOM
    place = None
    try:
        targets = _target_builds(base, plan, b)
        wheels = dependencies.Wheels(plan, ctx=ctx, started=b.started, targets=targets)
        found = dependencies.infos(plan, wheels, ctx=ctx, shared=b.shared)
        base = _completed(base, dependencies.needs(found), platform, b)
        config = imageconfig.make(proj, settings=settings, base=base, cache=ctx.cache)
        open_to_user = writable.plan(settings.writable, user=config.user, base=base.image)
        place = Placement(settings.venv, plan.target, _compiler(base, plan, b), slim)
        jobs = dependencies.jobs(plan, found, wheels, place=place)
        if watch is not None:  # the venv's job first, then the dependencies' (slimmed)
            jobs = jobs[:1] + watch.jobs(jobs[1:])
        stdlib = _stdlib_job(base, place, early)
        if stdlib is not None:
            jobs.insert(0, stdlib)
        wheel = _project_wheel(b, targets)
        project = _project_job(place, b, wheel, open_to_user)
        made = _realise([*jobs, project], platform, b, stdlib_first=stdlib is not None)
    finally:  # the compilers' processes and temporary directories go now, not when collected
        if early is not None:
            early.close()
        if place is not None and place.compiler is not None:
            place.compiler.close()
    left_out = watch.dropped(jobs, made.layers, cache=ctx.cache) if watch is not None else None
    made_documents = attach.documents(
        base, plan, found, started=b.started, lock=b.lock, settings=settings, epoch=b.epoch, ctx=ctx,
        dropped=left_out,
    )  # fmt: skip
    partial = assemble.below(base, jobs, made.layers[:-1], config=config, epoch=b.epoch)
    image = assemble.top(partial, project, made.layers[-1], epoch=b.epoch)
    mib = sum(layer.size for layer in image.layers) / (1 << 20)
    ctx.report.done(
        f"image {image.digest} ({platform}): {len(base.image.layers)} base layers, {made.reused} reused "
        f"and {len(made.layers) - made.reused} new of {len(made.layers)}, {mib:.1f} MiB compressed"
        + (f" ({made.shared} from the shared cache)" if b.shared is not None else "")
    )
    status = statuses(base=len(base.image.layers), made=made.made)
    built = Built(image, status, time.perf_counter() - started_at)
    recipe = replace(
        _recipe(image, partial, base, plan, place, b, wheel), documents=made_documents, writable=open_to_user
    )
    return (_with_debug(recipe, base, platform, b) if settings.debug else recipe), built


def _with_debug(recipe: Recipe, base: bases.Base, platform: Platform, b: _Build) -> Recipe:
    """``recipe`` with the debug variant's busybox layer (``debug = true``)."""
    from slimline.build import debug

    layer, until = debug.busybox_layer(
        base, platform, debian=b.settings.debian, compression=compression(b.settings, base=False),
        refresh=b.refresh, ctx=b.ctx,
    )  # fmt: skip
    return replace(recipe, debug_layer=layer, fresh_until=min(recipe.fresh_until, until))


def _realise(jobs: list[Job], platform: Platform, b: _Build, *, stdlib_first: bool) -> layers.Realised:
    """Each job's layer; the standard library's (first, when ``stdlib_first``) compressed as the
    base is and found even with ``SLIMLINE_NO_LAYER_CACHE=1``: like the base's layers, it is made
    once per base and pulled by every image on it."""
    cache, lower = b.ctx.cache, jobs[:1] if stdlib_first else []
    started_at = time.perf_counter()
    below = layers.realise(
        lower,
        cache=cache,
        compression=compression(b.settings, base=True),
        base_like=True,
        report=b.ctx.report,
    )
    if lower:
        how = "found" if below.reused else f"made in {time.perf_counter() - started_at:.3f} s"
        b.ctx.report.detail(f"standard library bytecode layer ({platform}): {how}")
    started_at = time.perf_counter()
    rest = layers.realise(
        jobs[len(lower) :],
        cache=cache,
        compression=compression(b.settings, base=False),
        report=b.ctx.report,
        shared=b.shared.layers if b.shared is not None else None,
    )
    b.ctx.report.detail(
        f"layers ({platform}): {len(rest.layers) - rest.reused} of {len(rest.layers)} made in "
        f"{time.perf_counter() - started_at:.3f} s ({rest.shared} from the shared cache)"
    )  # the build's own layers (bench/sides.py reads this line)
    return layers.Realised(
        below.layers + rest.layers,
        below.reused + rest.reused,
        made=below.made + rest.made,
        shared=rest.shared,
    )


def _base(platform: Platform, b: _Build, debian: DebianSettings) -> bases.Base:
    options = bases.Options(
        requires_python=b.started.project.requires_python,
        debian=debian.for_image(),
        compression=compression(b.settings, base=True),
        refresh=b.refresh,
        shared=b.shared.bases if b.shared is not None else None,
    )
    return bases.resolve(b.settings.base, platform=platform, options=options, ctx=b.ctx)


def _plan(base: bases.Base, platform: Platform, b: _Build) -> Plan:
    s = b.settings
    plan = preflight.selected(b.started.project, b.lock, base.target, s)
    b.ctx.report.step(f"{len(plan.packages)} distributions selected for {platform}")
    return plan


def _completed(
    base: bases.Base, needs: dict[str, dict[str, str | None]], platform: Platform, b: _Build
) -> bases.Base:
    """The base, with the Debian packages added that wheels' native code links and it lacks.

    Only a ``debian:`` base is changed; any other base gets a warning.  A library that neither the
    base has nor a known package ships fails the build: the image would fail at import."""
    lacking = native.missing(base.image, needs, cache=b.ctx.cache)
    if lacking.unprovided and base.assembled:  # the archive's Contents index knows more than our table
        lacking = native.missing(
            base.image, _from_contents(base, needs, lacking, platform, b), cache=b.ctx.cache
        )
    if lacking.unprovided:
        raise _unprovided(base, lacking.unprovided)
    if not lacking.add:
        return base
    text = ", ".join(f"{pkg} (for {', '.join(who)})" for pkg, who in lacking.add.items())
    if not base.assembled:
        b.ctx.report.step(f"warning: the base {base.name} lacks {text}; importing those may fail")
        return base
    b.ctx.report.step(f"adding {text} to the base")
    debian = b.settings.debian
    return _base(platform, b, replace(debian, packages=(*debian.packages, *lacking.add)))


def _from_contents(
    base: bases.Base,
    needs: dict[str, dict[str, str | None]],
    lacking: native.Lacking,
    platform: Platform,
    b: _Build,
) -> dict[str, dict[str, str | None]]:
    """``needs`` with the packages that ship the unprovided sonames, as the suite's Contents index says."""
    from slimline.base.debian import base as debian_base
    from slimline.base.debian.ref import DebianRef

    wanted = {s for sonames in lacking.unprovided.values() for s in sonames}
    found = debian_base.library_packages(
        DebianRef.parse(base.name), platform=platform, settings=b.settings.debian, sonames=wanted, ctx=b.ctx
    )
    return {name: {s: p or found.get(s) for s, p in linked.items()} for name, linked in needs.items()}


def _unprovided(base: bases.Base, unprovided: dict[str, tuple[str, ...]]) -> BuildError:
    lines = "\n".join(f"  - {name}: {', '.join(sonames)}" for name, sonames in unprovided.items())
    return BuildError(
        f"native code of these distributions links libraries that {base.name} does not have:\n{lines}",
        doing="checking that the image has the libraries its wheels link",
        hint="add the Debian package that ships each library to [tool.slimline.debian] packages "
        "(a debian: base), or use a base image that has it",
    )


def _target_builds(base: bases.Base, plan: Plan, b: _Build) -> TargetBuilds | None:
    """Builds for the target in a builder from the base's suite (a debian: base; its packages
    resolved now if a locked release is an sdist only); None elsewhere: what must be compiled is
    built on this host, whose Python and libc then match the base's."""
    if not base.assembled:
        return None
    index = b.started.default_index
    builds = TargetBuilds(
        lambda: builder.assemble(base, b.settings.debian, ctx=b.ctx),
        ctx=b.ctx,
        index_url=index,
        index_auth=sources.credentials_for("", index, given=b.ctx.credentials),
        shared=b.shared.wheels if b.shared is not None else None,
    )
    if any(s.artifact is not None and s.artifact.kind == "sdist" for s in plan.packages):
        builds.prepare()
    return builds


def _compiler(base: bases.Base, plan: Plan, b: _Build) -> Compiler | None:
    """With ``bytecode = true``, what compiles the layers: the base's own interpreter runs on this
    host only for a base slimline assembled from signed Debian packages (any other base's code is
    not run outside a container)."""
    if not b.settings.bytecode:
        return None
    from slimline.trees import bytecode

    compiler = bytecode.compiler_for(base.image, plan.target, cache=b.ctx.cache, run_image=base.assembled)
    b.ctx.report.detail(f"bytecode ({plan.target.platform}): compiled by {compiler.description}")
    return compiler


def _early_stdlib(base: bases.Base, place: Placement, b: _Build) -> stdlib_layer.Early | None:
    """The standard library's layer of a ``debian:`` base, begun now (:mod:`slimline.build.stdlib`):
    fast start by default, one layer right above the base, shared by every app on it.  None for
    other bases, with ``stdlib-bytecode = false``, and with ``bytecode = true`` (its compiler, for
    the final base, compiles the standard library with the rest)."""
    if not base.assembled or not b.settings.stdlib_bytecode or b.settings.bytecode:
        return None
    return stdlib_layer.begin(base, place, compression=compression(b.settings, base=True), ctx=b.ctx)


def _stdlib_job(base: bases.Base, place: Placement, early: stdlib_layer.Early | None) -> Job | None:
    """The job of the standard library's layer for the final ``base``, if there is one."""
    if place.compiler is not None:  # bytecode = true: compiled with every other layer, for any base
        return stdlib_job(base.image, place)
    return early.job_for(base, place) if early is not None else None


def _project_wheel(b: _Build, targets: TargetBuilds | None) -> Path | None:
    """The project's wheel (package mode): the one built on this host, unless it is not pure
    Python (the project has extension modules) or could not be built here, and there is a
    builder: then the one built for the target in the builder."""
    started, proj = b.started.wheel, b.started.project
    if started is None:
        return None
    try:
        wheel = started.result()
    except BuildFailed:
        if targets is None or not compiled.native_sources(proj.root):
            raise
    else:
        if targets is None or compiled.pure(wheel.name):
            return wheel
    key = targets.key(source="tree:" + tree_hash(tree_files(proj.root, cache=b.ctx.cache)))
    return targets.build(proj.root, key=key, what=f"the project {proj.name}", package=proj.name)


def _project_job(
    place: Placement, b: _Build, wheel: Path | None, open_to_user: writable.Writable | None
) -> Job:
    proj = b.started.project
    return project_job(
        proj.root,
        name=proj.name,
        version=proj.version,
        wheel=wheel,
        place=place,
        app=app_files(b.settings, b.exclude_outputs),
        epoch=b.epoch,
        cache=b.ctx.cache,
        writable=open_to_user,
    )


def app_files(settings: Settings, exclude_outputs: Sequence[Path]) -> AppFiles:
    return AppFiles(
        settings.workdir, tuple(settings.include), tuple(settings.exclude), tuple(exclude_outputs)
    )


def _recipe(
    image: Image,
    partial: Image,
    base: bases.Base,
    plan: Plan,
    place: Placement,
    b: _Build,
    wheel: Path | None,
) -> Recipe:
    bytecode = None
    if place.compiler is not None:
        bytecode = Compiled(base=base.image, assembled=base.assembled, identity=place.compiler.identity)
    return Recipe(
        image=image,
        partial=partial,
        wheel=_wheel_ref(wheel) if wheel is not None else None,
        name=b.started.project.name,
        version=b.started.project.version,
        venv=b.settings.venv,
        target=plan.target,
        app=app_files(b.settings, b.exclude_outputs),
        epoch=b.epoch,
        compression=compression(b.settings, base=False),
        fresh_until=base.fresh_until,
        compiled=bytecode,
        # local trees and files can change without the key seeing it; the memo derives the
        # project's wheel from the one this host built, which is not what a target build makes
        memoisable=not any(p.origin.kind in ("directory", "file") for p in plan.packages)
        and (wheel is None or compiled.pure(wheel.name)),
        base_layers=len(base.image.layers),
    )


def _wheel_ref(wheel: Path) -> WheelRef:
    return WheelRef(sha256_file(wheel), wheel.name)
