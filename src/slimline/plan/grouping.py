"""Which dependencies share a layer: a deterministic policy that keeps layers stable.

The goal is that changing one dependency (upgrading, adding or removing it) changes as few
layers as possible, so a rebuild re-uploads and a pull re-downloads little, while the image
stays far below the ~127-layer limit of common runtimes.

Policy of :func:`group` (a pure function of the names and sizes it is given):

1. **Big packages get a layer of their own.**  An item whose installed size is at least
   ``big`` bytes (default 10 MiB) is alone in its layer, so upgrading numpy never re-ships
   the small packages, and vice versa.  If there are more big items than
   ``max_layers - buckets`` allows, the largest keep their own layers (ties broken by
   name) and the rest are treated as small.
2. **Small packages go into hash buckets.**  Each remaining item goes into bucket
   ``sha256(name) mod buckets``.  The bucket of a package depends on its name only, never
   on the other packages: adding, removing or upgrading one package changes exactly the
   one bucket it is in, and every other layer keeps its digest.  (Alphabetical runs or
   size-balanced packing would shift boundaries and change several layers.)  Empty
   buckets give no layer.
3. **Order.**  Big layers first, by name; then the buckets in bucket-number order.  Items
   within a layer are sorted by name.  Layer order only affects the image config, not
   the layer blobs.

So the number of layers is at most ``max_layers`` (default 16): at most
``max_layers - buckets`` big ones plus at most ``buckets`` small ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["BIG", "BUCKETS", "MAX_LAYERS", "Item", "Sized", "bucket_of", "group"]

BIG = 10 * 1024 * 1024  # bytes installed
MAX_LAYERS = 16
BUCKETS = 4


class Sized(Protocol):
    """What :func:`group` needs of an item: a name (canonical distribution name) and a size."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Item:
    """A ready-made :class:`Sized`: a canonical distribution name and its installed size in bytes."""

    name: str
    size: int


T = TypeVar("T", bound=Sized)


def bucket_of(name: str, buckets: int) -> int:
    """The bucket of a small package: stable across runs, hosts and Python versions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % buckets


def group(
    items: Sequence[T], *, max_layers: int = MAX_LAYERS, big: int = BIG, buckets: int = BUCKETS
) -> list[list[T]]:
    """Split ``items`` into layers by the module's policy; every item appears exactly once.

    Raises ValueError for a non-positive ``max_layers``/``buckets``, or duplicate names.
    """
    if max_layers < 1 or buckets < 1:
        raise ValueError(f"max_layers ({max_layers}) and buckets ({buckets}) must be at least 1")
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate names cannot be grouped: {', '.join(dupes)}")
    buckets = min(buckets, max_layers)
    room = max_layers - buckets
    large = sorted((i for i in items if i.size >= big), key=lambda i: (-i.size, i.name))
    own = sorted(large[:room], key=lambda i: i.name)
    alone = {i.name for i in own}
    bins: list[list[T]] = [[] for _ in range(buckets)]
    for item in sorted(items, key=lambda i: i.name):
        if item.name not in alone:
            bins[bucket_of(item.name, buckets)].append(item)
    return [[i] for i in own] + [b for b in bins if b]
