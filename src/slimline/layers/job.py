"""A layer to produce: its cache key, how to make its tree, its history line and file times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slimline.layers.filetree import FileTree

__all__ = ["Job"]


@dataclass(frozen=True, slots=True)
class Job:
    """``key`` must capture every input of ``make`` (see :func:`slimline.layers.cache.realise`);
    ``mtime`` is every file's time in the layer."""

    key: str
    make: Callable[[], FileTree]
    created_by: str
    mtime: int
