"""docker-archive tars (``docker-archive:PATH[:NAME:TAG]``) for ``docker load`` and ``podman load``.

Written form: the one Docker 25+ ``docker save`` writes, an OCI image layout plus the classic
``manifest.json`` whose paths point into ``blobs/``.  Classic Docker reads ``manifest.json``;
containerd, podman and skopeo's OCI readers read ``index.json``.  podman 4 loads such a tar as
an OCI archive and names the image from ``io.containerd.image.name``, falling back to
``org.opencontainers.image.ref.name`` *as a full name* (a bare tag there becomes an image
called ``localhost/<tag>:latest``), so both annotations hold the full name
(``localhost/app:1.0``); ``RepoTags`` holds it too.  No name: no annotations, no RepoTags.

The tar is deterministic and PATH is never half-written (:mod:`slimline.oci.archive_tar`).

Reading accepts both forms ``docker save``/``podman save``/``skopeo`` write: legacy
(``<id>/layer.tar`` or ``<diff-id>.tar`` + ``<id>.json`` + ``manifest.json``) and the OCI +
``manifest.json`` form, always through ``manifest.json``.  Each layer is copied into the cache
as stored; its compression is recognised from its first bytes, and its uncompressed sha256
must equal the config's diff_id.  Uncompressed layers become ``LAYER_TAR`` layers whose digest
is their diff_id.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from slimline.cache import keys
from slimline.cache.store import DIGEST_RULE, Cache
from slimline.errors import SlimlineError
from slimline.oci import diffid
from slimline.oci import image as oci
from slimline.oci.archive_tar import write_tar
from slimline.oci.blobs import (
    CONTAINERD_NAME,
    MAX_JSON,
    REF_NAME,
    blob_mismatch,
    check_platform,
    os_errors,
)
from slimline.oci.image import Image, Platform, canonical_json
from slimline.oci.parse import DIGEST, HINT, ImageFormatError, image_from_json
from slimline.oci.reference import DOCKER_HUB, LOCALHOST, ArchiveRef, ReferenceError_, parse_name

__all__ = ["ArchiveError", "read", "write"]

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIFF_IDS = keys.DIFF_IDS  # compressed blob hex -> verified diff_id (slimline.oci.diffid)


class ArchiveError(SlimlineError):
    """A docker-archive that cannot be read or written; ``path`` is the tar."""

    def __init__(self, problem: str, *, path: Path, doing: str, hint: str = "") -> None:
        super().__init__(problem, doing=doing, hint=hint)
        self.path = path


# --- writing ----------------------------------------------------------------------------------


def write(image: Image, ref: ArchiveRef, *, name: str | None = None) -> str:
    """Write ``image`` to the tar ``ref`` atomically; return the image's manifest digest.

    The image is named ``ref.name``, else ``name`` (normalised: ``app:1.0`` ->
    ``localhost/app:1.0``), else left unnamed.
    """
    dest = ref.path.expanduser()
    doing = f"writing {ref}"
    full = ref.name
    if full is None and name is not None:
        try:
            full = str(parse_name(name, default_registry=LOCALHOST))
        except ReferenceError_ as err:
            raise ArchiveError(
                f"the image name {name!r} is not valid: {err.reason}", path=dest, doing=doing
            ) from err
    if dest.is_dir():
        raise ArchiveError(
            f"{dest} is a directory",
            path=dest,
            doing=doing,
            hint="a docker-archive is a file; for a directory use oci:PATH",
        )
    ann = {CONTAINERD_NAME: full, REF_NAME: full} if full else {}
    config_hex = image.config_descriptor.digest.removeprefix("sha256:")
    blobs: dict[str, bytes | oci.Layer] = {
        config_hex: image.config_bytes,
        image.digest.removeprefix("sha256:"): image.manifest_bytes,
    }
    for layer in image.layers:
        blobs.setdefault(layer.digest.removeprefix("sha256:"), layer)
    manifest_json = canonical_json(
        [
            {
                "Config": f"blobs/sha256/{config_hex}",
                "RepoTags": [full] if full else [],
                "Layers": [f"blobs/sha256/{layer.digest.removeprefix('sha256:')}" for layer in image.layers],
            }
        ]
    )
    index = oci.index_bytes([image.descriptor(annotations=ann)])
    with os_errors(lambda problem: ArchiveError(problem, path=dest, doing=doing)):
        write_tar(dest, blobs, index, manifest_json, doing=doing)
    return image.digest


# --- reading ----------------------------------------------------------------------------------


def read(ref: ArchiveRef, *, platform: Platform, cache: Cache) -> Image:
    """The image ``ref`` names (or its only image), checked against ``platform``; layers copied into
    ``cache`` and verified against the config's diff_ids."""
    path = ref.path.expanduser()
    doing = f"reading {ref}"
    with os_errors(lambda problem: ArchiveError(problem, path=path, doing=doing)):
        return _read(ref, path, platform=platform, cache=cache, doing=doing)


