"""A distroless-style Python base image assembled from signed Debian packages, in pure Python.

``build(DebianRef.parse("debian:bookworm"), ...)`` does, in order:

1. find the mirrors (:mod:`.mirror`); fetch and verify ``InRelease`` of the suite, its
   ``-updates`` and ``-security`` suites (:mod:`.release`);
2. resolve the closure of the roots (``pythonX.Y-minimal``, ``libpythonX.Y-stdlib``, the parts
   of the standard library Debian ships apart (:func:`.policy.stdlib_packages`),
   ``ca-certificates``, ``tzdata``, ``netbase`` and the extra packages) over the hash-checked
   Packages indexes, leaving out :data:`.resolve.DEFAULT_EXCLUDES` plus the configured excludes
   (:mod:`.archive`, :mod:`.resolve`); what was left out is reported;
3. lay the packages into a few layers (:func:`.policy.groups`: files, libc, python, extras),
   each cached by the ``.deb`` hashes and settings (:func:`slimline.layers.realise`), so a warm
   build downloads, unpacks and compresses nothing; a cold one downloads the hash-checked
   ``.deb`` files in parallel and unpacks ``data.tar`` without running maintainer scripts
   (:mod:`.deb`, :mod:`.assemble`, :mod:`.policy`).

The same archive state and settings give byte-identical layers and the same image digest
(nothing in the image depends on the build time or host except ``mtime``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from slimline import layers
from slimline.base.debian import alternatives, assemble, contents, deb, mirror, policy
from slimline.base.debian import archive as archive_mod
from slimline.base.debian.archive import BaseResolution, upstream_version
from slimline.base.debian.errors import ResolveError
from slimline.base.debian.noted import Noted
from slimline.base.debian.ref import (
    BUILD_FORMAT,
    KNOWN_SUITES,
    BaseSettings,
    DebianRef,
    debian_arch,
    suite_for,
)
from slimline.base.debian.release import Keyring
from slimline.base.debian.resolve import BUILDER_EXCLUDES, DEFAULT_EXCLUDES, closure
from slimline.context import Context
from slimline.errors import redact
from slimline.layers.filetree import FileTree, TreeBuilder
from slimline.layers.job import Job
from slimline.oci.image import Config, History, Image, Platform, rfc3339
from slimline.report import progress
from slimline.target import Target

__all__ = [
    "KNOWN_SUITES", "BaseSettings", "DebianRef", "build", "debian_arch", "files", "library_packages",
    "resolve", "suite_for",
]  # fmt: skip


def _excludes(settings: BaseSettings) -> dict[str, str]:
    """What the resolution leaves out (unless named as a package): for an image, what runtime
    images never need; for the builder, what no package build uses; and what the settings exclude."""
    defaults = DEFAULT_EXCLUDES if settings.runtime else BUILDER_EXCLUDES
    out = {k: v for k, v in defaults.items() if k not in settings.packages}
    out.update(dict.fromkeys(settings.exclude, "excluded by [tool.slimline.debian] exclude"))
    return out


def resolve(
    ref: DebianRef,
    *,
    platform: Platform,
    settings: BaseSettings,
    ctx: Context,
) -> BaseResolution:
    """Verify the archive and resolve the package set of the base (no .deb is downloaded);
    progress goes to ``ctx.report`` as details."""
    arch = debian_arch(platform)
    arc = _archive(ref, arch, settings, ctx=ctx)
    base = archive_mod.resolve_base(
        arc,
        ctx=ctx,
        arch=arch,
        suite=ref.suite,
        python=ref.python,
        extras=settings.packages,
        excludes=_excludes(settings),
    )
    res = base.resolution
    report = ctx.report.detail
    report(
        f"{len(res.packages)} packages, "
        f"{sum(p.installed_size for p in res.packages) / 1024:.1f} MB installed (before trimming)"
    )
    for out in res.left_out:
        report(f"left out {out.name} (needed by {', '.join(out.needed_by)}): {out.reason}")
    for note in res.notes:
        report(note)
    return base


def _archive(ref: DebianRef, arch: str, settings: BaseSettings, *, ctx: Context) -> archive_mod.Archive:
    """The suite's verified Releases (and those of its -updates and -security suites)."""
    report = ctx.report.detail
    mirrors = mirror.find(mirror=settings.mirror, security_mirror=settings.security_mirror)
    report(f"Debian archive {redact(mirrors.archive)} (from {mirrors.archive_from})")
    if mirrors.security:
        report(f"Debian security archive {redact(mirrors.security)} (from {mirrors.security_from})")
    elif settings.security_mirror != "":
        report(
            "no Debian security archive configured: building WITHOUT security updates "
            "(set [tool.slimline.debian] security-mirror)"
        )
    keyring = Keyring(settings.keyring)
    arc = archive_mod.fetch_archive(
        ctx.http,
        mirrors,
        ref.suite,
        arch=arch,
        keyring=keyring,
        check_valid_until=settings.check_valid_until,
        report=report,
    )
    report(
        "verified "
        + ", ".join(f"{s.name} ({s.release.date})" for s in arc.suites)
        + f" against {len(keyring.fingerprints)} keys"
    )
    return arc


