"""What a build or base command did, as values: the command line renders them as lines or JSON.

Contract: :class:`Result` is made by :mod:`slimline.build.conductor` for the memo's rebuild, a
full build and ``slimline base`` alike; it holds the images written (one :class:`Built` per
platform, in the order of the platforms), every output with the line to pull it by, and the
times of the two phases.  Nothing here reads a file or the network; :meth:`Result.to_json` is
the document ``--json`` prints (``docs/build-result.schema.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from slimline.oci.image import Image, index_bytes, sha256_digest

__all__ = ["SCHEMA_VERSION", "Built", "LayerStatus", "Result", "Written", "statuses"]

SCHEMA_VERSION = 1  # of the --json document: a key removed or changed in meaning is a new version

# base: a layer of the base image (pulled, read or assembled); reused: found in the layer cache
# (or kept by the memo); new: made by this build
LayerStatus = Literal["base", "reused", "new"]


def statuses(*, base: int, made: Sequence[bool]) -> tuple[LayerStatus, ...]:
    """The status of each layer of an image with ``base`` base layers below the ``made`` ones
    (True: made by this build, False: found in the cache)."""
    below: LayerStatus = "base"
    above: tuple[LayerStatus, ...] = tuple("new" if m else "reused" for m in made)
    return (below,) * base + above


@dataclass(frozen=True, slots=True)
class Built:
    """One platform's image as this command made it."""

    image: Image
    status: tuple[LayerStatus, ...]  # one per layer of ``image``, base first
    seconds: float  # wall time spent making it (platforms are made one after another)

    def to_json(self) -> dict[str, Any]:
        image = self.image
        made_by = [h.created_by for h in image.history if not h.empty_layer]
        if len(made_by) != len(image.layers):
            made_by = [""] * len(image.layers)
        layers = [
            {
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.size,
                "media_type": layer.media_type,
                "status": status,
                "created_by": created_by,
            }
            for layer, status, created_by in zip(image.layers, self.status, made_by, strict=True)
        ]
        return {
            "platform": str(image.platform),
            "manifest_digest": image.digest,
            "config_digest": image.config_descriptor.digest,
            "media_type": image.media_type,
            "size": sum(layer.size for layer in image.layers)
            + len(image.manifest_bytes)
            + len(image.config_bytes),
            "layers_size": sum(layer.size for layer in image.layers),
            "layer_counts": {s: self.status.count(s) for s in ("base", "reused", "new")},
            "layers": layers,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class Written:
    """One output: the reference as given and the line printed for it (the digest to pull by,
    or ``NAME@sha256:...`` for a registry)."""

    ref: str
    pull: str


@dataclass(frozen=True, slots=True)
class Result:
    command: Literal["build", "base"]
    name: str  # the image name recorded by outputs that keep one ("app:1.0")
    images: tuple[Built, ...]
    outputs: tuple[Written, ...]
    memo: bool  # the memo served the build: only the project layer was made
    seconds: Mapping[str, float] = field(default_factory=dict)  # "build", "publish"

    @property
    def lines(self) -> list[str]:
        """What stdout shows without --json: one line per output."""
        return [w.pull for w in self.outputs]

    @property
    def index_digest(self) -> str | None:
        """The digest of the image index listing every platform's manifest, as the outputs
        write it; None for one platform (outputs then name the manifest itself)."""
        if len(self.images) < 2:
            return None
        return sha256_digest(index_bytes([b.image.descriptor() for b in self.images]))

    def to_json(self, *, warnings: Sequence[str] = (), total: float | None = None) -> dict[str, Any]:
        """The ``--json`` document; ``warnings`` are the build's warning lines."""
        seconds = {k: round(v, 3) for k, v in self.seconds.items()}
        if total is not None:
            seconds["total"] = round(total, 3)
        return {
            "schema_version": SCHEMA_VERSION,
            "command": self.command,
            "name": self.name,
            "memo": self.memo,
            "digest": self.index_digest or self.images[0].image.digest,
            "index_digest": self.index_digest,
            "images": [b.to_json() for b in self.images],
            "outputs": [{"ref": w.ref, "pull": w.pull} for w in self.outputs],
            "seconds": seconds,
            "warnings": list(warnings),
        }
