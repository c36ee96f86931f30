"""The conductor: a command's request in, every output written, a :class:`~slimline.build.result.Result` out.

:func:`build` reads like the recipe it is: try the memo (only the project layer is made again,
through the same tail as a full build); else read the project once, start its wheel, build one
image per platform (:mod:`slimline.build.image`), remember the result, publish.  :func:`base`
writes a base image on its own.  Neither touches a file but through the stages they call.

This module is on the path of every rebuild: the full build's modules are imported only when a
full build runs (and then while the project's wheel is being built).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimline.build import memo
from slimline.build.result import Built, Result, Written, statuses
from slimline.context import Context
from slimline.oci import publish, reference
from slimline.oci.image import Image, Platform
from slimline.oci.reference import ArchiveRef, OciRef, Ref, RegistryRef

if TYPE_CHECKING:
    from slimline.attest.documents import Made
    from slimline.build.dryrun import DryRun
    from slimline.build.sharing import Sharing
    from slimline.oci.referrers import Artifact
    from slimline.project.settings import Settings
    from slimline.sign.keys import SigningKey

__all__ = ["Request", "base", "build", "plan"]


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
    sbom_out: Path | None = None  # also write the SBOM and provenance files here
    signing_key: SigningKey | None = None  # sign every image written (slimline.sign.cosign)


def build(request: Request, ctx: Context) -> Result:
    """Build the project and write every output; what was made and written."""
    started_at = time.perf_counter()
    memo_key = memo.key(request.root, command=request.command) if request.command is not None else None
    if memo_key is not None and (recalled := memo.recall(memo_key, cache=ctx.cache)) is not None:
        outputs = _outputs(request, name=recalled.name)
        remade = memo.remake(recalled, request.root, also_exclude=_excluded(outputs), ctx=ctx)
        documents = [r.documents for r in recalled.recipes]
        if remade is not None and (found := _referrers(request, remade, documents, ctx)) is not None:
            return _publish(
                "build", remade, outputs, recalled.name, memoised=True, since=started_at, ctx=ctx,
                request=request, referrers=found, recipes=recalled.recipes,
            )  # fmt: skip
    from slimline.build.start import start
    from slimline.project import pyproject, settings

    proj = pyproject.load(request.root)
    chosen = settings.load(proj.slimline, overrides=request.overrides)
    name = chosen.tag or _default_name(proj)
    outputs = _outputs(request, name=name)
    shared = _shared(chosen, outputs, request, ctx)
    with start(
        proj,
        index_setting=chosen.index_url,
        lock=chosen.lock,
        ctx=ctx,
        shared=shared.wheels if shared is not None else None,
    ) as started:
        from slimline.build import image  # the heavy part, loaded while the project's wheel builds

        made = image.build(
            started,
            settings=chosen,
            refresh=request.refresh,
            exclude_outputs=_excluded(outputs),
            ctx=ctx,
            shared=shared,
        )
    recipes = [recipe for recipe, _ in made]
    if memo_key is not None:
        memo.keep(memo_key, recipes, name=name, cache=ctx.cache)
    if shared is not None:
        ctx.report.done(shared.summary())
    built = [b for _, b in made]
    found = _referrers(request, built, [r.documents for r in recipes], ctx)
    return _publish(
        "build", built, outputs, name, memoised=False, since=started_at, ctx=ctx,
        request=request, referrers=found or (), recipes=recipes,
    )  # fmt: skip


def _referrers(
    request: Request, built: Sequence[Built], made: Sequence[Made | None], ctx: Context
) -> list[Artifact] | None:
    from slimline.build import attach

    images: list[Image] = [b.image for b in built]
    return attach.referrers(images, made, root=request.root, out=request.sbom_out, cache=ctx.cache)


def _shared(chosen: Settings, outputs: Sequence[Ref], request: Request, ctx: Context) -> Sharing | None:
    """The build cache shared through a registry, when one is set (see :mod:`slimline.build.sharing`)."""
    if not (chosen.cache_repo or os.environ.get("SLIMLINE_CACHE_REPO")):
        return None
    from slimline.build import sharing

    return sharing.open_shared(chosen, outputs, load=request.load, ctx=ctx)


def plan(request: Request, ctx: Context) -> DryRun:
    """What :func:`build` would do, without fetching, building or writing (:mod:`~slimline.build.dryrun`)."""
    from slimline.build import dryrun
    from slimline.project import pyproject, settings

    proj = pyproject.load(request.root)
    chosen = settings.load(proj.slimline, overrides=request.overrides)
    outputs = [_text(o) for o in _outputs(request, name=chosen.tag or _default_name(proj))]
    return dryrun.plan(proj, chosen, outputs=outputs, refresh=request.refresh, ctx=ctx)


def _publish(
    command: Any,
    built: Sequence[Built],
    refs: Sequence[Ref],
    name: str,
    *,
    memoised: bool,
    since: float,
    ctx: Context,
    request: Request | None = None,
    referrers: Sequence[Artifact] = (),
    recipes: Sequence[memo.Recipe] = (),
) -> Result:
    """Write ``built`` to every output with the images' referrers, then sign what was written
    (when the request has a key), then the debug variants (when the recipes hold a busybox
    layer: ``debug = true``); the command's result."""
    made_at = time.perf_counter()
    images = [b.image for b in built]
    lines = publish.publish(images, refs, name=name, ctx=ctx, referrers=referrers)
    if request is not None and request.signing_key is not None:
        from slimline.sign import cosign

        cosign.sign_outputs(
            images, refs, lines, key=request.signing_key, name=name, ctx=ctx, documents=referrers
        )
    if any(r.debug_layer is not None for r in recipes):
        more_refs, more_lines = _debug_variants(images, recipes, refs, name=name, ctx=ctx)
        refs, lines = [*refs, *more_refs], [*lines, *more_lines]
    seconds = {"build": made_at - since, "publish": time.perf_counter() - made_at}
    written = tuple(Written(_text(ref), line) for ref, line in zip(refs, lines, strict=True))
    return Result(command, name, tuple(built), written, memoised, seconds)


