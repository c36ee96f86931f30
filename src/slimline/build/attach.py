"""The documents a build attaches to its images: finished, written to ``--sbom-out``, as referrers.

Contract of :func:`referrers`: for each image (one per platform) and what
:func:`slimline.attest.documents.make` made for it (None: ``sbom = false``), the finished
documents as :class:`~slimline.oci.referrers.Artifact` values about that image, in the order
images, then SBOM formats, then provenance; and, with ``out``, the same documents written
there (atomically; ``sbom.cdx.json``, ``sbom.spdx.json``, ``provenance.intoto.json``, each
prefixed with the platform when there are several images).  None when some document cannot be
finished (its templates left the cache): the caller makes them again with a full build.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from slimline.attest.documents import KINDS, Document, Made, finish
from slimline.cache.store import Cache
from slimline.errors import SlimlineError, redact
from slimline.oci.image import Image
from slimline.oci.referrers import Artifact

if TYPE_CHECKING:
    from slimline.artifacts.wheelinfo import WheelInfo
    from slimline.base.resolve import Base
    from slimline.build.start import Started
    from slimline.context import Context
    from slimline.plan.model import Plan
    from slimline.project.lockfile import Lock
    from slimline.project.settings import Settings

__all__ = ["documents", "referrers"]


def referrers(
    images: Sequence[Image], made: Sequence[Made | None], *, root: Path, out: Path | None, cache: Cache
) -> list[Artifact] | None:
    found: list[Artifact] = []
    for image, documents in zip(images, made, strict=True):
        if documents is None:
            continue
        docs = finish(documents, digest=image.digest, root=root, cache=cache)
        if docs is None:
            return None
        if out is not None:
            _write(out, docs, prefix=f"{str(image.platform).replace('/', '-')}." if len(images) > 1 else "")
        subject = image.descriptor()
        found += [
            Artifact(subject, d.media_type, d.data, KINDS[d.kind].filename, image.created) for d in docs
        ]
    return found


def _write(out: Path, docs: Sequence[Document], *, prefix: str) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for d in docs:
            path = out / f"{prefix}{KINDS[d.kind].filename}"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(d.data)
            os.replace(tmp, path)
    except OSError as err:
        raise SlimlineError(
            f"cannot write the SBOM files to {out}: {err.strerror or err}",
            doing="writing --sbom-out",
            hint="choose a directory you can write to",
        ) from err


def documents(
    base: Base,
    plan: Plan,
    found: Mapping[str, WheelInfo],
    *,
    started: Started,
    lock: Lock,
    settings: Settings,
    epoch: int,
    ctx: Context,
    dropped: Mapping[str, tuple[tuple[str, int], ...]] | None = None,
) -> Made | None:
    """An image's SBOM and provenance, before its digest is known (None with ``sbom = false``;
    ``dropped``: what slim mode left out, as :func:`slimline.build.dropped.by_distribution` gives it)."""
    if not settings.sbom:
        return None
    import json
    from dataclasses import asdict

    from slimline.attest import documents as docs
    from slimline.attest import facts

    gathered = facts.gather(
        project=started.project,
        lock=lock,
        plan=plan,
        infos=dict(found),
        base=base,
        default_index=started.default_index,
        venv=settings.venv,
        parameters=json.loads(redact(json.dumps(asdict(settings), default=str, sort_keys=True))),
        builder_id=settings.builder_id or os.environ.get("SLIMLINE_BUILDER_ID", ""),
        epoch=epoch,
        dropped=dropped,
    )
    return docs.make(gathered, formats=settings.sbom_formats, root=started.project.root, cache=ctx.cache)