def library_packages(
    ref: DebianRef, *, platform: Platform, settings: BaseSettings, sonames: Iterable[str], ctx: Context
) -> dict[str, str]:
    """soname -> the package of the suite that ships it, for those the archive's Contents index
    knows (:mod:`.contents`)."""
    arch = debian_arch(platform)
    arc = _archive(ref, arch, settings, ctx=ctx)
    return contents.library_packages(arc.suites[0].release, arch, sonames, ctx=ctx)


def _target(base: BaseResolution, platform: Platform) -> Target:
    py = upstream_version(base.package(f"python{base.python_xy}-minimal").version)
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", py)
    libc = (
        re.match(r"(\d+)\.(\d+)", upstream_version(base.package("libc6").version))
        if any(p.name == "libc6" for p in base.resolution.packages)
        else None
    )
    if not m or libc is None:
        raise ResolveError(
            f"python{base.python_xy}-minimal / libc6", "cannot tell the Python or glibc version"
        )
    return Target(
        platform=platform,
        python_version=(int(m[1]), int(m[2]), int(m[3])),
        interpreter=f"/usr/bin/python{base.python_xy}",
        libc="glibc",
        libc_version=(int(libc[1]), int(libc[2])),
    )


def _assign(base: BaseResolution, extras: tuple[str, ...]) -> list[tuple[policy.Group, list[str]]]:
    taken: set[str] = set()
    out: list[tuple[policy.Group, list[str]]] = []
    held = {p.name for p in base.resolution.packages}
    stdlib = [pkg for pkg, _ in policy.stdlib_packages(base.python_xy) if pkg in held]
    for group in policy.groups(base.python_xy, extras, stdlib):
        names = sorted(closure(base.resolution, group.roots) - taken)
        taken.update(names)
        if names or not out:  # the first group always exists: it holds the static files
            out.append((group, names))
    rest = sorted({p.name for p in base.resolution.packages} - taken)
    if rest:  # reachable only from a root not in any group (cannot happen with the fixed roots)
        out[-1][1].extend(rest)
    return out


def _make_tree(
    base: BaseResolution,
    group: policy.Group,
    names: list[str],
    *,
    first: bool,
    settings: BaseSettings,
    ctx: Context,
    debs: dict[str, Path] | None = None,
) -> FileTree:
    """One layer's tree: ``names`` (their ``.deb`` files: ``debs``, else downloaded now)
    unpacked in order, with the first layer's static files and the group's extra files."""
    report = ctx.report.detail
    if debs is None:
        debs = archive_mod.fetch_debs(base, names, ctx=ctx)
    builder = TreeBuilder(archive=f"layer {group.name}")
    if first:
        main = base.main
        assemble.static_files(
            builder,
            version=main.version,
            codename=main.codename or main.suite,
            merged=policy.loader_dirs(base.arch),
        )
        if not settings.runtime:
            assemble.builder_files(builder)

    def keep(path: str) -> bool:
        return policy.keep(path, strip_stdlib=settings.strip_stdlib, keep_gconv=settings.keep_gconv)

    found: list[alternatives.Alternative] = []
    for name, members in deb.prefetch([(n, debs[n]) for n in names]):
        unpacked = deb.install(members, builder, package=name, keep=keep, rewrite=policy.usrmerge)
        if unpacked.skipped:
            report(f"{name}: skipped special files {', '.join(unpacked.skipped)}")
        control = deb.read_control(debs[name], package=name)
        assemble.status_entry(builder, name, control, unpacked.paths, hashes=settings.runtime)
        found += alternatives.parse(control.postinst, package=name)
    made = assemble.alternative_links(builder, found, rewrite=policy.usrmerge)
    if made:
        report(f"alternatives linked: {', '.join('/' + p for p in made)}")
    if "ca-certificates" in names:
        count = assemble.ca_bundle(builder)
        report(f"CA bundle: {count} certificates")
    if group.name == "python" and f"python{base.python_xy}-minimal" in names:
        assemble.python_links(builder, base.python_xy)
    return builder.freeze()


