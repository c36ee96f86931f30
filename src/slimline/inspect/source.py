"""The images a reference names, read through :mod:`slimline.oci.transports` (any medium a base
can come from: ``oci:``, ``docker-archive:``, a registry), one per platform asked for.

Platforms: the ones given (``linux/arm64``...), else the host's, as ``podman inspect`` does
for an index; a reference that holds one image of another platform (a single-platform layout
or archive) gives that image rather than an error.  Reading needs no project: only the cache
that the blobs are copied into, verified, as for a base.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from slimline.context import Context
from slimline.errors import SlimlineError
from slimline.oci import reference, transports
from slimline.oci.blobs import PlatformMismatch
from slimline.oci.image import Image, Platform

__all__ = ["host_platform", "read"]


def host_platform() -> Platform:
    return Platform(architecture=os.uname().machine).normalised()


def _parse(text: str) -> reference.Ref:
    ref = reference.parse(text, role="base")
    if isinstance(ref, reference.DebianBaseRef):
        raise SlimlineError(
            f"{text} names a base slimline assembles, not an image that exists",
            doing=f"inspecting {text}",
            hint=f"write it first (slimline base {text} --to oci:out/base:latest), then inspect that",
        )
    transports.transport(ref, role="base")  # a daemon: a clear error, before any reading
    return ref


def read(text: str, *, platforms: Sequence[str] | None, ctx: Context) -> list[Image]:
    """The image ``text`` names for each of ``platforms`` (see the module's docstring)."""
    ref = _parse(text)
    if platforms:
        try:
            wanted = [Platform.parse(p) for p in platforms]
        except ValueError as err:
            raise SlimlineError(str(err), doing="reading the command line") from err
        return [transports.read(ref, platform=p, ctx=ctx) for p in wanted]
    host = host_platform()
    try:
        return [transports.read(ref, platform=host, ctx=ctx)]
    except PlatformMismatch as err:
        if len(err.available) != 1:
            raise
        ctx.report.step(f"{text} holds one image, for {err.available[0]}: inspecting that one")
        return [transports.read(ref, platform=Platform.parse(err.available[0]), ctx=ctx)]
