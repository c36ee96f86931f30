"""Write built images to every ``--to`` output, through :mod:`slimline.oci.transports`.

Contract: :func:`publish` checks that every output can take the images before it writes any
(a docker-archive holds one platform), then writes the outputs in order; each output appears
atomically (see :mod:`slimline.oci.layout` and :mod:`slimline.oci.archive`), so a failure leaves
the outputs not yet written as they were.  It returns one line per output for stdout: the
digest to pull by, or ``NAME@sha256:...`` for a registry.
"""

from __future__ import annotations

from collections.abc import Sequence

from slimline.context import Context
from slimline.errors import SlimlineError
from slimline.oci import transports
from slimline.oci.image import Image
from slimline.oci.reference import Ref
from slimline.oci.referrers import Artifact

__all__ = ["publish"]


def publish(
    images: Sequence[Image],
    refs: Sequence[Ref],
    *,
    name: str | None,
    ctx: Context,
    referrers: Sequence[Artifact] = (),
) -> list[str]:
    """Write ``images`` (one per platform) to each of ``refs``; return one line per output.
    ``name`` (``app:1.0``) is recorded by outputs that keep one.  ``referrers`` (SBOMs,
    provenance: :mod:`slimline.oci.referrers`) go with them to the outputs that can hold them;
    for the others one line says they were not written."""
    if not images:
        raise SlimlineError("there is no image to write", doing="publishing")
    for ref in refs:
        if transports.transport(ref, role="output").single_platform and len(images) > 1:
            platforms = ", ".join(str(i.platform) for i in images)
            raise SlimlineError(
                f"{ref} holds one platform, but the build made {len(images)} ({platforms})",
                doing="publishing",
                hint="build one --platform for this output, or write all to oci:PATH or a registry",
            )
    lines: list[str] = []
    for ref in refs:
        ctx.report.step(f"writing {ref}")
        line = transports.write(images, ref, name=name, ctx=ctx, referrers=referrers)
        ctx.report.done(f"wrote {ref}: {line}")
        if referrers and transports.transport(ref, role="output").with_referrers is None:
            ctx.report.step(f"note: {ref} cannot hold referrers: its SBOM and provenance were not written")
        lines.append(line)
    return lines
