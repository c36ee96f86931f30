"""Base images: from a reference to an OCI image plus the :class:`~slimline.target.Target` it runs.

Every kind of base comes in through the same image model: ``debian:SUITE[/pythonX.Y]``
(assembled from signed .debs by :mod:`slimline.base.debian`), ``oci:PATH[:TAG]``,
``docker-archive:PATH`` and registry names.  When no base is configured, the Debian suite
whose Python satisfies the project's ``requires-python`` is chosen.

Debian bases are pinned: the first build records the assembled image (its manifest and
config, whose blobs stay in the cache) under a key of reference, platform and settings; later
builds reuse it without contacting the archive until the pin is older than ``max_age``
seconds or ``refresh`` is asked for.  That is what keeps a code-change rebuild local; the
archive state a pin came from is in the image's labels.  With a shared cache
(``Options.shared``: :class:`SharedPins`), a pin missing here is looked up there before the
archive is read, and a base assembled here is given to it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from packaging.specifiers import SpecifierSet

from slimline import __version__, layers
from slimline.base.debian import ref as debian_ref
from slimline.base.debian.ref import BaseSettings as DebianSettings
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.oci import image as oci
from slimline.oci import reference, transports
from slimline.oci.image import Image, Platform
from slimline.oci.parse import image_from_json
from slimline.target import Target

__all__ = ["Base", "DebPackage", "Foreseen", "Options", "SharedPins", "foresee", "resolve"]

DAY = 24 * 3600
_OCI_MEDIA = {
    oci.DOCKER_LAYER_GZIP: oci.LAYER_GZIP,
    oci.DOCKER_LAYER_TAR: oci.LAYER_TAR,
}


@dataclass(frozen=True, slots=True)
class DebPackage:
    """A Debian package of an assembled base, as the signed archive named it."""

    name: str
    version: str
    arch: str  # Debian's name ("amd64", "all")
    source: str  # the source package's name
    sha256: str  # of the .deb, verified when it was downloaded
    suite: str  # "bookworm", "bookworm-security", ...


@dataclass(frozen=True, slots=True)
class Base:
    name: str  # the reference as the user wrote it (or the chosen default)
    image: Image
    target: Target
    digest: str = ""  # the base's manifest digest as its source names it (a registry's), else image.digest
    # Until when (time.time()) the same reference resolves to this same image without being
    # looked at again: a Debian pin's expiry, forever for a registry name with a digest, and
    # 0 for what may change at any time (tags, layouts and archives on disk).
    fresh_until: float = 0.0
    # debian: bases: every package it holds, and [InRelease URL, sha256] of each suite read
    packages: tuple[DebPackage, ...] = ()
    releases: tuple[tuple[str, str], ...] = ()

    @property
    def assembled(self) -> bool:
        """Assembled by slimline from signed Debian packages (a ``debian:`` reference)."""
        return self.name.startswith("debian:")


class SharedPins(Protocol):
    """Debian pins shared beyond this machine (see ``slimline.build.sharing``).

    :meth:`find` returns the pin recorded under ``key`` (``{"at", "manifest", "config"}``, as
    this module records pins) with every layer's blob verified in the local cache, or None;
    :meth:`keep` records a pin and its image's layers (nothing when read-only)."""

    def find(self, key: str) -> Mapping[str, Any] | None: ...
    def keep(self, key: str, record: Mapping[str, Any], image: Image) -> None: ...


@dataclass(frozen=True, slots=True)
class Options:
    """How to resolve a base, besides its reference and platform."""

    requires_python: SpecifierSet  # picks the Debian suite when no base is named
    debian: DebianSettings = field(default_factory=DebianSettings)  # what a debian: base holds
    compression: layers.Compression = field(default_factory=layers.Compression)  # of an assembled base
    refresh: bool = False  # re-read the Debian archive even when a pin is fresh
    max_age: int = DAY  # how long a Debian pin serves
    shared: SharedPins | None = field(default=None, compare=False)  # pins shared through a registry


def resolve(text: str | None, *, platform: Platform, options: Options, ctx: Context) -> Base:
    """The base ``text`` names (None: the Debian suite whose Python satisfies ``requires_python``)."""
    if text is None:
        ref = debian_ref.suite_for(options.requires_python)
        text = f"debian:{ref.suite}" + (f"/python{ref.python}" if ref.python else "")
        ctx.report.detail(f"no base configured: {text} satisfies requires-python {options.requires_python}")
    parsed = reference.parse(text, role="base")
    if isinstance(parsed, reference.DebianBaseRef):
        image, target, pinned_at, held = _debian(text, platform=platform, options=options, ctx=ctx)
        return Base(
            text,
            image,
            target,
            digest=image.digest,
            fresh_until=pinned_at + options.max_age,
            packages=tuple(DebPackage(*(str(f) for f in p)) for p in held["packages"]),
            releases=tuple((str(u), str(h)) for u, h in held["releases"]),
        )
    ctx.report.step(f"reading base {text} ({platform})")
    image = transports.read(parsed, platform=platform, ctx=ctx)
    pinned = isinstance(parsed, reference.RegistryRef) and parsed.digest is not None
    return Base(
        text,
        to_oci(image),
        _detect(image, cache=ctx.cache),
        digest=image.origin or image.digest,
        fresh_until=float("inf") if pinned else 0.0,
    )


