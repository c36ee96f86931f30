"""An image's documents: made once per set of facts, finished once the image's digest is known.

:func:`make` (a full build) writes the templates of the SBOMs in the chosen formats and of the
provenance (:mod:`slimline.attest.slots`) to the cache under the facts' key, unless they are
there already: a warm build with the same facts loads no document library.  It returns a
:class:`Made`, which the memo keeps.  :func:`finish` (both the full build and a rebuild from the
memo) reads the templates back and fills in the image's digest and the project's git revision:
the documents of a memo rebuild are byte for byte those a full build would write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from slimline.attest import slots, vcs
from slimline.cache import keys
from slimline.cache.store import Cache

if TYPE_CHECKING:  # a memo rebuild finishes documents without loading the facts' stages
    from slimline.attest.facts import Facts

__all__ = ["FORMATS", "KINDS", "Document", "Kind", "Made", "finish", "make", "ready"]

FORMATS = ("cyclonedx", "spdx")  # the SBOM formats sbom-format may name


@dataclass(frozen=True, slots=True)
class Kind:
    media_type: str  # of the document (and the referrer's artifactType)
    filename: str  # under --sbom-out, after the platform


KINDS = {
    "cyclonedx": Kind("application/vnd.cyclonedx+json", "sbom.cdx.json"),
    "spdx": Kind("application/spdx+json", "sbom.spdx.json"),
    "provenance": Kind("application/vnd.in-toto+json", "provenance.intoto.json"),
}


@dataclass(frozen=True, slots=True)
class Made:
    """The documents of one image before its digest is known: what the memo keeps."""

    key: str  # the templates' cache key (keys.ATTEST)
    kinds: tuple[str, ...]  # the SBOM formats, then "provenance"
    revision: bool  # made with a slot for the git revision (the project was in a git checkout)


@dataclass(frozen=True, slots=True)
class Document:
    kind: str  # a key of KINDS
    data: bytes

    @property
    def media_type(self) -> str:
        return KINDS[self.kind].media_type


def make(facts: Facts, *, formats: tuple[str, ...], root: Path, cache: Cache) -> Made:
    """The documents of the image ``facts`` describe."""
    revision = vcs.revision(root) is not None
    kinds = (*formats, "provenance")
    key = facts.key(kinds, revision=revision)
    if cache.read_meta(keys.ATTEST, key) is None:
        texts = {kind: _template(kind, facts, revision=revision) for kind in kinds}
        cache.write_meta(keys.ATTEST, key, json.dumps(texts, sort_keys=True).encode())
    return Made(key, kinds, revision)


def _template(kind: str, facts: Facts, *, revision: bool) -> str:
    if kind == "cyclonedx":
        from slimline.attest import cyclonedx

        return cyclonedx.template(facts, revision=revision)
    if kind == "spdx":
        from slimline.attest import spdx

        return spdx.template(facts, revision=revision)
    from slimline.attest import provenance

    return provenance.template(facts, revision=revision)


def ready(made: Made, *, cache: Cache) -> bool:
    """Whether :func:`finish` can finish ``made`` (its templates are still in the cache)."""
    return cache.read_meta(keys.ATTEST, made.key) is not None


def finish(made: Made, *, digest: str, root: Path, cache: Cache) -> list[Document] | None:
    """The documents of the image whose manifest digest is ``digest``, in ``made.kinds`` order;
    None when the templates are gone from the cache or the project's git checkout appeared or
    went since they were made (the caller makes them again)."""
    raw = cache.read_meta(keys.ATTEST, made.key)
    revision = vcs.revision(root)
    if raw is None or (revision is not None) != made.revision:
        return None
    texts = json.loads(raw)
    return [
        Document(kind, slots.fill(texts[kind], digest=digest, revision=revision).encode())
        for kind in made.kinds
    ]
