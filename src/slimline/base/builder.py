"""The builder: a root file system for compiling packages for the image, from Debian packages.

It does the job of a two-stage Dockerfile's builder stage: the image's own ``pythonX.Y`` with its
headers (``pythonX.Y-dev``), ``build-essential``, ``pkg-config`` and the project's
``[tool.slimline.debian] build-packages``, from the same suite as the base, for the target's
architecture.  It is resolved like a ``debian:`` base (signed archive, the same policy, nothing
left out for being dead weight in a runtime image) but never becomes an image: its packages are
unpacked straight into a directory of the cache (:func:`slimline.base.rootfs.from_jobs`), where
builds run it read-only (:mod:`slimline.artifacts.sandbox`).  Which packages it holds is pinned
for a day, like a base (``debian-pins``), as long as its directory is in the cache.

Contract of :func:`assemble`: the returned :class:`Builder`'s ``identity`` changes whenever its
files may (the key of its directory: every package's hash, the policy, the formats), so built
wheels keyed by it are rebuilt when the builder changes; its directory is written only when a
build first needs it (a build whose wheels are all cached needs the identity alone).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from slimline import __version__
from slimline.base import rootfs
from slimline.base.debian.ref import BUILD_FORMAT, DebianRef
from slimline.base.resolve import DAY, Base
from slimline.cache import keys
from slimline.context import Context
from slimline.oci.image import Platform
from slimline.once import Once
from slimline.project.settings import DebianSettings
from slimline.target import Target

__all__ = ["Builder", "assemble", "packages", "providers"]

# build-essential and pkg-config, and the essential tools build scripts call (Debian has them on
# every system as "Essential: yes" packages, so nothing depends on them by name)
TOOLS = (
    "build-essential", "pkg-config", "dash", "bash", "coreutils", "sed", "grep", "findutils",
    "diffutils", "gzip", "tar", "mawk",
)  # fmt: skip


@dataclass(frozen=True)
class Builder:
    identity: str  # the key of its file system in the cache (see the module contract)
    target: Target  # the interpreter it builds for: the image's
    python: str  # the interpreter's path inside ``root`` ("/usr/bin/python3.11")
    packages: tuple[str, ...]  # what it was asked to hold besides the base's
    network: bool  # builds may reach the network
    make_root: Callable[[], Path] = field(repr=False, compare=False)  # writes (or finds) its files
    _root: Once[Path] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_root", Once(self.make_root, name="slimline-builder"))

    @property
    def root(self) -> Path:
        """The file system (shared: never written to), written once, when first asked for or
        begun (:meth:`begin`), by whichever build comes first; the others wait for it.  If writing
        it failed, every build that asks gets that error."""
        return self._root.get()

    def begin(self) -> None:
        """Start writing the file system on a thread, once (made already, it is only found): the
        build that is about to need it prepares the rest meanwhile (its source, its build
        requirements)."""
        self._root.begin()

    @property
    def written(self) -> Path | None:
        """The file system, if a build has had it written (or found) in this process."""
        return self._root.made


def packages(python_xy: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The packages a builder for Python ``python_xy`` is asked for, besides a base's."""
    return (f"python{python_xy}", f"python{python_xy}-dev", *TOOLS, *extra)


def assemble(base: Base, debian: DebianSettings, *, ctx: Context) -> Builder:
    """The builder for ``base`` (a ``debian:`` base), from the same suite, for its architecture."""
    if not base.assembled:
        raise ValueError("a builder is assembled only for a debian: base")
    target = base.target
    wanted = packages(target.python_xy, debian.build_packages)
    settings = replace(
        debian.for_image(), packages=(*debian.packages, *wanted), strip_stdlib=False, runtime=False
    )
    platform = Platform.parse(str(target.platform))
    ctx.report.step(f"builder for {base.name} ({target.platform}): {', '.join(wanted)}")
    cache = ctx.cache
    pin = keys.key("builder-pin", __version__, BUILD_FORMAT, base.name, str(platform), repr(settings))
    found = cache.read_meta(keys.DEBIAN_PINS, pin)
    if found is not None:
        d = json.loads(found)
        root = cache.root / keys.ROOTFS / str(d["root"])
        if time.time() - d["at"] < DAY and root.is_dir():
            ctx.report.detail(f"builder pinned: {d['root']}")
            return _builder(str(d["root"]), target, wanted, debian, lambda: rootfs.from_pinned(root))
    from slimline.base.debian import base as debian_base  # heavy: signatures, indexes

    ctx.report.detail(f"resolving the builder's packages for {base.name} ({platform})")
    jobs, _ = debian_base.files(DebianRef.parse(base.name), platform=platform, settings=settings, ctx=ctx)
    identity = rootfs.jobs_key(jobs)
    cache.write_meta(keys.DEBIAN_PINS, pin, json.dumps({"at": time.time(), "root": identity}).encode())

    def make() -> Path:
        ctx.report.step(f"builder for {base.name} ({target.platform}): writing its files")
        return rootfs.from_jobs(jobs, cache=cache)

    return _builder(identity, target, wanted, debian, make)


def _builder(
    identity: str, target: Target, wanted: tuple[str, ...], debian: DebianSettings, make: Callable[[], Path]
) -> Builder:
    return Builder(identity, target, target.interpreter, wanted, debian.build_network, make)


def providers(root: Path, sonames: Iterable[str]) -> dict[str, str]:
    """The Debian package of the builder that ships each soname it has (a library a wheel built
    there links) in the builder's file system ``root``, from its dpkg records: the soname's link
    resolved to the file a package lists."""
    owners = _owners(root)
    dirs = [*sorted((root / "usr/lib").glob("*-linux-gnu*")), root / "usr/lib"]
    found: dict[str, str] = {}
    for soname in sonames:
        for directory in dirs:
            path = directory / soname
            if not path.exists():
                continue
            real = os.path.relpath(os.path.realpath(path), root)
            if real in owners:
                found[soname] = owners[real]
                break
    return found


_owners_cache: dict[Path, dict[str, str]] = {}


def _owners(root: Path) -> dict[str, str]:
    """Installed file -> package, from ``var/lib/dpkg/status.d/<package>.md5sums`` (read once)."""
    if root not in _owners_cache:
        owners: dict[str, str] = {}
        for record in sorted((root / "var/lib/dpkg/status.d").glob("*.md5sums")):
            package = record.name.removesuffix(".md5sums")
            for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
                path = line.partition("  ")[2].strip()
                if path:
                    owners[path] = package
        _owners_cache[root] = owners
    return _owners_cache[root]