def to_oci(image: Image) -> Image:
    """The same image with OCI media types (Docker schema 2 layers are byte-compatible)."""
    new_layers = tuple(
        replace(lay, media_type=_OCI_MEDIA.get(lay.media_type, lay.media_type)) for lay in image.layers
    )
    return replace(image, layers=new_layers, media_type=oci.MANIFEST, origin=image.origin)


def _detect(image: Image, *, cache: Cache) -> Target:
    """:func:`slimline.base.detect.detect`, memoised by the image's config digest."""
    key = hashlib.sha256(image.config_bytes).hexdigest()
    hit = cache.read_meta(keys.TARGETS, key)
    if hit is not None:
        return Target.from_json(json.loads(hit))
    from slimline.base import detect  # only when the target is not memoised

    target = detect.detect(image)
    cache.write_meta(keys.TARGETS, key, json.dumps(target.to_json()).encode())
    return target


@dataclass(frozen=True, slots=True)
class Foreseen:
    """What :func:`resolve` would give for a base, as far as is known without the network."""

    name: str
    how: str  # "pinned" (a fresh Debian pin), "assemble" (from the archive), "read" (local), "pull"
    image: Image | None  # None: not known before the archive or the registry is read
    target: Target | None  # "assemble": the one the suite is known to have; "pull": None


def foresee(text: str | None, *, platform: Platform, options: Options, ctx: Context) -> Foreseen:
    """The base ``text`` names, without the network: a ``debian:`` base's fresh pin from the
    cache, else the target its suite is known to have (``how="assemble"``); a base on the local
    disk read as :func:`resolve` reads it (its blobs copied into the cache); a registry base not
    read (``how="pull"``, no target)."""
    if text is None:
        ref = debian_ref.suite_for(options.requires_python)
        text = f"debian:{ref.suite}" + (f"/python{ref.python}" if ref.python else "")
    parsed = reference.parse(text, role="base")
    if isinstance(parsed, reference.DebianBaseRef):
        pinned = (
            None if options.refresh else _pinned(text, platform=platform, options=options, cache=ctx.cache)
        )
        if pinned is not None:
            return Foreseen(text, "pinned", pinned[0], _detect(pinned[0], cache=ctx.cache))
        expected = debian_ref.expected_target(debian_ref.DebianRef.parse(text), platform)
        return Foreseen(text, "assemble", None, expected)
    if isinstance(parsed, reference.RegistryRef):
        return Foreseen(text, "pull", None, None)
    base = resolve(text, platform=platform, options=options, ctx=ctx)
    return Foreseen(text, "read", base.image, base.target)


def _pin_key(text: str, platform: Platform, options: Options) -> str:
    """The key a Debian base's pin is kept under: everything that decides its packages and bytes."""
    return keys.key(
        "debian-pin", __version__, debian_ref.BUILD_FORMAT, text, str(platform), repr(options.debian),
        options.compression.key(),
    )  # fmt: skip


def _pinned(
    text: str, *, platform: Platform, options: Options, cache: Cache
) -> tuple[Image, float, dict[str, Any]] | None:
    """A Debian base's pin younger than ``options.max_age`` whose blobs are all in the cache, with
    what it holds (a pin made before that was kept is not used)."""
    pin = cache.read_meta(keys.DEBIAN_PINS, _pin_key(text, platform, options))
    return None if pin is None else _from_record(json.loads(pin), options, cache)


def _debian(
    text: str, *, platform: Platform, options: Options, ctx: Context
) -> tuple[Image, Target, float, dict[str, Any]]:
    """The image and target of a Debian base, when its pin was made, and what it holds
    (:func:`slimline.base.debian.base.record`); a pin made before that was kept is made again."""
    ref = debian_ref.DebianRef.parse(text)
    cache = ctx.cache
    key = _pin_key(text, platform, options)
    found = None if options.refresh else _pinned(text, platform=platform, options=options, cache=cache)
    if found is None and options.shared is not None and not options.refresh:
        shared = options.shared.find(key)
        if shared is not None and (found := _from_record(shared, options, cache)) is not None:
            cache.write_meta(keys.DEBIAN_PINS, key, json.dumps(dict(shared)).encode())
            ctx.report.detail(f"base {text} ({platform}): pin from the shared cache")
    if found is not None:
        image, at, held = found
        ctx.report.detail(f"base {text} ({platform}): pinned {image.digest}")
        return image, _detect(image, cache=cache), at, held
    ctx.report.step(f"assembling base {text} ({platform}) from Debian packages")
    from slimline.base.debian import base as debian_base  # heavy: signatures, indexes

    image, target, held = debian_base.build(
        ref, platform=platform, settings=options.debian, ctx=ctx, compression=options.compression
    )
    now = time.time()
    record = {
        "at": now,
        "manifest": image.manifest_bytes.decode(),
        "config": image.config_bytes.decode(),
        "held": held,
    }
    cache.write_meta(keys.DEBIAN_PINS, key, json.dumps(record).encode())
    if options.shared is not None:
        options.shared.keep(key, record, image)
    return image, target, now, held


def _from_record(
    d: Mapping[str, Any], options: Options, cache: Cache
) -> tuple[Image, float, dict[str, Any]] | None:
    """The image a pin record names, when it was made and what it holds, if it is fresh, holds
    that (pins made before it was kept do not) and its blobs are here."""
    if time.time() - float(d["at"]) >= options.max_age or "held" not in d:
        return None
    image = image_from_json(
        str(d["manifest"]).encode(), str(d["config"]).encode(), blob_path=cache.digest_path
    )
    if not all(lay.path.is_file() for lay in image.layers):
        return None
    return image, float(d["at"]), dict(d["held"])