def _read(ref: ArchiveRef, path: Path, *, platform: Platform, cache: Cache, doing: str) -> Image:
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as err:
        raise ArchiveError(f"cannot open {path} as a tar: {err}", path=path, doing=doing) from err
    with tar:  # (a tar damaged after its index raises tarfile.TarError while reading: see below)
        members = {_norm(m.name): m for m in tar.getmembers()}
        entries = _json_member(tar, members, "manifest.json", path=path, doing=doing)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
            raise ArchiveError("manifest.json is not a non-empty list of images", path=path, doing=doing)
        entry = _choose(entries, ref, path=path, doing=doing)
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise ArchiveError("manifest.json lacks Config or Layers", path=path, doing=doing)
        config_bytes, config, diff_ids = _config(ref, tar, members, config_name, len(layer_names), path=path)
        check_platform(oci.parse_platform(config), platform, source=str(ref))
        descs = [
            _import_layer(tar, members, str(n), str(d), i, cache=cache, path=path, doing=doing)
            for i, (n, d) in enumerate(zip(layer_names, diff_ids, strict=True))
        ]
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": oci.MANIFEST,
            "config": {
                "mediaType": oci.CONFIG,
                "digest": oci.sha256_digest(config_bytes),
                "size": len(config_bytes),
            },
            "layers": descs,
        }
    )
    try:
        image = image_from_json(manifest, config_bytes, blob_path=cache.digest_path)
    except ImageFormatError as err:
        raise ArchiveError(str(err), path=path, doing=doing, hint=HINT) from err
    diffid.verify(image.layers, cache=cache, source=str(ref))
    return image


def _config(
    ref: ArchiveRef,
    tar: tarfile.TarFile,
    members: Mapping[str, tarfile.TarInfo],
    name: str,
    layers: int,
    *,
    path: Path,
) -> tuple[bytes, dict[str, Any], list[str]]:
    """(bytes, JSON, diff_ids) of the image config ``name``, checked against the digest its name
    claims and against the number of ``layers`` manifest.json lists."""
    doing = f"reading {ref}"
    data = _member_bytes(tar, members, name, path=path, doing=doing)
    digest = oci.sha256_digest(data)
    named = posixpath.basename(name).removesuffix(".json")
    if len(named) == 64 and f"sha256:{named}" != digest:
        raise blob_mismatch(
            what="the image config", source=str(ref), expected=f"sha256:{named}", actual=digest
        )
    try:
        config = json.loads(data)
        diff_ids = list(config["rootfs"]["diff_ids"])
    except (ValueError, KeyError, TypeError) as err:
        raise ArchiveError(f"the image config {name} is not valid: {err}", path=path, doing=doing) from err
    if len(diff_ids) != layers:
        raise ArchiveError(
            f"manifest.json lists {layers} layers but the config has {len(diff_ids)} diff_ids",
            path=path,
            doing=doing,
        )
    if bad := [d for d in diff_ids if not (isinstance(d, str) and DIGEST.fullmatch(d))]:
        raise ArchiveError(
            f"the config has diff_ids that are not {DIGEST_RULE}: {str(bad[:3])[:200]}",
            path=path,
            doing=doing,
        )
    return data, config, diff_ids