def build(
    ref: DebianRef,
    *,
    platform: Platform,
    settings: BaseSettings,
    ctx: Context,
    mtime: int = 0,
    compression: layers.Compression | None = None,
) -> tuple[Image, Target, dict[str, list[list[str]]]]:
    """The base image for ``platform``, its :class:`Target` (see the module contract) and
    :func:`record` of what it holds."""
    platform = platform.normalised()
    jobs, groups, base, target = _jobs(ref, platform=platform, settings=settings, ctx=ctx, mtime=mtime)
    noted = Noted()  # its libraries, packages and files for later steps, if every layer is made now
    compression = compression or layers.Compression()
    built = layers.realise(noted.wrap(jobs), cache=ctx.cache, compression=compression).layers
    created = rfc3339(mtime)
    history = tuple(
        History(created_by=j.created_by, created=created, comment=g.description)
        for j, g in zip(jobs, groups, strict=True)
    )
    config = _config(ref, base, target)
    image = Image(platform=platform, config=config, created=created).append(tuple(built), history)
    noted.finish(image, cache=ctx.cache)
    ctx.report.detail(
        f"base {ref} ({platform}): {image.digest}, {len(built)} layers, "
        f"{sum(lay.size for lay in built) / 1e6:.1f} MB compressed"
    )
    return image, target, record(base)


def files(
    ref: DebianRef, *, platform: Platform, settings: BaseSettings, ctx: Context
) -> tuple[list[Job], Target]:
    """Jobs that make the trees of the base ``build`` would make, unmade, and its target: for a
    file system that is never an image (the builder, written in order by
    :func:`slimline.base.rootfs.from_jobs`).  A group's packages are split into jobs of about
    :data:`CHUNK_BYTES` of ``.deb`` files each, so the first are written to disk while the
    later are still being decompressed; every ``.deb`` is downloaded from the first job's start
    on, in the jobs' order."""
    platform = platform.normalised()
    base = resolve(ref, platform=platform, settings=settings, ctx=ctx)
    downloads = _Downloads(base, ctx=ctx)
    jobs: list[Job] = []
    for group, names in _assign(base, settings.packages):
        for part in _chunks(base, names) if names else [names]:
            first = not jobs

            def make(group: policy.Group = group, part: list[str] = part, first: bool = first) -> FileTree:
                debs = downloads.get(part)
                ctx.report.detail(f"unpacking {group.name}: {len(part)} packages")
                return _make_tree(base, group, part, first=first, settings=settings, ctx=ctx, debs=debs)

            key = _layer_key(base, group, part, first=first, settings=settings)
            jobs.append(Job(key, make, f"slimline {ref}: {group.name} ({len(part)} packages)", 0))
    return jobs, _target(base, platform)


# bump when a builder's trees hold other files than a base's would (2: no sha256sums, which
# only ``verify`` reads, in images)
BUILDER_TREES = 2
CHUNK_BYTES = 12 << 20  # .deb bytes per builder job (:func:`files`)


def _chunks(base: BaseResolution, names: list[str]) -> list[list[str]]:
    """``names`` in order, cut where the ``.deb`` files so far reach :data:`CHUNK_BYTES`."""
    out: list[list[str]] = [[]]
    size = 0
    for name in names:
        if out[-1] and size >= CHUNK_BYTES:
            out.append([])
            size = 0
        out[-1].append(name)
        size += base.package(name).size
    return out


