"""The image from its layers: the tail that a full build and a rebuild from the memo share.

Contract: :func:`below` returns the image a build records in its memo (the base's layers, then
every layer below the project's, the config and the annotations); :func:`top` puts the project's
layer on it.  A full build calls both; the memo calls only :func:`top`, on the image
:func:`below` gave the recorded build, so the two cannot make different images from the same
layers.  Every history line has the build's epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from slimline.layers.job import Job
from slimline.oci.image import Config, History, Image, Layer, rfc3339

if TYPE_CHECKING:  # the memo's rebuild calls top() only: it need not load the base stage
    from slimline.base.resolve import Base

__all__ = ["below", "top"]


def below(base: Base, jobs: Sequence[Job], made: Sequence[Layer], *, config: Config, epoch: int) -> Image:
    """``base`` with ``made`` (one layer per job, in order), ``config`` and the build's annotations."""
    created = rfc3339(epoch)
    history = tuple(History(created_by=j.created_by, created=created) for j in jobs)
    image = base.image.append(tuple(made), history).with_config(config).with_created(created)
    return image.with_annotations(
        **{
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.base.name": base.name,
            "org.opencontainers.image.base.digest": base.digest,
        }
    )


def top(partial: Image, job: Job, layer: Layer, *, epoch: int) -> Image:
    """``partial`` (from :func:`below`) with the project's layer, made by ``job``, on top."""
    return partial.append((layer,), (History(created_by=job.created_by, created=rfc3339(epoch)),))
