"""Project + base -> image(s).  Returns images; writes nothing but cache entries.

Layer stack, bottom to top: the base's layers untouched; the venv skeleton; third-party
dependency layers (grouped by :mod:`slimline.plan.grouping`); local path/VCS dependencies; the
project.  Each layer below the project is memoised by the hashes of what goes into it (see
:func:`slimline.layers.cached`), so a build whose dependencies did not change neither
downloads nor compresses anything but the project layer.  When every dependency layer is
already cached the wheels are not even looked at.

Times: every file in every layer has mtime 0 except the project layer, whose files get the
build epoch (``SOURCE_DATE_EPOCH``, else 0); the image's ``created`` is the build epoch too.
Dependency layers therefore stay byte-identical across commits even when CI sets
``SOURCE_DATE_EPOCH`` per commit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from slimline import layers
from slimline.base import dpkg, elf
from slimline.base import resolve as bases
from slimline.base.debian.ref import BaseSettings as DebianSettings
from slimline.build import dependencies, imageconfig
from slimline.build import start as start_mod
from slimline.build.memo import Compiled, Recipe, WheelRef
from slimline.cache.store import Cache, sha256_file
from slimline.errors import SlimlineError
from slimline.http import Http
from slimline.layers.job import AppFiles, Job, project_job
from slimline.oci.image import History, Image, Layer, Platform, rfc3339
from slimline.plan import select
from slimline.plan.model import Plan
from slimline.project import lockfile
from slimline.project import pyproject as project_mod
from slimline.project.settings import Settings
from slimline.report import Reporter
from slimline.trees import bytecode

__all__ = ["BuildError", "build", "build_epoch"]


class BuildError(SlimlineError):
    pass


def _compression(settings: Settings, *, base: bool) -> layers.Compression:
    """The configured compression; by default zstd level 3, or gzip level 1 for the layers a
    build makes (fast, as ko and crane do: they are rebuilt often) and level 6 for an assembled
    Debian base (made once per pin, pulled by every deploy)."""
    if settings.compression_level is not None:
        return layers.Compression(settings.compression, settings.compression_level)
    if settings.compression == "zstd":
        return layers.Compression("zstd", 3)
    return layers.Compression(settings.compression, 6 if base else 1)


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


def build(
    root: Path,
    *,
    settings: Settings,
    cache: Cache,
    http: Http,
    report: Reporter,
    refresh_base: bool = False,
    insecure: Sequence[str] = (),
    exclude_outputs: Sequence[Path] = (),
    started: start_mod.Started | None = None,
) -> list[Recipe]:
    """Build one image per configured platform (same order as ``settings.platforms``), each
    with what :mod:`slimline.build.memo` needs to remake it after an edit to the project alone.

    ``started`` is what :func:`slimline.build.start.start` returned for ``root`` (the CLI calls it
    before importing this module, so the project's wheel builds while slimline loads); without
    it the build starts itself.
    """
    options = _Options(settings, cache, http, report, refresh_base, tuple(insecure), tuple(exclude_outputs))
    if started is None:
        with start_mod.start(root, index_setting=settings.index_url, cache=cache, http=http) as own:
            return _images(own, options)
    return _images(started, options)


@dataclass(frozen=True, slots=True)
class _Options:
    settings: Settings
    cache: Cache
    http: Http
    report: Reporter
    refresh_base: bool
    insecure: tuple[str, ...]
    exclude_outputs: tuple[Path, ...]


def _images(started: start_mod.Started, options: _Options) -> list[Recipe]:
    lock = lockfile.load(started.lock_path)
    lockfile.check_fresh(started.project, lock)
    epoch = build_epoch()
    return [
        _image(Platform.parse(text), started, lock, epoch=epoch, options=options)
        for text in options.settings.platforms
    ]


def _image(
    platform: Platform, started: start_mod.Started, lock: lockfile.Lock, *, epoch: int, options: _Options
) -> Recipe:
    """The image for one platform, and how the memo can remake it."""
    proj, wheel, envs, default_index = started.project, started.wheel, started.envs, started.default_index
    settings, cache, http, report = options.settings, options.cache, options.http, options.report
    exclude_outputs = options.exclude_outputs
    compression = _compression(settings, base=False)

    def resolve_base(debian: DebianSettings) -> bases.Base:
        return bases.resolve(
            settings.base,
            requires_python=proj.requires_python,
            platform=platform,
            debian=debian,
            cache=cache,
            http=http,
            report=report,
            compression=_compression(settings, base=True),
            refresh=options.refresh_base,
            insecure=options.insecure,
        )

    base = resolve_base(settings.debian)
    report.step(f"base {base.name}: {base.target}")
    plan = select.select(
        proj,
        lock,
        base.target,
        with_groups=settings.with_groups,
        without_groups=settings.without_groups,
        only_groups=settings.only_groups,
        extras=settings.extras,
        all_extras=settings.all_extras,
    )
    report.step(f"{len(plan.packages)} distributions selected for {platform}")
    jobs, needs = dependencies.jobs(
        plan,
        settings=settings,
        cache=cache,
        http=http,
        envs=envs,
        root=proj.root,
        report=report,
        default_index=default_index,
        compression=compression,
    )
    base = _complete_base(base, needs, debian=settings.debian, cache=cache, report=report, again=resolve_base)
    jobs.append(
        _project_job(
            proj,
            wheel,
            settings=settings,
            epoch=epoch,
            plan=plan,
            exclude_outputs=exclude_outputs,
            cache=cache,
        )
    )
    compiled = compiler = None
    if settings.bytecode:
        # the base's own interpreter runs on this host only for a base slimline assembled
        # from signed Debian packages: any other base's code is not run outside a container
        compiler = bytecode.compiler_for(base.image, plan.target, cache=cache, run_image=base.assembled)
        report.detail(f"bytecode ({platform}): compiled by {compiler.description}")
        jobs = [bytecode.compiled(j, compiler=compiler) for j in jobs]
        jobs.insert(0, _stdlib_bytecode_job(base.image, plan, compiler))
        compiled = Compiled(base=base.image, assembled=base.assembled, identity=compiler.identity)
    try:
        new_layers, reused = _layers(
            jobs, cache=cache, compression=compression, report=report, platform=platform
        )
    finally:
        if compiler is not None:  # its process and temporary directory go now, not when collected
            compiler.close()
    history = tuple(History(created_by=j.created_by, created=rfc3339(epoch)) for j in jobs)
    partial = base.image.append(tuple(new_layers[:-1]), history[:-1])
    partial = partial.with_config(imageconfig.make(proj, settings=settings, base=base, cache=cache))
    partial = partial.with_created(rfc3339(epoch)).with_annotations(
        **{
            "org.opencontainers.image.created": rfc3339(epoch),
            "org.opencontainers.image.base.name": base.name,
            "org.opencontainers.image.base.digest": base.digest,
        }
    )
    image = partial.append(tuple(new_layers[-1:]), history[-1:])  # the project's layer is the last
    size = sum(layer.size for layer in image.layers)
    report.done(
        f"image {image.digest} ({platform}): {len(base.image.layers)} base layers, {reused} reused "
        f"and {len(jobs) - reused} new of {len(jobs)}, {size / (1 << 20):.1f} MiB compressed"
    )
    return Recipe(
        image=image,
        partial=partial,
        wheel=_wheel_ref(wheel.result()) if wheel is not None else None,
        name=proj.name,
        version=proj.version,
        venv=settings.venv,
        target=plan.target,
        app=_app_files(settings, exclude_outputs),
        epoch=epoch,
        compression=compression,
        fresh_until=base.fresh_until,
        compiled=compiled,
        # local trees and files can change without the key seeing it
        memoisable=not any(p.origin.kind in ("directory", "file") for p in plan.packages),
    )


def _layers(
    jobs: Sequence[Job],
    *,
    cache: Cache,
    compression: layers.Compression,
    report: Reporter,
    platform: Platform,
) -> tuple[list[Layer], int]:
    """Each job's layer, from the layer cache or made (in parallel), and how many were cached."""
    found = [layers.lookup(j.key, cache=cache, mtime=j.mtime, compression=compression) for j in jobs]
    reused = sum(f is not None for f in found)
    started_at = time.perf_counter()
    made = layers.write_many(
        [
            _layer_maker(j, cache=cache, compression=compression) if f is None else _found(f)
            for j, f in zip(jobs, found, strict=True)
        ]
    )
    report.detail(
        f"layers ({platform}): {len(jobs) - reused} of {len(jobs)} made in "
        f"{time.perf_counter() - started_at:.3f} s"
    )
    return made, reused


def _stdlib_bytecode_job(base: Image, plan: Plan, compiler: bytecode.Compiler) -> Job:
    return Job(
        # the compiler decides the bytes: the base's digest and tag, or this interpreter's sys.version
        f"stdlib-pyc|{bytecode.STDLIB_FORMAT}|{base.digest}|{compiler.identity}",
        lambda: bytecode.stdlib_tree(base, target=plan.target, compiler=compiler),
        "slimline: bytecode for the base's standard library",
        0,
    )


def _found(layer: Layer) -> Callable[[], Layer]:
    return lambda: layer


def _layer_maker(job: Job, *, cache: Cache, compression: layers.Compression) -> Callable[[], Layer]:
    return lambda: layers.store(job.key, job.make, cache=cache, mtime=job.mtime, compression=compression)


def _complete_base(
    base: bases.Base,
    needs: dict[str, frozenset[str]],
    *,
    debian: DebianSettings,
    cache: Cache,
    report: Reporter,
    again: Callable[[DebianSettings], bases.Base],
) -> bases.Base:
    """The base, with the Debian packages added that wheels' native code links and it lacks.

    Only a ``debian:`` base is changed; any other base with dpkg records gets a warning, and a
    base without them (Alpine, scratch) is taken as it is.
    """
    wanted: dict[str, list[str]] = {}
    for name, sonames in sorted(needs.items()):
        for pkg in elf.debian_packages(sonames):
            wanted.setdefault(pkg, []).append(name)
    if not wanted:
        return base
    have = dpkg.installed(base.image, cache=cache)
    missing = {pkg: who for pkg, who in wanted.items() if pkg not in have}
    if not have or not missing:
        return base
    text = ", ".join(f"{pkg} (for {', '.join(who)})" for pkg, who in sorted(missing.items()))
    if not base.assembled:
        report.step(f"warning: the base {base.name} lacks {text}; importing those may fail")
        return base
    report.step(f"adding {text} to the base")
    return again(replace(debian, packages=(*debian.packages, *sorted(missing))))


# --- the project layer -------------------------------------------------------------------------


def _project_job(
    proj: project_mod.Project,
    built: Future[Path] | None,
    *,
    settings: Settings,
    epoch: int,
    plan: Plan,
    exclude_outputs: Sequence[Path],
    cache: Cache,
) -> Job:
    return project_job(
        proj.root,
        name=proj.name,
        version=proj.version,
        wheel=built.result() if built is not None else None,
        venv=settings.venv,
        target=plan.target,
        app=_app_files(settings, exclude_outputs),
        epoch=epoch,
        cache=cache,
    )


def _wheel_ref(wheel: Path) -> WheelRef:
    return WheelRef(sha256_file(wheel), wheel.name)


def _app_files(settings: Settings, exclude_outputs: Sequence[Path]) -> AppFiles:
    return AppFiles(
        settings.workdir, tuple(settings.include), tuple(settings.exclude), tuple(exclude_outputs)
    )
