"""The build cache shared through a registry (``cache-repo``): what a build looks up there
before making it, and gives to it after.

:func:`open_shared` reads the setting (``cache-repo``, ``--cache-repo``, else
``SLIMLINE_CACHE_REPO``; read-only with ``cache-repo-readonly``, ``--cache-repo-readonly`` or
``SLIMLINE_CACHE_REPO_READONLY=1``) and returns a :class:`Sharing`, or None without one.  It
adapts the records of :mod:`slimline.oci.cacherepo` to the narrow interfaces the stages take:

* layers (``layer-<key>``, the layer cache's full key): :class:`slimline.layers.shared.SharedLayers`
  for :func:`slimline.layers.realise`;
* built wheels (``wheel-<key>``: sdists keyed as the local wheel cache keys them, the project's
  own wheel by its source tree): :class:`slimline.artifacts.buildenv.SharedWheels`;
* Debian bases (``base-<key>``, the local pin's key): the pin and the base's layers, so a
  runner needs neither the Debian archive nor the compression of the base:
  :class:`slimline.base.resolve.SharedPins`;
* what grouping needs of a plan's wheels (``infos-<key>``, keyed by every wheel hash of the
  plan): :meth:`Sharing.recall_infos` / :meth:`Sharing.keep_infos`, so a runner whose layers
  are all shared downloads no wheel.

Blobs found are downloaded into the local cache (verified) unless every output is a
repository of the cache's own registry: then they stay there and the push mounts them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slimline.artifacts.wheelcache import store_wheel
from slimline.artifacts.wheelinfo import WheelInfo
from slimline.cache import keys
from slimline.cache.store import sha256_file
from slimline.context import Context
from slimline.errors import SlimlineError
from slimline.oci import reference
from slimline.oci.cacherepo import Blob, CacheRepo
from slimline.oci.image import Image, Layer
from slimline.oci.parse import image_from_json
from slimline.oci.reference import Ref, RegistryRef
from slimline.project.settings import Settings

__all__ = ["Sharing", "open_shared"]

WHEEL_MEDIA = "application/vnd.slimline.wheel"  # a wheel (a zip) as a cache record's blob


def open_shared(settings: Settings, outputs: Sequence[Ref], *, load: bool, ctx: Context) -> Sharing | None:
    """The shared cache the settings or the environment name, or None."""
    text = settings.cache_repo or os.environ.get("SLIMLINE_CACHE_REPO", "").strip()
    if not text:
        return None
    readonly = settings.cache_repo_readonly or os.environ.get("SLIMLINE_CACHE_REPO_READONLY") == "1"
    ref = _repository(text)
    # the outputs need the blobs here unless they all go to the cache's registry (mounted there)
    mounted = (
        bool(outputs)
        and not load
        and all(isinstance(o, RegistryRef) and o.registry == ref.registry for o in outputs)
    )
    return Sharing(CacheRepo(ref, ctx=ctx, readonly=readonly, fetch=not mounted), ctx=ctx)


def _repository(text: str) -> RegistryRef:
    name = text.removeprefix("docker://")
    ref = reference.parse(f"docker://{name}", role="output")
    if not isinstance(ref, RegistryRef) or "@" in name or ":" in name.rpartition("/")[2]:
        raise SlimlineError(
            f"cache-repo {text!r} is not a repository name",
            doing="reading the cache-repo setting",
            hint="name a repository without tag or digest, e.g. registry.example/team/slimline-cache",
        )
    return RegistryRef(ref.registry, ref.repository)


class Sharing:
    """One build's view of the shared cache (thread-safe: the repository's session is)."""

    def __init__(self, repo: CacheRepo, *, ctx: Context) -> None:
        self.repo, self._ctx = repo, ctx
        self.layers = _Layers(repo, ctx)
        self.wheels = _Wheels(repo, ctx)
        self.bases = _Bases(repo, ctx)

    def recall_infos(self, shas: Sequence[str]) -> bool:
        """Record locally what the shared cache knows of the wheels ``shas``; whether it knew."""
        entry = self.repo.get("infos", _infos_key(shas))
        if entry is None:
            return False
        infos = entry.record.get("infos")
        if not isinstance(infos, dict) or set(infos) != set(shas):
            return False
        for sha, d in infos.items():
            try:
                packages = {str(k): str(v) for k, v in d["packages"].items()}
                info = WheelInfo(int(d["size"]), tuple(map(str, d["needs"])), packages)
            except (KeyError, TypeError, ValueError, AttributeError):
                return False
            info.remember(sha, cache=self._ctx.cache)
        return True

    def keep_infos(self, infos: Mapping[str, WheelInfo]) -> None:
        """Give the shared cache what is known of these wheels (by hash)."""
        record = {
            sha: {"size": i.size, "needs": list(i.needs), "packages": dict(i.packages)}
            for sha, i in infos.items()
        }
        self.repo.put("infos", _infos_key(list(infos)), {"infos": record})

    def summary(self) -> str:
        return self.repo.summary()


def _infos_key(shas: Sequence[str]) -> str:
    return keys.key("shared-wheel-infos", sorted(shas))


class _Layers:
    def __init__(self, repo: CacheRepo, ctx: Context) -> None:
        self._repo, self._ctx = repo, ctx

    def find(self, key: str) -> Layer | None:
        entry = self._repo.get("layer", key)
        if entry is None or entry.blob is None:
            return None
        diff_id = str(entry.record.get("diff_id", ""))
        b = entry.blob
        layer = Layer(b.digest, diff_id, b.size, b.media_type, self._ctx.cache.digest_path(b.digest))
        if entry.path is not None and not self._verified(layer):
            return None
        return layer

    def _verified(self, layer: Layer) -> bool:
        """The layer's diff_id checked by decompressing its blob (a record may lie about it)."""
        from slimline.oci import diffid

        try:
            diffid.verify([layer], cache=self._ctx.cache, source=f"the shared cache {self._repo.ref}")
        except SlimlineError as err:
            self._repo.counts.add(hits=-1, ignored=1)
            self._ctx.report.step(f"warning: shared cache layer {layer.digest} ignored: {err.problem}")
            return False
        return True

    def keep(self, key: str, layer: Layer) -> None:
        blob = Blob(layer.digest, layer.size, layer.media_type)
        self._repo.put("layer", key, {"diff_id": layer.diff_id}, [(blob, layer.open)])


