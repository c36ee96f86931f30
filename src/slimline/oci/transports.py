"""One table from each kind of image reference to how it is read and written.

Bases are read through :func:`read` (:mod:`slimline.base.resolve`) and outputs written through
:func:`write` (:mod:`slimline.oci.publish`), so a new medium is one entry in :data:`TRANSPORTS`:
a reader ``(ref, platform, ctx) -> Image`` and/or a writer ``(images, ref, name, ctx) -> str``
(the line printed for that output: the digest to pull by, or ``NAME@sha256:...``).

The media modules are imported when a reference of their kind is used: the docker-archive
writer loads zstandard, the registry client the network stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slimline.context import Context
from slimline.errors import SlimlineError
from slimline.oci.image import LAYER_ZSTD, Image, Platform
from slimline.oci.reference import ArchiveRef, DaemonRef, OciRef, Ref, RegistryRef
from slimline.oci.referrers import Artifact

__all__ = ["TRANSPORTS", "Transport", "read", "write"]

Reader = Callable[[Any, Platform, Context], Image]
Writer = Callable[[Sequence[Image], Any, str | None, Context], str]
# writes the images and their referrers (see slimline.oci.referrers)
ReferrersWriter = Callable[[Sequence[Image], Any, str | None, Context, Sequence[Artifact]], str]


@dataclass(frozen=True, slots=True)
class Transport:
    read: Reader | None  # None: not a source of images (a daemon is only loaded into)
    write: Writer | None
    single_platform: bool = False  # holds one image, not an index
    with_referrers: ReferrersWriter | None = None  # None: the medium cannot hold referrers


def _layout_read(ref: OciRef, platform: Platform, ctx: Context) -> Image:
    from slimline.oci import layout

    return layout.read(ref, platform=platform, cache=ctx.cache)


def _layout_write(images: Sequence[Image], ref: OciRef, name: str | None, ctx: Context) -> str:
    from slimline.oci import layout

    return layout.write(images, ref, name=name)


def _layout_write_referrers(
    images: Sequence[Image], ref: OciRef, name: str | None, ctx: Context, referrers: Sequence[Artifact]
) -> str:
    from slimline.oci import layout

    return layout.write(images, ref, name=name, referrers=referrers)


def _archive_read(ref: ArchiveRef, platform: Platform, ctx: Context) -> Image:
    from slimline.oci import archive

    return archive.read(ref, platform=platform, cache=ctx.cache)


def _archive_write(images: Sequence[Image], ref: ArchiveRef, name: str | None, ctx: Context) -> str:
    from slimline.oci import archive

    if any(layer.media_type == LAYER_ZSTD for layer in images[0].layers):
        ctx.report.step(f"note: {ref} has zstd layers: docker load needs Docker 23 or later")
    return archive.write(images[0], ref, name=name)


def _registry_read(ref: RegistryRef, platform: Platform, ctx: Context) -> Image:
    from slimline.oci import registry

    return registry.pull(ref, platform=platform, ctx=ctx)


def _registry_write(images: Sequence[Image], ref: RegistryRef, name: str | None, ctx: Context) -> str:
    from slimline.oci import registry

    return registry.push(images, ref, ctx=ctx)


def _registry_write_referrers(
    images: Sequence[Image], ref: RegistryRef, name: str | None, ctx: Context, referrers: Sequence[Artifact]
) -> str:
    from slimline.oci import registry

    return registry.push(images, ref, ctx=ctx, referrers=referrers)


def _daemon_write(images: Sequence[Image], ref: DaemonRef, name: str | None, ctx: Context) -> str:
    from slimline.oci import daemon

    return daemon.load(images, ref, report=ctx.report)


TRANSPORTS: dict[type, Transport] = {
    OciRef: Transport(_layout_read, _layout_write, with_referrers=_layout_write_referrers),
    ArchiveRef: Transport(_archive_read, _archive_write, single_platform=True),
    RegistryRef: Transport(_registry_read, _registry_write, with_referrers=_registry_write_referrers),
    DaemonRef: Transport(None, _daemon_write),  # (a daemon load picks the host's platform itself)
}

_OUTPUTS = "oci:PATH[:TAG], docker-archive:PATH[:NAME:TAG], docker://NAME[:TAG] or docker-daemon:NAME:TAG"
_BASES = "debian:SUITE, oci:PATH[:TAG], docker-archive:PATH or a registry name"


def transport(ref: Ref, *, role: str) -> Transport:
    """The transport of ``ref`` that can play ``role`` ("base" or "output"), else a clear error."""
    found = TRANSPORTS.get(type(ref))
    if found is not None and (found.read if role == "base" else found.write) is not None:
        return found
    raise SlimlineError(
        f"{ref} cannot be {'a base' if role == 'base' else 'an output'}",
        doing="reading the base" if role == "base" else "publishing",
        hint=f"{'bases' if role == 'base' else 'outputs'} are {_BASES if role == 'base' else _OUTPUTS}",
    )


def read(ref: Ref, *, platform: Platform, ctx: Context) -> Image:
    """The image for ``platform`` that ``ref`` names, its blobs in ``ctx.cache``."""
    reader = transport(ref, role="base").read
    assert reader is not None
    return reader(ref, platform, ctx)


def write(
    images: Sequence[Image], ref: Ref, *, name: str | None, ctx: Context, referrers: Sequence[Artifact] = ()
) -> str:
    """Write ``images`` (one per platform) to ``ref``, with ``referrers`` where the medium holds
    them (:attr:`Transport.with_referrers`); the line to print for it."""
    found = transport(ref, role="output")
    if referrers and found.with_referrers is not None:
        return found.with_referrers(images, ref, name, ctx, referrers)
    assert found.write is not None
    return found.write(images, ref, name, ctx)
