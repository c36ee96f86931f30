"""OCI image layouts on disk (``oci:PATH[:TAG]``): read one image out, write images in atomically.

Reading (:func:`read`) copies every blob it uses into the cache's blob store, verifying digest
and size while it streams; the returned image's layers point into the cache, never into the
layout, so the layout may change or vanish afterwards.

Writing (:func:`write`) never changes the existing layout in place.  The exact sequence:

1. take an exclusive ``flock`` on PATH's parent directory (slimline writers there take turns),
   and clean up what an interrupted earlier write left (see step 4);
2. read PATH's ``index.json`` if PATH is a layout: keep every entry except the ones the new
   entry replaces (same ``org.opencontainers.image.ref.name``; for an untagged write, the
   untagged entries);
3. build the complete new layout in ``PATH/../.NAME.slimline-new-XXXX``: the new images' blobs
   (layers copied from their files, hashed and counted while copied; a blob the old layout
   already holds with the same digest and size is hard-linked instead, not re-hashed:
   :func:`slimline.oci.validate.validate` checks a result end to end), every blob reachable
   from the kept entries and every other top-level file of the old layout (hard links),
   then ``oci-layout`` and ``index.json``; fsync the files and directories;
4. swap: ``renameat2(RENAME_EXCHANGE)`` exchanges the new directory and PATH in one atomic
   step.  Where the kernel or filesystem lacks it: rename PATH to ``.NAME.slimline-old-PID``,
   then the new directory to PATH; an interruption between the two renames leaves the old
   layout under that name, and the next write renames it back before anything else;
5. delete the old layout (now under the temporary name) and fsync the parent.

Steps 1, 4 and 5 and the clean-up are :mod:`slimline.oci.swap`; which entries step 2 keeps and
which blobs step 3 carries over, :mod:`slimline.oci.layout_gc`.

Any failure before step 4 deletes the temporary directory: PATH is left byte-identical.  Blobs
that no kept entry reaches are not carried over (the layout is garbage-collected); if an entry
cannot be understood (unknown media type, unreadable manifest), every old blob is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from slimline.cache.store import DIGEST_RULE, Cache
from slimline.errors import SlimlineError
from slimline.oci import diffid, layout_gc, swap
from slimline.oci import image as oci
from slimline.oci.blobs import (
    CONTAINERD_NAME,
    INDEX_TYPES,
    LAYOUT_FILE,
    MAX_JSON,
    REF_NAME,
    PlatformMismatch,
    blob_mismatch,
    check_platform,
    containerd_name,
    copy_verified,
    import_blob,
    open_layer,
    os_errors,
    split_digest,
)
from slimline.oci.image import Image, Platform, canonical_json, choose_manifest
from slimline.oci.parse import HINT, ImageFormatError, image_from_json
from slimline.oci.reference import OciRef
from slimline.oci.referrers import Artifact, is_referrers_tag, layout_entries

__all__ = ["LayoutError", "PlatformMismatch", "read", "write"]


class LayoutError(SlimlineError):
    """An OCI layout that cannot be read or replaced; ``path`` is the layout directory."""

    def __init__(self, problem: str, *, path: Path, doing: str, hint: str = "") -> None:
        super().__init__(problem, doing=doing, hint=hint)
        self.path = path


# --- reading ----------------------------------------------------------------------------------


def read(ref: OciRef, *, platform: Platform, cache: Cache) -> Image:
    """The image ``ref`` names, for ``platform``, with its blobs copied (verified) into ``cache``."""
    with os_errors(lambda problem: LayoutError(problem, path=ref.path, doing=f"reading {ref}")):
        return _read(ref, platform=platform, cache=cache)


def _read(ref: OciRef, *, platform: Platform, cache: Cache) -> Image:
    root, source = ref.path, str(ref)
    index = _load_index(root, doing=f"reading {ref}")
    desc: Mapping[str, Any] = _select(index, ref)
    raw, data = _json_blob(root, desc, what="the tagged manifest", source=source)
    for _ in range(4):  # an index may point at an index
        if not (desc.get("mediaType") in INDEX_TYPES or (not desc.get("mediaType") and "manifests" in data)):
            break
        entry = choose_manifest(data, platform)
        if entry is None:
            available = [
                str(oci.parse_platform(m["platform"]))
                for m in data.get("manifests") or ()
                if isinstance(m, dict) and isinstance(m.get("platform"), dict)
            ]
            raise PlatformMismatch(source=source, wanted=platform, available=available)
        desc = entry
        raw, data = _json_blob(root, desc, what=f"the {platform} manifest", source=source)
    config = data.get("config")
    if not isinstance(config, Mapping) or not isinstance(data.get("layers"), list):
        raise LayoutError(f"{desc.get('digest')} is not an image manifest", path=root, doing=f"reading {ref}")
    config_bytes = _blob_bytes(root, config, what="the image config", source=source)
    try:
        image = image_from_json(raw, config_bytes, blob_path=cache.digest_path)
    except ImageFormatError as err:
        raise LayoutError(str(err), path=root, doing=f"reading {ref}", hint=HINT) from err
    check_platform(image.platform, platform, source=source)
    image = dataclasses.replace(image, origin=str(desc.get("digest") or ""))  # verified by _json_blob
    for i, layer in enumerate(image.layers):
        src = _blob_file(root, layer.digest, source=source)
        try:
            import_blob(
                src.open_rb,
                digest=layer.digest,
                size=layer.size,
                cache=cache,
                what=f"layer {i + 1} ({layer.digest})",
                source=source,
            )
        except FileNotFoundError as err:
            raise LayoutError(
                f"layer {i + 1} ({layer.digest}) is missing from {root / 'blobs'}",
                path=root,
                doing=f"reading {ref}",
            ) from err
    diffid.verify(image.layers, cache=cache, source=source)
    return image


class _File:
    def __init__(self, path: Path) -> None:
        self.path = path

    def open_rb(self) -> BinaryIO:
        return self.path.open("rb")


def _load_index(root: Path, *, doing: str) -> dict[str, Any]:
    if not (root / "oci-layout").is_file():
        raise LayoutError(
            f"{root} is not an OCI image layout (it has no oci-layout file)",
            path=root,
            doing=doing,
            hint="write one with slimline build --to oci:PATH or skopeo copy ... oci:PATH:TAG",
        )
    try:
        with (root / "index.json").open("rb") as f:
            raw = f.read(MAX_JSON + 1)
        if len(raw) > MAX_JSON:
            raise LayoutError(
                f"{root / 'index.json'} is larger than {MAX_JSON} bytes: not an image index",
                path=root,
                doing=doing,
            )
        index = json.loads(raw)
    except (OSError, ValueError) as err:
        raise LayoutError(
            f"{root / 'index.json'} is missing or not JSON: {err}", path=root, doing=doing
        ) from err
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise LayoutError(f"{root / 'index.json'} is not an image index", path=root, doing=doing)
    return index


def _tag(entry: Any) -> str | None:
    """An index entry's ``org.opencontainers.image.ref.name``, if it has one."""
    annotations = entry.get("annotations") if isinstance(entry, dict) else None
    tag = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return str(tag) if tag else None