def _norm(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


def _choose(entries: list[dict[str, Any]], ref: ArchiveRef, *, path: Path, doing: str) -> dict[str, Any]:
    names = [str(t) for e in entries for t in e.get("RepoTags") or []]
    if ref.name is None:
        if len(entries) == 1:
            return entries[0]
        raise ArchiveError(
            f"{path} holds {len(entries)} images (names: {', '.join(names) or 'none'})",
            path=path,
            doing=doing,
            hint="name one: docker-archive:PATH:NAME:TAG",
        )
    for lenient in (False, True):
        for e in entries:
            if any(_same_name(str(t), ref.name, lenient=lenient) for t in e.get("RepoTags") or []):
                return e
    raise ArchiveError(
        f"{path} has no image named {ref.name} (names: {', '.join(names) or 'none'})", path=path, doing=doing
    )


def _same_name(tag: str, want: str, *, lenient: bool) -> bool:
    """``tag`` (as written in RepoTags) names ``want`` (localhost-normalised).  Leniently, a short
    name also matches its Docker Hub spelling (``app:1`` = ``docker.io/library/app:1``)."""
    try:
        if str(parse_name(tag, default_registry=LOCALHOST)) == want:
            return True
        short = want.removeprefix(f"{LOCALHOST}/")
        return (
            lenient
            and short != want
            and (
                str(parse_name(tag, default_registry=DOCKER_HUB))
                == str(parse_name(short, default_registry=DOCKER_HUB))
            )
        )
    except ReferenceError_:
        return False


def _member(
    tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], name: str, *, path: Path, doing: str
) -> IO[bytes]:
    info = members.get(_norm(name))
    stream = (
        tar.extractfile(info) if info is not None and info.isfile() else None
    )  # no links: they may point out
    if stream is None:
        raise ArchiveError(f"{name} is missing from the archive (or is not a file)", path=path, doing=doing)
    return stream


def _member_bytes(
    tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], name: str, *, path: Path, doing: str
) -> bytes:
    with _member(tar, members, name, path=path, doing=doing) as f:
        data = f.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ArchiveError(f"{name} is larger than {MAX_JSON} bytes", path=path, doing=doing)
    return data


def _json_member(
    tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], name: str, *, path: Path, doing: str
) -> Any:
    try:
        return json.loads(_member_bytes(tar, members, name, path=path, doing=doing))
    except ValueError as err:
        raise ArchiveError(f"{name} is not JSON: {err}", path=path, doing=doing) from err


def _import_layer(
    tar: tarfile.TarFile,
    members: Mapping[str, tarfile.TarInfo],
    name: str,
    diff_id: str,
    i: int,
    *,
    cache: Cache,
    path: Path,
    doing: str,
) -> dict[str, Any]:
    """Copy one layer into the cache; return its descriptor (JSON).  Its diff_id is checked by
    the caller (:func:`slimline.oci.diffid.verify`)."""
    what = f"layer {i + 1} ({name})"
    info = members.get(_norm(name))
    size = info.size if info is not None and info.isfile() else -1
    # Shortcuts that trust the cache's contract (a blob's file name is the sha256 of its bytes):
    # an uncompressed layer already stored under its diff_id, or a blob stored under the digest
    # its member name claims whose diff_id was verified before.  Either way the image gets
    # exactly the bytes the config's diff_id names.
    if _cached_size(cache, diff_id) == size:
        return {"mediaType": oci.LAYER_TAR, "digest": diff_id, "size": size}
    claimed = posixpath.basename(_norm(name))
    if _HEX64.fullmatch(claimed) and _cached_size(cache, f"sha256:{claimed}") == size:
        known = cache.read_meta(_DIFF_IDS, claimed)
        if known is not None and known.decode() == diff_id:
            with cache.blob_path(claimed).open("rb") as f:
                media = oci.LAYER_ZSTD if f.read(4).startswith(_ZSTD_MAGIC) else oci.LAYER_GZIP
            return {"mediaType": media, "digest": f"sha256:{claimed}", "size": size}
    with _member(tar, members, name, path=path, doing=doing) as stream:
        head = stream.peek(4)[:4] if isinstance(stream, io.BufferedReader) else b""
        hexdigest, size = cache.put_stream(stream, what=what)  # type: ignore[arg-type]
    if not head:
        with cache.blob_path(hexdigest).open("rb") as f:
            head = f.read(4)
    media = (
        oci.LAYER_GZIP
        if head.startswith(_GZIP_MAGIC)
        else oci.LAYER_ZSTD
        if head.startswith(_ZSTD_MAGIC)
        else oci.LAYER_TAR
    )
    return {"mediaType": media, "digest": f"sha256:{hexdigest}", "size": size}


def _cached_size(cache: Cache, digest: str) -> int | None:
    try:
        return cache.digest_path(digest).stat().st_size
    except (OSError, ValueError):
        return None
