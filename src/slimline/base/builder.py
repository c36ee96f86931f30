"""The builder: a root file system for compiling packages for the image, from Debian packages.

It does the job of a two-stage Dockerfile's builder stage: the image's own ``pythonX.Y`` with its
headers (``pythonX.Y-dev``), ``build-essential``, ``pkg-config`` and the project's
``[tool.slimline.debian] build-packages``, from the same suite as the base, for the target's
architecture.  It is assembled like a ``debian:`` base (signed archive, pinned for a day, layers
cached by the ``.deb`` hashes), with nothing left out for being dead weight in a runtime image,
and unpacked once into the cache (:func:`slimline.base.rootfs.cached`), where builds run it
read-only (:mod:`slimline.artifacts.sandbox`).

Contract of :func:`assemble`: the returned :class:`Builder`'s ``identity`` changes whenever its
files may (its image digest), so built wheels keyed by it are rebuilt when the builder changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from packaging.specifiers import SpecifierSet

from slimline.base import rootfs
from slimline.base.resolve import Base, Options, resolve
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.layers.compress import Compression
from slimline.oci.image import Image, Platform
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
    image: Image  # the builder as an image (pinned like a base)
    cache: Cache  # where it is unpacked
    identity: str  # the builder image's digest
    target: Target  # the interpreter it builds for: the image's
    python: str  # the interpreter's path inside ``root`` ("/usr/bin/python3.11")
    packages: tuple[str, ...]  # what it was asked to hold besides the base's
    network: bool  # builds may reach the network

    @cached_property
    def root(self) -> Path:
        """The unpacked file system (shared: never written to), unpacked when first asked for:
        a build whose wheels are all cached needs the builder's identity only."""
        return rootfs.cached(self.image, cache=self.cache)


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
    # zstd level 1: the builder's layers are written once and read once, never pulled
    options = Options(requires_python=_any(), debian=settings, compression=Compression("zstd", 1))
    ctx.report.step(f"builder for {base.name} ({target.platform}): {', '.join(wanted)}")
    image = resolve(base.name, platform=Platform.parse(str(target.platform)), options=options, ctx=ctx).image
    return Builder(image, ctx.cache, image.digest, target, target.interpreter, wanted, debian.build_network)


def _any() -> SpecifierSet:
    return SpecifierSet()


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