def _tags(index: Mapping[str, Any]) -> list[str]:
    return [tag for e in index["manifests"] if (tag := _tag(e))]


def _select(index: Mapping[str, Any], ref: OciRef) -> Mapping[str, Any]:
    entries = [e for e in index["manifests"] if isinstance(e, dict)]
    tags = ", ".join(_tags(index)) or "none"
    if ref.tag is not None:
        for e in entries:
            if _tag(e) == ref.tag:
                return e
        raise LayoutError(
            f"{ref.path} has no image tagged {ref.tag!r} (tags: {tags})",
            path=ref.path,
            doing=f"reading {ref}",
            hint="name one of its tags: oci:PATH:TAG",
        )
    entries = [e for e in entries if not is_referrers_tag(_tag(e))]  # (documents, not images)
    if len(entries) != 1:
        raise LayoutError(
            f"{ref.path} holds {len(entries)} images, so oci:PATH must name one (tags: {tags})",
            path=ref.path,
            doing=f"reading {ref}",
            hint="use oci:PATH:TAG",
        )
    return entries[0]


def _blob_file(root: Path, digest: object, *, source: str) -> _File:
    parts = split_digest(digest)
    if parts is None:
        raise LayoutError(
            f"a descriptor names the digest {str(digest)[:150]!r}, not {DIGEST_RULE}",
            path=root,
            doing=f"reading {source}",
            hint="the layout is malformed or malicious; check where it came from",
        )
    return _File(root / "blobs" / parts[0] / parts[1])


