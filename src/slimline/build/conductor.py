"""The conductor: a command's request in, every output written, one line per output out.

:func:`build` reads like the recipe it is: try the memo (only the project layer is made again,
through the same tail as a full build); else read the project once, start its wheel, build one
image per platform (:mod:`slimline.build.image`), remember the result, publish.  :func:`base`
writes a base image on its own.  Neither touches a file but through the stages they call.

This module is on the path of every rebuild: the full build's modules are imported only when a
full build runs (and then while the project's wheel is being built).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimline.build import memo
from slimline.context import Context
from slimline.oci import publish, reference
from slimline.oci.image import Image, Platform
from slimline.oci.reference import ArchiveRef, OciRef, Ref

if TYPE_CHECKING:
    from slimline.build.sharing import Sharing
    from slimline.project.settings import Settings

__all__ = ["Request", "base", "build"]


@dataclass(frozen=True, slots=True)
class Request:
    """A build as the user asked for it."""

    root: Path  # the project directory (absolute)
    overrides: Mapping[str, object]  # settings given on the command line (win over [tool.slimline])
    outputs: tuple[str, ...] = ()  # --to references as written; () writes the default oci: layout
    load: bool = False  # also load the image into podman or docker
    refresh: bool = False  # re-read the Debian archive even when a pin is fresh
    # what of the command line decides the images (the memo's key); outputs only name them
    command: Mapping[str, Any] | None = None


def build(request: Request, ctx: Context) -> list[str]:
    """Build the project and write every output; one line per output (the digest to pull by)."""
    memo_key = memo.key(request.root, command=request.command) if request.command is not None else None
    if memo_key is not None and (recalled := memo.recall(memo_key, cache=ctx.cache)) is not None:
        outputs = _outputs(request, name=recalled.name)
        images = memo.remake(recalled, request.root, also_exclude=_excluded(outputs), ctx=ctx)
        if images is not None:
            return publish.publish(images, outputs, name=recalled.name, ctx=ctx)
    from slimline.build.start import start
    from slimline.project import pyproject, settings

    proj = pyproject.load(request.root)
    chosen = settings.load(proj.slimline, overrides=request.overrides)
    name = chosen.tag or _default_name(proj)
    outputs = _outputs(request, name=name)
    shared = _shared(chosen, outputs, request, ctx)
    with start(
        proj, index_setting=chosen.index_url, ctx=ctx, shared=shared.wheels if shared is not None else None
    ) as started:
        from slimline.build import image  # the heavy part, loaded while the project's wheel builds

        recipes = image.build(
            started,
            settings=chosen,
            refresh=request.refresh,
            exclude_outputs=_excluded(outputs),
            ctx=ctx,
            shared=shared,
        )
    if memo_key is not None:
        memo.keep(memo_key, recipes, name=name, cache=ctx.cache)
    if shared is not None:
        ctx.report.done(shared.summary())
    return publish.publish([r.image for r in recipes], outputs, name=name, ctx=ctx)


def _shared(chosen: Settings, outputs: Sequence[Ref], request: Request, ctx: Context) -> Sharing | None:
    """The build cache shared through a registry, when one is set (see :mod:`slimline.build.sharing`)."""
    if not (chosen.cache_repo or os.environ.get("SLIMLINE_CACHE_REPO")):
        return None
    from slimline.build import sharing

    return sharing.open_shared(chosen, outputs, load=request.load, ctx=ctx)


def base(
    text: str,
    *,
    platforms: Sequence[str],
    packages: Sequence[str] = (),
    mirror: str | None = None,
    outputs: Sequence[str] = (),
    refresh: bool = False,
    ctx: Context,
) -> list[str]:
    """Write the base ``text`` names (``debian:SUITE``, or any base reference) for ``platforms``."""
    from packaging.specifiers import SpecifierSet

    from slimline import layers
    from slimline.base import resolve
    from slimline.base.debian.ref import BaseSettings

    options = resolve.Options(
        requires_python=SpecifierSet(),
        debian=BaseSettings(mirror=mirror, packages=tuple(packages)),
        compression=layers.Compression(),
        refresh=refresh,
    )
    images: list[Image] = [
        resolve.resolve(text, platform=Platform.parse(p), options=options, ctx=ctx).image for p in platforms
    ]
    name = "python-base:" + text.replace("debian:", "").replace("/", "-").replace(":", "-")
    default = f"oci:{Path('dist/base').resolve()}:{name.rpartition(':')[2]}"
    refs = [reference.parse(t, role="output") for t in (outputs or [default])]
    return publish.publish(images, refs, name=name, ctx=ctx)


def _default_name(proj: Any) -> str:
    """``name:version`` of the project for outputs that record a name (``app:latest`` without a version)."""
    return f"{proj.name.lower().replace('_', '-')}:{proj.version or 'latest'}"


def _outputs(request: Request, *, name: str) -> list[Ref]:
    default = f"oci:{request.root / 'dist' / 'image'}:{name.rpartition(':')[2]}"
    refs = [reference.parse(t, role="output") for t in (request.outputs or [default])]
    if request.load:
        refs.append(reference.parse(f"docker-daemon:{name}", role="output"))
    return refs


def _excluded(outputs: Sequence[Ref]) -> list[Path]:
    """Outputs written to the file system: never part of the project's files."""
    return [o.path for o in outputs if isinstance(o, OciRef | ArchiveRef)]
