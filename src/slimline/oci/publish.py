"""Write built images to every ``--to`` output: one writer per kind of reference.

Contract: :func:`publish` checks that every output can take the images before it writes any
(a docker-archive holds one platform), then writes the outputs in order; each output appears
atomically (see :mod:`slimline.oci.layout` and :mod:`slimline.oci.archive`), so a failure leaves
the outputs not yet written as they were.  It returns one line per output for stdout: the
digest to pull by, or ``NAME@sha256:...`` for a registry.

Adding a transport: write ``def writer(images, ref, ctx) -> str`` and put it in :data:`WRITERS`
under the reference type (:func:`register`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.oci import layout
from slimline.oci.image import LAYER_ZSTD, Image
from slimline.oci.reference import ArchiveRef, DaemonRef, DebianBaseRef, OciRef, Ref, RegistryRef
from slimline.report import Reporter

if TYPE_CHECKING:  # the network client loads only for outputs that need it
    from slimline.http import Http

__all__ = ["SINGLE_PLATFORM", "WRITERS", "Context", "publish", "register"]


@dataclass(frozen=True, slots=True)
class Context:
    """What writers may need besides the images and the reference."""

    report: Reporter
    name: str | None = None  # image name[:tag] for outputs that record one ("app:1.0")
    http: Http | None = None
    insecure: tuple[str, ...] = ()
    cache: Cache | None = None


Writer = Callable[[Sequence[Image], Any, Context], str]


def _layout(images: Sequence[Image], ref: OciRef, ctx: Context) -> str:
    return layout.write(images, ref, name=ctx.name)


def _archive(images: Sequence[Image], ref: ArchiveRef, ctx: Context) -> str:
    from slimline.oci import archive  # imported when needed: it loads zstandard

    if any(layer.media_type == LAYER_ZSTD for layer in images[0].layers):
        ctx.report.step(f"note: {ref} has zstd layers: docker load needs Docker 23 or later")
    return archive.write(images[0], ref, name=ctx.name)


def _registry(images: Sequence[Image], ref: RegistryRef, ctx: Context) -> str:
    from slimline.http import Http
    from slimline.oci import registry  # imported when needed: the registry client is heavier

    http = ctx.http or Http()
    return registry.push(images, ref, http=http, insecure=ctx.insecure, cache=ctx.cache, report=ctx.report)


def _daemon(images: Sequence[Image], ref: DaemonRef, ctx: Context) -> str:
    from slimline.oci import daemon

    return daemon.load(images, ref, report=ctx.report)


# Reference type -> writer.  Single-platform kinds are listed in SINGLE_PLATFORM.
WRITERS: dict[type, Writer] = {
    OciRef: _layout,
    ArchiveRef: _archive,
    RegistryRef: _registry,
    DaemonRef: _daemon,
}
SINGLE_PLATFORM: set[type] = {ArchiveRef}  # (a daemon load picks the host's platform itself)


def register(kind: type, writer: Writer, *, single_platform: bool = False) -> None:
    """Use ``writer`` for outputs of reference type ``kind`` (replacing any writer it had)."""
    WRITERS[kind] = writer
    if single_platform:
        SINGLE_PLATFORM.add(kind)
    else:
        SINGLE_PLATFORM.discard(kind)


def publish(
    images: Sequence[Image],
    refs: Sequence[Ref],
    *,
    report: Reporter,
    name: str | None = None,
    http: Http | None = None,
    insecure: Sequence[str] = (),
    cache: Cache | None = None,
) -> list[str]:
    """Write ``images`` (one per platform) to each of ``refs``; return one line per output."""
    if not images:
        raise SlimlineError("there is no image to write", doing="publishing")
    for ref in refs:
        if isinstance(ref, DebianBaseRef) or type(ref) not in WRITERS:
            raise SlimlineError(
                f"{ref} cannot be an output",
                doing="publishing",
                hint="outputs are oci:PATH[:TAG], docker-archive:PATH[:NAME:TAG], "
                "docker://NAME[:TAG] or docker-daemon:NAME:TAG",
            )
        if type(ref) in SINGLE_PLATFORM and len(images) > 1:
            platforms = ", ".join(str(i.platform) for i in images)
            raise SlimlineError(
                f"{ref} holds one platform, but the build made {len(images)} ({platforms})",
                doing="publishing",
                hint="build one --platform for this output, or write all to oci:PATH or a registry",
            )
    ctx = Context(report=report, name=name, http=http, insecure=tuple(insecure), cache=cache)
    lines: list[str] = []
    for ref in refs:
        report.step(f"writing {ref}")
        line = WRITERS[type(ref)](images, ref, ctx)
        report.done(f"wrote {ref}: {line}")
        lines.append(line)
    return lines