def _debug_variants(
    images: Sequence[Image],
    recipes: Sequence[memo.Recipe],
    outputs: Sequence[Ref],
    *,
    name: str,
    ctx: Context,
) -> tuple[list[Ref], list[str]]:
    """Each output's debug variant (:mod:`slimline.build.debug`), written after the plain ones:
    the outputs and the lines they gave."""
    from slimline.build import debug
    from slimline.oci.image import rfc3339

    variants = []
    for image, r in zip(images, recipes, strict=True):
        assert r.debug_layer is not None, "every platform's recipe has the debug layer, or none"
        variants.append(debug.variant(image, r.debug_layer, created=rfc3339(r.epoch)))
    debug_outputs = [debug.debug_ref(o) for o in outputs]
    return debug_outputs, publish.publish(variants, debug_outputs, name=debug.debug_name(name), ctx=ctx)


def base(
    text: str,
    *,
    platforms: Sequence[str],
    packages: Sequence[str] = (),
    mirror: str | None = None,
    outputs: Sequence[str] = (),
    refresh: bool = False,
    ctx: Context,
) -> Result:
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
    started_at = time.perf_counter()
    built: list[Built] = []
    for p in platforms:
        made_at = time.perf_counter()
        image = resolve.resolve(text, platform=Platform.parse(p), options=options, ctx=ctx).image
        built.append(Built(image, statuses(base=len(image.layers), made=()), time.perf_counter() - made_at))
    name = "python-base:" + text.replace("debian:", "").replace("/", "-").replace(":", "-")
    default = f"oci:{Path('dist/base').resolve()}:{name.rpartition(':')[2]}"
    refs = [reference.parse(t, role="output") for t in (outputs or [default])]
    return _publish("base", built, refs, name, memoised=False, since=started_at, ctx=ctx)


def _text(ref: Ref) -> str:
    """An output as --to takes it (a registry's with its ``docker://``)."""
    return f"docker://{ref}" if isinstance(ref, RegistryRef) else str(ref)


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