class _Downloads:
    """Every ``.deb`` of ``base`` downloaded (hash-checked, :func:`.archive.fetch_debs`, a few at
    a time) from the first :meth:`get` on; :meth:`get` returns once they all are, or raises
    what the download raised."""

    def __init__(self, base: BaseResolution, *, ctx: Context) -> None:
        self._base, self._ctx = base, ctx
        self._lock = threading.Lock()
        self._started: dict[str, Future[dict[str, Path]]] = {}

    def get(self, names: list[str]) -> dict[str, Path]:
        with self._lock:
            if not self._started:
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slimline-debs")
                everything = [p.name for p in self._base.resolution.packages]
                whole = pool.submit(archive_mod.fetch_debs, self._base, everything, ctx=self._ctx)
                pool.shutdown(wait=False)
                self._started = dict.fromkeys(everything, whole)
        found: dict[str, Path] = {}
        for name in names:
            found[name] = self._started[name].result()[name]
        return found


def _jobs(
    ref: DebianRef, *, platform: Platform, settings: BaseSettings, ctx: Context, mtime: int
) -> tuple[list[Job], list[policy.Group], BaseResolution, Target]:
    base = resolve(ref, platform=platform, settings=settings, ctx=ctx)
    target = _target(base, platform)
    assigned = _assign(base, settings.packages)

    def job(i: int, group: policy.Group, names: list[str]) -> Job:
        def make() -> FileTree:
            ctx.report.detail(f"assembling layer {group.name} ({len(names)} packages)")
            with progress(ctx.report, f"unpacking {group.name} ({len(names)} Debian packages)"):
                return _make_tree(base, group, names, first=i == 0, settings=settings, ctx=ctx)

        key = _layer_key(base, group, names, first=i == 0, settings=settings)
        return Job(key, make, f"slimline {ref}: {group.name} ({len(names)} packages)", mtime)

    jobs = [job(i, g, n) for i, (g, n) in enumerate(assigned)]
    return jobs, [g for g, _ in assigned], base, target


def record(base: BaseResolution) -> dict[str, list[list[str]]]:
    """What an SBOM and provenance say of the base, kept with its pin (no archive access later):
    ``packages``: [name, version, architecture, source package, verified .deb sha256, suite];
    ``releases``: [InRelease URL (credentials removed), sha256 of its verified text]."""
    suites = base.archive.suites
    return {
        "packages": [
            [p.name, p.version, p.architecture, p.source_name, p.sha256, suites[p.origin].name]
            for p in base.resolution.packages
        ],
        "releases": [
            [redact(f"{s.release.base}/InRelease"), s.inrelease_sha256] for s in suites if s.inrelease_sha256
        ],
    }


def _layer_key(
    base: BaseResolution, group: policy.Group, names: list[str], *, first: bool, settings: BaseSettings
) -> str:
    """The layer cache key of one group's layer: every input of :func:`_make_tree` (the formats,
    the group, its packages' versions and hashes, the settings that change which files it holds)."""
    main = base.main
    key = json.dumps(
        {
            "format": BUILD_FORMAT,
            "policy": policy.POLICY_VERSION,
            "arch": base.arch,
            "group": group.name,
            "first": first,
            "python": base.python_xy,
            "strip_stdlib": settings.strip_stdlib,
            "keep_gconv": settings.keep_gconv,
            "os": [main.version, main.codename or main.suite] if first else None,
            **({} if settings.runtime else {"builder": BUILDER_TREES}),
            "debs": [(n, base.package(n).version, base.package(n).sha256) for n in names],
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _config(ref: DebianRef, base: BaseResolution, target: Target) -> Config:
    """The image configuration: a distroless-style runtime whose entry point is the interpreter."""
    main = base.main
    codename = main.codename or ref.suite
    labels = {
        **target.labels(),
        "org.opencontainers.image.title": f"Python {target.python_xy} base (Debian {codename})",
        "org.opencontainers.image.description": "distroless-style Python runtime assembled by slimline from "
        "signed Debian packages",
        "org.opencontainers.image.version": ".".join(str(p) for p in target.python_version),
        "dev.slimline.debian.suite": main.codename or ref.suite,
    }
    return Config(
        env=(
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            f"SSL_CERT_FILE=/{assemble.CA_BUNDLE}",
        ),
        entrypoint=(target.interpreter,),
        working_dir="/",
        user=str(assemble.NONROOT),
        labels=labels,
    )
