"""The layer cache: layers found by a key of their inputs, or made once and remembered.

Contract: a key must capture every input of the tree its job makes (the wheels' hashes, the venv
prefix, the target...); :func:`realise` then returns, for each job in order, the layer found
under its key (its blob still in the cache) or the layer made from ``job.make()``, written and
remembered.  ``SLIMLINE_NO_LAYER_CACHE=1`` finds nothing (benchmarks, debugging) but the layers made
once per base (``base_like``: the standard library's bytecode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slimline import __version__
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.layers.compress import Compression
from slimline.layers.filetree import FileTree
from slimline.layers.job import Job
from slimline.layers.shared import SharedLayers
from slimline.layers.write import FORMAT_VERSION, write
from slimline.oci.image import Layer
from slimline.report import Reporter

__all__ = ["Realised", "from_record", "lookup", "realise", "record", "store", "write_many"]


def _meta_key(key: str, *, mtime: int, compression: Compression) -> str:
    # the slimline version is part of the key: a new release may lay out the same inputs differently
    return keys.key("layer", __version__, FORMAT_VERSION, compression.key(), mtime, key)


def record(layer: Layer) -> dict[str, Any]:
    """What the cache keeps of a layer besides its blob (see :func:`from_record`)."""
    return {
        "digest": layer.digest,
        "diff_id": layer.diff_id,
        "size": layer.size,
        "media_type": layer.media_type,
    }


def from_record(d: Mapping[str, Any], *, cache: Cache) -> Layer:
    """The layer :func:`record` described, its blob in ``cache`` (which may since have gone)."""
    digest = str(d["digest"])
    return Layer(digest, str(d["diff_id"]), int(d["size"]), str(d["media_type"]), cache.digest_path(digest))


def lookup(
    key: str, *, cache: Cache, mtime: int = 0, compression: Compression | None = None, base_like: bool = False
) -> Layer | None:
    """The cached layer for ``key`` (see :func:`cached`), or None.  Never builds anything.
    ``base_like``: a layer made once per base (the standard library's bytecode), found even with
    ``SLIMLINE_NO_LAYER_CACHE=1``, as the base's own layers are (they come from its pin)."""
    if os.environ.get("SLIMLINE_NO_LAYER_CACHE") == "1" and not base_like:
        return None
    meta = cache.read_meta(keys.LAYERS, _meta_key(key, mtime=mtime, compression=compression or Compression()))
    if meta is None:
        return None
    layer = from_record(json.loads(meta), cache=cache)
    if not (layer.path.is_file() and layer.path.stat().st_size == layer.size):
        return None
    return layer


def store(
    key: str,
    make: Callable[[], FileTree],
    *,
    cache: Cache,
    mtime: int = 0,
    compression: Compression | None = None,
    report: Reporter | None = None,
    what: str = "a layer",
) -> Layer:
    """``make()`` the layer for ``key``, write it (its progress on ``report``) and remember it
    for :func:`lookup`."""
    compression = compression or Compression()
    layer = write(make(), cache=cache, mtime=mtime, compression=compression, report=report, what=what)
    meta = json.dumps(record(layer)).encode()
    cache.write_meta(keys.LAYERS, _meta_key(key, mtime=mtime, compression=compression), meta)
    return layer


def write_many(jobs: list[Callable[[], Layer]], *, workers: int | None = None) -> list[Layer]:
    """Run layer-producing callables in parallel (compression releases the GIL); keep order."""
    if len(jobs) <= 1:
        return [job() for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers or min(len(jobs), os.cpu_count() or 2)) as pool:
        return list(pool.map(lambda job: job(), jobs))


@dataclass(frozen=True, slots=True)
class Realised:
    layers: tuple[Layer, ...]  # one per job, in the jobs' order
    reused: int  # how many were found (in the local cache or the shared one)
    made: tuple[bool, ...] = ()  # per job: True when its layer was made now, False when found
    shared: int = 0  # how many of those found came from the shared cache


def realise(
    jobs: Sequence[Job],
    *,
    cache: Cache,
    compression: Compression,
    report: Reporter | None = None,
    base_like: bool = False,
    shared: SharedLayers | None = None,
) -> Realised:
    """Each job's layer: found in the layer cache under its key, else in ``shared`` (when given),
    else made (in parallel), written, remembered and given to ``shared``.  Nothing is made for a
    job whose layer is found.  Writing shows progress on ``report``; ``base_like``: see
    :func:`lookup`."""
    found = [
        lookup(j.key, cache=cache, mtime=j.mtime, compression=compression, base_like=base_like) for j in jobs
    ]
    from_shared = 0
    if shared is not None and os.environ.get("SLIMLINE_NO_LAYER_CACHE") != "1":
        missing = [i for i, f in enumerate(found) if f is None]
        finders = [_finder(jobs[i], shared, cache=cache, compression=compression) for i in missing]
        for i, layer in zip(missing, _parallel(finders), strict=True):
            found[i] = layer
            from_shared += layer is not None
    makers = [
        _maker(j, cache=cache, compression=compression, report=report, shared=shared)
        if f is None
        else _found(f)
        for j, f in zip(jobs, found, strict=True)
    ]
    made = tuple(f is None for f in found)
    return Realised(tuple(write_many(makers)), made.count(False), made=made, shared=from_shared)


def _parallel(jobs: list[Callable[[], Layer | None]]) -> list[Layer | None]:
    """Run lookups (network-bound) a few at a time; keep order."""
    if len(jobs) <= 1:
        return [job() for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(jobs), 4)) as pool:
        return list(pool.map(lambda job: job(), jobs))


def _found(layer: Layer) -> Callable[[], Layer]:
    return lambda: layer


def _finder(
    job: Job, shared: SharedLayers, *, cache: Cache, compression: Compression
) -> Callable[[], Layer | None]:
    """Find ``job``'s layer in ``shared``; remember it locally when its blob is here."""
    key = _meta_key(job.key, mtime=job.mtime, compression=compression)

    def find() -> Layer | None:
        layer = shared.find(key)
        if layer is not None and layer.path.is_file():
            cache.write_meta(keys.LAYERS, key, json.dumps(record(layer)).encode())
        return layer

    return find


def _maker(
    job: Job, *, cache: Cache, compression: Compression, report: Reporter | None, shared: SharedLayers | None
) -> Callable[[], Layer]:
    what = job.created_by.removeprefix("slimline: ") or "a layer"

    def make() -> Layer:
        layer = store(
            job.key, job.make, cache=cache, mtime=job.mtime, compression=compression, report=report, what=what
        )
        if shared is not None:
            shared.keep(_meta_key(job.key, mtime=job.mtime, compression=compression), layer)
        return layer

    return make
