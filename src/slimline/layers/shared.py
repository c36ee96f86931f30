"""The narrow interface :func:`slimline.layers.cache.realise` uses to share layers beyond this
machine's cache (a registry repository: :mod:`slimline.oci.cacherepo`, adapted in ``build/``).

Contract: ``key`` is the full key the local layer cache records a layer under (its job's key
with the slimline version, layer format, compression and file time); :meth:`SharedLayers.find`
returns the layer recorded under it, whose blob is either in the local cache or on the registry
the outputs go to (then pushes mount it), or None; it never raises for a record it cannot use.
:meth:`SharedLayers.keep` records a layer just made (or does nothing, read-only).
"""

from __future__ import annotations

from typing import Protocol

from slimline.oci.image import Layer

__all__ = ["SharedLayers"]


class SharedLayers(Protocol):
    def find(self, key: str) -> Layer | None: ...
    def keep(self, key: str, layer: Layer) -> None: ...