class _Wheels:
    def __init__(self, repo: CacheRepo, ctx: Context) -> None:
        self._repo, self._ctx = repo, ctx

    def find(self, key: str, *, package: str) -> Path | None:
        entry = self._repo.get("wheel", key, fetch=True)
        if entry is None or entry.blob is None or entry.path is None:
            return None
        filename = str(entry.record.get("filename", ""))
        try:
            return store_wheel(self._ctx.cache, entry.path, entry.blob.digest[7:], filename)
        except SlimlineError as err:  # a file name that is not a wheel's
            self._ctx.report.step(f"warning: shared cache wheel {filename[:80]!r} ignored: {err.problem}")
            return None

    def keep(self, key: str, wheel: Path) -> None:
        sha = sha256_file(wheel)
        blob = Blob(f"sha256:{sha}", wheel.stat().st_size, WHEEL_MEDIA)
        self._repo.put("wheel", key, {"filename": wheel.name}, [(blob, lambda: wheel.open("rb"))])


class _Bases:
    """Pins of Debian bases; their layers are always fetched (the build reads the base's files)."""

    def __init__(self, repo: CacheRepo, ctx: Context) -> None:
        self._repo, self._ctx = repo, ctx

    def find(self, key: str) -> Mapping[str, Any] | None:
        entry = self._repo.get("base", key, fetch=True)
        if entry is None:
            return None
        record = entry.record
        try:
            image = image_from_json(
                str(record["manifest"]).encode(),
                str(record["config"]).encode(),
                blob_path=self._ctx.cache.digest_path,
            )
            float(record["at"])
        except (KeyError, TypeError, ValueError, SlimlineError) as err:
            self._ignored(key, f"its pin is malformed ({err})")
            return None
        if [lay.digest for lay in image.layers] != [b.digest for b in entry.blobs]:
            self._ignored(key, "its pin names other layers than it holds")
            return None
        from slimline.oci import diffid

        try:
            diffid.verify(image.layers, cache=self._ctx.cache, source=f"the shared cache {self._repo.ref}")
        except SlimlineError as err:
            self._ignored(key, err.problem)
            return None
        # "held": the base's Debian packages, as the SBOM lists them (pins without it are made again)
        return {k: record[k] for k in ("at", "manifest", "config", "held") if k in record}

    def _ignored(self, key: str, why: str) -> None:
        self._repo.counts.add(hits=-1, ignored=1)
        self._ctx.report.step(f"warning: shared cache record base-{key[:12]} ignored: {why}")

    def keep(self, key: str, record: Mapping[str, Any], image: Image) -> None:
        blobs = [(Blob(lay.digest, lay.size, lay.media_type), lay.open) for lay in image.layers]
        self._repo.put("base", key, dict(record), blobs)
