"""Project + base -> image(s).  Returns images; writes nothing but cache entries.

Layer stack, bottom to top: the base's layers untouched; the venv skeleton; third-party
dependency layers (grouped by :mod:`slimline.grouping`); local path/VCS dependencies; the
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

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from slimline import (
    bases,
    build_backend,
    bytecode,
    dpkg,
    elf,
    fetch,
    grouping,
    install,
    layers,
    lockfile,
    select,
    users,
)
from slimline import project as project_mod
from slimline import start as start_mod
from slimline.cache import Cache, sha256_file
from slimline.debian.ref import BaseSettings as DebianSettings
from slimline.errors import SlimlineError
from slimline.filetree import FileTree
from slimline.http import Http
from slimline.job import AppFiles, Job, project_job
from slimline.memo import Compiled, Recipe, WheelRef
from slimline.oci.image import Config, History, Image, Layer, Platform, rfc3339
from slimline.plan import Plan, Selected
from slimline.report import Reporter
from slimline.settings import Settings

__all__ = ["BuildError", "build", "build_epoch"]

GENERATOR = "slimline"


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
    with what :mod:`slimline.memo` needs to remake it after an edit to the project alone.

    ``started`` is what :func:`slimline.start.start` returned for ``root`` (the CLI calls it
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
    proj, wheel, envs, default_index = started.project, started.wheel, started.envs, started.default_index
    settings, cache, http, report = options.settings, options.cache, options.http, options.report
    refresh_base, insecure, exclude_outputs = options.refresh_base, options.insecure, options.exclude_outputs
    lock = lockfile.load(started.lock_path)
    lockfile.check_fresh(proj, lock)
    epoch = build_epoch()
    compression = _compression(settings, base=False)
    images = []
    for text in settings.platforms:
        platform = Platform.parse(text)

        def resolve_base(debian: DebianSettings, platform: Platform = platform) -> bases.Base:
            return bases.resolve(
                settings.base,
                requires_python=proj.requires_python,
                platform=platform,
                debian=debian,
                cache=cache,
                http=http,
                report=report,
                compression=_compression(settings, base=True),
                refresh=refresh_base,
                insecure=insecure,
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
        jobs, needs = _dependency_jobs(
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
        base = _complete_base(
            base, needs, debian=settings.debian, cache=cache, report=report, again=resolve_base
        )
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
        compiled = None
        if settings.bytecode:
            # the compiler holds a process and a temporary directory until the jobs are dropped
            # the base's own interpreter runs on this host only for a base slimline assembled
            # from signed Debian packages: any other base's code is not run outside a container
            compiler = bytecode.compiler_for(base.image, plan.target, cache=cache, run_image=base.assembled)
            report.detail(f"bytecode ({platform}): compiled by {compiler.description}")
            jobs = [bytecode.compiled(j, compiler=compiler) for j in jobs]
            jobs.insert(0, _stdlib_bytecode_job(base.image, plan, compiler))
            compiled = Compiled(base=base.image, assembled=base.assembled, identity=compiler.identity)
        found = [layers.lookup(j.key, cache=cache, mtime=j.mtime, compression=compression) for j in jobs]
        reused = sum(f is not None for f in found)
        started_at = time.perf_counter()
        new_layers = layers.write_many(
            [
                _layer_maker(j, cache=cache, compression=compression) if f is None else _found(f)
                for j, f in zip(jobs, found, strict=True)
            ]
        )
        report.detail(
            f"layers ({platform}): {len(jobs) - reused} of {len(jobs)} made in "
            f"{time.perf_counter() - started_at:.3f} s"
        )
        history = tuple(History(created_by=j.created_by, created=rfc3339(epoch)) for j in jobs)
        partial = base.image.append(tuple(new_layers[:-1]), history[:-1])
        partial = partial.with_config(_config(proj, plan, settings=settings, base=base, cache=cache))
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
        images.append(
            Recipe(
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
        )
    return images


def _bytecode_suffix(*, bytecode: bool) -> str:
    """What ``bytecode = true`` adds to the keys dependency layers are looked up by before the
    compiler is chosen (:func:`_dependency_jobs`): a suffix no layer is stored under, so such a
    build always fetches its wheels (the real keys carry the compiler's identity, see
    :func:`slimline.bytecode.compiled`)."""
    return "|pyc:compiler-not-chosen" if bytecode else ""


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


# --- dependency layers -------------------------------------------------------------------------


def _dependency_jobs(
    plan: Plan,
    *,
    settings: Settings,
    cache: Cache,
    http: Http,
    envs: build_backend.BuildEnvs,
    root: Path,
    report: Reporter,
    default_index: str,
    compression: layers.Compression,
) -> tuple[list[Job], dict[str, frozenset[str]]]:
    """The venv and dependency layer jobs, and the system sonames each distribution needs."""
    target = plan.target
    prefix = settings.venv
    base_key = f"{prefix}|{target.interpreter}|{target.python_version}|{target.platform}"
    jobs = [
        Job(f"venv|{base_key}", lambda: install.venv_tree(target, prefix=prefix), "slimline: python venv", 0)
    ]
    third = [p for p in plan.packages if not p.is_local]
    local = [p for p in plan.packages if p.is_local]

    infos = _known_infos(third, cache)
    sizes = {name: (info.size if info else None) for name, info in infos.items()}
    wheels: dict[str, Path] = {}
    if (
        local
        or any(info is None for info in infos.values())
        or not all(
            layers.lookup(
                k + _bytecode_suffix(bytecode=settings.bytecode), cache=cache, compression=compression
            )
            for k in _group_keys(third, sizes, base_key)
        )
    ):
        report.step(f"fetching {len(plan.packages)} distributions")
        wheels = fetch.fetch(
            plan,
            cache=cache,
            http=http,
            default_index=default_index,
            build_env=envs,
            project_root=root,
            report=report.detail,
        )
        for p in third:
            if infos.get(p.name) is None:
                infos[p.name] = info = _WheelInfo.of(wheels[p.name])
                sizes[p.name] = info.size
                if p.artifact is not None:
                    cache.write_meta("wheel-info", p.artifact.sha256, info.to_json())
    for p in local:
        infos[p.name] = _WheelInfo.of(wheels[p.name])

    for group_, key in zip(_groups(third, sizes), _group_keys(third, sizes, base_key), strict=True):
        names = ", ".join(f"{p.name} {p.version}" for p in group_)
        jobs.append(
            Job(
                key,
                _installer(group_, wheels, plan=plan, prefix=prefix, cache=cache),
                f"slimline: dependencies {names}",
                0,
            )
        )
    for p in local:
        digest = sha256_file(wheels[p.name])
        jobs.append(
            Job(
                f"local|{base_key}|{p.name}|{digest}|{json.dumps(_direct_url(p), sort_keys=True)}",
                _installer([p], wheels, plan=plan, prefix=prefix, cache=cache),
                f"slimline: local dependency {p.name} {p.version}",
                0,
            )
        )
    needs = {name: frozenset(info.needs) for name, info in infos.items() if info is not None and info.needs}
    return jobs, needs


def _artifact_id(p: Selected) -> str:
    if p.artifact is not None:
        return f"{p.name}=={p.version}#{p.artifact.filename}:{p.artifact.sha256}"
    return f"{p.name}=={p.version}#{p.origin.kind}:{p.origin.url}@{p.origin.resolved}"


@dataclass(frozen=True, slots=True)
class _WheelInfo:
    """What layer grouping and base completion need to know of a wheel, memoised by its hash."""

    size: int
    needs: tuple[str, ...]  # system sonames its native code links (see slimline.elf)

    @classmethod
    def of(cls, wheel: Path) -> _WheelInfo:
        return cls(wheel.stat().st_size, tuple(sorted(elf.wheel_needs(wheel))))

    def to_json(self) -> bytes:
        return json.dumps({"size": self.size, "needs": list(self.needs)}).encode()


def _known_infos(third: Sequence[Selected], cache: Cache) -> dict[str, _WheelInfo | None]:
    out: dict[str, _WheelInfo | None] = {}
    for p in third:
        raw = cache.read_meta("wheel-info", p.artifact.sha256) if p.artifact is not None else None
        if raw:
            d = json.loads(raw)
            out[p.name] = _WheelInfo(int(d["size"]), tuple(d["needs"]))
        else:
            out[p.name] = None
    return out


def _groups(third: Sequence[Selected], sizes: dict[str, int | None]) -> list[list[Selected]]:
    items = [grouping.Item(name=p.name, size=sizes.get(p.name) or 0) for p in third]
    by_name = {p.name: p for p in third}
    return [[by_name[i.name] for i in g] for g in grouping.group(items)]


def _group_keys(third: Sequence[Selected], sizes: dict[str, int | None], base_key: str) -> list[str]:
    return [f"deps|{base_key}|" + ",".join(_artifact_id(p) for p in g) for g in _groups(third, sizes)]


def _installer(
    group_: Sequence[Selected], wheels: dict[str, Path], *, plan: Plan, prefix: str, cache: Cache
) -> Callable[[], FileTree]:
    def make() -> FileTree:
        tree = FileTree()
        for p in group_:
            if p.name not in wheels:
                raise BuildError(f"no wheel was fetched for {p.name}", doing="laying out dependency layers")
            tree = tree.merge(
                install.wheel_tree(
                    wheels[p.name], target=plan.target, prefix=prefix, direct_url=_direct_url(p)
                )
            )
        return tree

    return make


def _direct_url(p: Selected) -> dict[str, object] | None:
    """PEP 610 ``direct_url.json`` for a distribution not from an index, or None.

    Local directories and files get none: their URL would be a path on the build host, which
    means nothing inside the image and would make the image differ per checkout directory."""
    o = p.origin
    if o.kind in ("directory", "file"):
        return None
    if o.kind == "git":
        info: dict[str, object] = {"vcs": "git", "commit_id": o.resolved}
        if o.reference:
            info["requested_revision"] = o.reference
        d: dict[str, object] = {"url": o.url, "vcs_info": info}
        if o.subdirectory:
            d["subdirectory"] = o.subdirectory
        return d
    if o.kind == "url":
        return {"url": o.url, "archive_info": {}}
    return None


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


# --- config ------------------------------------------------------------------------------------

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _config(
    proj: project_mod.Project, plan: Plan, *, settings: Settings, base: bases.Base, cache: Cache
) -> Config:
    cfg = base.image.config
    venv_bin = f"{settings.venv}/bin"
    env = {
        "PATH": f"{venv_bin}:{cfg.env_map().get('PATH', DEFAULT_PATH)}",
        "VIRTUAL_ENV": settings.venv,
        "PYTHONUNBUFFERED": "1",
    }
    if not settings.bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(settings.env)
    cfg = cfg.with_env(**env)
    if settings.entrypoint is not None:
        entrypoint: tuple[str, ...] = tuple(settings.entrypoint)
    else:
        scripts = sorted(proj.scripts) if proj.package_mode else []
        entrypoint = (f"{venv_bin}/{scripts[0]}",) if len(scripts) == 1 else (f"{venv_bin}/python",)
    cmd = tuple(settings.cmd) if settings.cmd is not None else ()
    labels = {**cfg.labels, **_project_labels(proj), **settings.labels}
    ports = set(cfg.exposed_ports) | {str(p) if "/" in str(p) else f"{p}/tcp" for p in settings.ports}
    return replace(
        cfg,
        entrypoint=entrypoint,
        cmd=cmd,
        working_dir=settings.workdir,
        user=settings.user if settings.user is not None else users.default_user(base.image, cache=cache),
        labels=labels,
        exposed_ports=tuple(sorted(ports)),
    )


def _project_labels(proj: project_mod.Project) -> dict[str, str]:
    out = {"org.opencontainers.image.title": proj.name}
    if proj.version:
        out["org.opencontainers.image.version"] = proj.version
    if proj.description:
        out["org.opencontainers.image.description"] = proj.description
    if proj.license:
        out["org.opencontainers.image.licenses"] = proj.license
    if proj.authors:
        out["org.opencontainers.image.authors"] = ", ".join(proj.authors)
    source = proj.urls.get("repository") or proj.urls.get("source")
    if source:
        out["org.opencontainers.image.source"] = source
    url = proj.urls.get("homepage")
    if url:
        out["org.opencontainers.image.url"] = url
    docs = proj.urls.get("documentation")
    if docs:
        out["org.opencontainers.image.documentation"] = docs
    return out