def _blob_bytes(root: Path, desc: Mapping[str, Any], *, what: str, source: str) -> bytes:
    """A small blob's bytes, verified against ``desc``'s digest and size."""
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(size, int) or not isinstance(digest, str) or size > MAX_JSON or size < 0:
        raise LayoutError(
            f"{what} has a bad descriptor (digest {digest!r}, size {size!r})",
            path=root,
            doing=f"reading {source}",
        )
    f = _blob_file(root, digest, source=source)
    try:
        with f.open_rb() as stream:
            data = stream.read(size + 1)
    except FileNotFoundError as err:
        raise LayoutError(
            f"{what} {digest} is missing from {root / 'blobs'}", path=root, doing=f"reading {source}"
        ) from err
    if len(data) != size or f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        actual = f"{len(data)} bytes" if len(data) != size else f"sha256:{hashlib.sha256(data).hexdigest()}"
        raise blob_mismatch(
            what=what, source=source, expected=digest if len(data) == size else f"{size} bytes", actual=actual
        )
    return data


def _json_blob(
    root: Path, desc: Mapping[str, Any], *, what: str, source: str
) -> tuple[bytes, dict[str, Any]]:
    data = _blob_bytes(root, desc, what=what, source=source)
    try:
        value = json.loads(data)
    except ValueError as err:
        raise LayoutError(
            f"{what} {desc.get('digest')} is not JSON: {err}", path=root, doing=f"reading {source}"
        ) from err
    if not isinstance(value, dict):
        raise LayoutError(
            f"{what} {desc.get('digest')} is not a JSON object", path=root, doing=f"reading {source}"
        )
    return data, value


# --- writing ----------------------------------------------------------------------------------


def write(
    images: Sequence[Image],
    ref: OciRef,
    *,
    annotations: Mapping[str, str] | None = None,
    name: str | None = None,
    referrers: Sequence[Artifact] = (),
) -> str:
    """Write ``images`` (one per platform) to the layout ``ref`` atomically; return the digest to pull by.

    One image: ``index.json`` lists its manifest.  Several: an image index blob lists them and
    ``index.json`` lists that index.  The entry carries ``annotations`` plus, with a tag,
    ``org.opencontainers.image.ref.name`` = the tag and ``io.containerd.image.name`` = the full
    name (:func:`containerd_name`, from the tag or ``name``).  Other tags in the layout stay.
    ``referrers`` (about these images) go in as :func:`slimline.oci.referrers.layout_entries`
    says; a referrers tag whose image the layout no longer holds is dropped.
    """
    if not images:
        raise ValueError("write() needs at least one image")
    platforms = [str(img.platform) for img in images]
    if len(set(platforms)) != len(platforms):
        raise SlimlineError(
            f"two images for the same platform ({', '.join(platforms)})", doing=f"writing {ref}"
        )
    ann = dict(annotations or {})
    if ref.tag is not None:
        ann[REF_NAME] = ref.tag
        if (full := containerd_name(ref.tag, name)) is not None:
            ann[CONTAINERD_NAME] = full
    json_blobs: dict[str, bytes] = {}
    layer_blobs: dict[str, oci.Layer] = {}
    for img in images:
        json_blobs[img.config_descriptor.digest] = img.config_bytes
        json_blobs[img.digest] = img.manifest_bytes
        for layer in img.layers:
            layer_blobs.setdefault(layer.digest, layer)
    if len(images) == 1:
        entry = images[0].descriptor(annotations=ann).to_json()
    else:
        index = oci.index_bytes([img.descriptor() for img in images])
        digest = oci.sha256_digest(index)
        json_blobs[digest] = index
        entry = oci.Descriptor(oci.INDEX, digest, len(index), ann).to_json()

    extra_blobs, extra = layout_entries(referrers) if referrers else ({}, [])
    json_blobs.update(extra_blobs)
    dest = ref.path.expanduser().resolve()
    doing = f"writing {ref}"
    with os_errors(lambda problem: LayoutError(problem, path=dest, doing=doing)):
        _publish(dest, entry, json_blobs, layer_blobs, tag=ref.tag, doing=doing, extra=extra)
    return str(entry["digest"])


