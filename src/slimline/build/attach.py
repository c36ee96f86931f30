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
from collections.abc import Sequence
from pathlib import Path

from slimline.attest.documents import KINDS, Document, Made, finish
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.oci.image import Image
from slimline.oci.referrers import Artifact

__all__ = ["referrers"]


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