def _publish(
    dest: Path,
    entry: dict[str, Any],
    json_blobs: Mapping[str, bytes],
    layer_blobs: Mapping[str, oci.Layer],
    *,
    tag: str | None,
    doing: str,
    extra: Sequence[tuple[str, dict[str, Any]]] = (),
) -> None:
    """Steps 1-5 of the module docstring (``extra``: more entries, by tag: referrers)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with swap.locked(dest.parent):
        swap.recover(dest)
        old = _existing(dest, doing=doing)
        entries = layout_gc.merge(old["manifests"] if old else [], entry, tag=tag)
        for extra_tag, extra_entry in extra:
            entries = layout_gc.merge(entries, extra_entry, tag=extra_tag)
        if old is not None:
            alive = {d for d in json_blobs if d != entry["digest"]} | {str(entry["digest"])}
            entries = layout_gc.drop_stale_referrers(dest, entries, alive=alive)
        tmp = swap.new_dir(dest)
        try:
            os.chmod(tmp, 0o755)
            blobs = tmp / "blobs" / "sha256"
            blobs.mkdir(parents=True)
            swap.write_files(blobs, json_blobs, old=dest / "blobs" / "sha256" if old is not None else None)
            for digest, layer in layer_blobs.items():
                target = blobs / digest.removeprefix("sha256:")
                previous = dest / "blobs" / "sha256" / target.name
                if old is not None and swap.same_size(previous, layer.size) and swap.link(previous, target):
                    continue
                _copy_layer(layer, target, source=doing)
            if old is not None:
                layout_gc.carry_over(dest, tmp, [e for e in entries if e is not entry])
            swap.write_file(tmp / "oci-layout", LAYOUT_FILE)
            top = {
                k: v for k, v in (old or {}).items() if k not in ("manifests", "schemaVersion", "mediaType")
            }
            swap.write_file(
                tmp / "index.json",
                canonical_json({**top, "schemaVersion": 2, "mediaType": oci.INDEX, "manifests": entries}),
            )
            for d in (blobs, blobs.parent, tmp):
                swap.fsync_dir(d)
            swap.replace_dir(tmp, dest, has_old=old is not None)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _existing(dest: Path, *, doing: str) -> dict[str, Any] | None:
    """The current index.json of ``dest``, or None if ``dest`` is absent or an empty directory."""
    if not dest.exists():
        return None
    if not dest.is_dir():
        raise LayoutError(
            f"{dest} exists and is not a directory",
            path=dest,
            doing=doing,
            hint="choose another path for the OCI layout, or remove the file",
        )
    if (dest / "oci-layout").exists():
        return _load_index(dest, doing=doing)
    if any(dest.iterdir()):
        raise LayoutError(
            f"{dest} is a directory with files in it but not an OCI image layout; refusing to replace it",
            path=dest,
            doing=doing,
            hint="choose a new or empty directory for the OCI layout",
        )
    return None


def _copy_layer(layer: oci.Layer, dst: Path, *, source: str) -> None:
    what = f"layer {layer.digest}"
    src = open_layer(layer, doing=source)
    with src, dst.open("xb") as out:
        copy_verified(src, out, digest=layer.digest, size=layer.size, what=what, source=str(layer.path))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(dst, 0o644)
