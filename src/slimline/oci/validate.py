"""Check a written image end to end: an OCI layout directory, or a tar (docker-archive or OCI archive).

What is checked, collecting every problem before raising one :class:`ValidationError`:

* layout: ``oci-layout`` says version 1.0.0; ``index.json`` is an image index; every descriptor
  reachable from it is well-formed and its blob exists with exactly that size and sha256;
  manifests and indexes carry the media type their descriptor names, schemaVersion 2; an image
  manifest's config and layer media types belong to its family (OCI with OCI, Docker with
  Docker); the config has ``rootfs.type == "layers"`` and one diff_id per layer, and matches the
  platform its index entry claims;
* docker-archive ``manifest.json``: Config and Layers exist, the config's file name is its
  sha256, one diff_id per layer, every RepoTag is a fully qualified name; in a combined archive
  each entry's config is the config of an image in ``index.json``;
* with ``deep`` (the default): every layer is decompressed (by its media type, or by its first
  bytes in a legacy archive), its sha256 equals its diff_id, it is a valid tar and no path
  occurs twice in it.

Each blob is read once, however many manifests share it: one pass hashes the stored bytes,
decompresses them, hashes the tar and lists its members (:mod:`slimline.oci.validate_read`).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimline.cache.store import CHUNK
from slimline.errors import SlimlineError
from slimline.oci import image as oci
from slimline.oci.blobs import INDEX_TYPES, MANIFEST_TYPES, MAX_JSON, split_digest
from slimline.oci.reference import ReferenceError_, parse_name
from slimline.oci.validate_read import Dir, Source, Tar, scan_layer

__all__ = ["Checked", "ValidationError", "validate"]

OCI_LAYERS = frozenset({oci.LAYER_TAR, oci.LAYER_GZIP, oci.LAYER_ZSTD})
DOCKER_LAYERS = frozenset({oci.DOCKER_LAYER_TAR, oci.DOCKER_LAYER_GZIP})


class ValidationError(SlimlineError):
    """``path`` is not a valid image; ``problems`` lists every problem found."""

    def __init__(self, *, path: Path, problems: list[str]) -> None:
        listing = "".join(f"\n    - {p}" for p in problems)
        super().__init__(
            f"{len(problems)} problem(s) found:{listing}",
            doing=f"validating the image at {path}",
            hint="the writer produced a broken image or it was changed afterwards; write it again",
        )
        self.path = path
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Checked:
    """What :func:`validate` looked at."""

    manifests: tuple[str, ...]  # digests of the image manifests checked (layout), in order
    archive_images: int  # entries of manifest.json checked (docker-archive)
    blobs: int  # blobs whose size and sha256 were checked
    layers: int  # layers decompressed and checked (deep only)


def validate(path: Path, *, deep: bool = True) -> Checked:
    """Validate the image directory or tar at ``path``; raise :class:`ValidationError` with all problems."""
    if path.is_dir():
        return _Checker(Dir(path), path, deep=deep).run()
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as err:
        raise ValidationError(path=path, problems=[f"not a directory or a readable tar: {err}"]) from err
    with tar:
        return _Checker(Tar(tar), path, deep=deep).run()


class _Checker:
    def __init__(self, src: Source, path: Path, *, deep: bool) -> None:
        self.src, self.path, self.deep = src, path, deep
        self.problems: list[str] = []
        self.blobs: dict[str, bool] = {}  # member name -> blob matched its descriptor
        self.diff_ids: dict[str, str | None] = {}  # member name -> sha256 of the uncompressed tar
        self.manifests: list[str] = []
        self.archive_images = 0
        self.index_configs: set[str] = set()

    def run(self) -> Checked:
        is_layout = self.src.size("index.json") is not None or self.src.size("oci-layout") is not None
        is_archive = self.src.size("manifest.json") is not None
        if is_layout:
            self._layout()
        if is_archive:
            self._archive(compare=is_layout)
        if not is_layout and not is_archive:
            self.problems.append("neither an OCI layout (index.json) nor a docker-archive (manifest.json)")
        if self.problems:
            raise ValidationError(path=self.path, problems=self.problems)
        return Checked(tuple(self.manifests), self.archive_images, len(self.blobs), len(self.diff_ids))

    # -- OCI layout --

    def _layout(self) -> None:
        layout = self._json_file("oci-layout")
        if layout is not None and (
            not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0"
        ):
            self.problems.append(f"oci-layout: imageLayoutVersion is not 1.0.0: {layout!r}")
        index = self._json_file("index.json")
        if index is None:
            return
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            self.problems.append("index.json: not an image index (no manifests list)")
            return
        if index.get("schemaVersion") != 2:
            self.problems.append(f"index.json: schemaVersion is {index.get('schemaVersion')!r}, not 2")
        for i, desc in enumerate(index["manifests"]):
            self._descriptor(desc, f"index.json manifests[{i}]", depth=0)

    def _descriptor(self, desc: Any, where: str, *, depth: int) -> None:
        if not self._well_formed(desc, where):
            return
        media = desc["mediaType"]
        if media in INDEX_TYPES:
            value = self._json_blob(desc, where)
            if value is None:
                return
            self._same_media(value, media, where)
            if depth > 3 or not isinstance(value.get("manifests"), list):
                self.problems.append(f"{where}: not an image index, or nested too deeply")
                return
            for j, child in enumerate(value["manifests"]):
                self._descriptor(child, f"{where} -> manifests[{j}]", depth=depth + 1)
        elif media in MANIFEST_TYPES:
            self._manifest(desc, where)
        else:
            self._blob(desc, where)  # an artifact or something unknown: the bytes at least

    def _manifest(self, desc: Mapping[str, Any], where: str) -> None:
        m = self._json_blob(desc, where)
        if m is None:
            return
        where = f"{where} ({desc['digest']})"
        self.manifests.append(str(desc["digest"]))
        self._same_media(m, desc["mediaType"], where)
        config, layers = m.get("config"), m.get("layers")
        if not isinstance(layers, list) or not self._well_formed(config, f"{where} config"):
            self.problems.append(f"{where}: no config descriptor or no layers list")
            return
        assert isinstance(config, Mapping)
        docker = desc["mediaType"] == oci.DOCKER_MANIFEST
        if config["mediaType"] not in (oci.CONFIG, oci.DOCKER_CONFIG):
            self._blob(config, f"{where} config")  # an artifact: no image checks
            for j, layer in enumerate(layers):
                if self._well_formed(layer, f"{where} layers[{j}]"):
                    self._blob(layer, f"{where} layers[{j}]")
            return
        if config["mediaType"] != (oci.DOCKER_CONFIG if docker else oci.CONFIG):
            self.problems.append(f"{where}: config media type {config['mediaType']} in a {desc['mediaType']}")
        cfg = self._json_blob(config, f"{where} config")
        self.index_configs.add(str(config["digest"]))
        diff_ids = self._diff_ids(cfg, f"{where} config", len(layers))
        if cfg is not None and isinstance(desc.get("platform"), Mapping):
            claimed, actual = oci.parse_platform(desc["platform"]), oci.parse_platform(cfg)
            if (claimed.os, claimed.architecture, claimed.variant) != (
                actual.os,
                actual.architecture,
                actual.variant,
            ):
                self.problems.append(f"{where}: the index says {claimed} but the config says {actual}")
        allowed = DOCKER_LAYERS if docker else OCI_LAYERS
        for j, layer in enumerate(layers):
            lw = f"{where} layers[{j}]"
            if not self._well_formed(layer, lw):
                continue
            if layer["mediaType"] not in allowed:
                self.problems.append(
                    f"{lw}: media type {layer['mediaType']} does not belong in a {desc['mediaType']}"
                )
            name = self._blob(layer, lw)
            if name is not None and diff_ids is not None:
                self._layer(name, layer["mediaType"], diff_ids[j], lw)

    # -- docker-archive --

    def _archive(self, *, compare: bool) -> None:
        entries = self._json_file("manifest.json")
        if not isinstance(entries, list) or not entries:
            self.problems.append("manifest.json: not a non-empty list of images")
            return
        for i, e in enumerate(entries):
            where = f"manifest.json[{i}]"
            self.archive_images += 1
            if (
                not isinstance(e, dict)
                or not isinstance(e.get("Config"), str)
                or not isinstance(e.get("Layers"), list)
            ):
                self.problems.append(f"{where}: needs Config (a path) and Layers (a list)")
                continue
            for tag in e.get("RepoTags") or []:
                try:
                    qualified = str(parse_name(str(tag)))
                except ReferenceError_ as err:
                    self.problems.append(
                        f"{where}: RepoTags entry {tag!r} is not an image name: {err.reason}"
                    )
                    continue
                if qualified != tag:
                    self.problems.append(
                        f"{where}: RepoTags entry {tag!r} is not fully qualified ({qualified}?)"
                    )
            data = self._file_bytes(e["Config"], f"{where} Config")
            if data is None:
                continue
            digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
            named = posixpath.basename(e["Config"]).removesuffix(".json")
            if len(named) == 64 and f"sha256:{named}" != digest:
                self.problems.append(f"{where}: Config {e['Config']} has sha256 {digest}")
            if compare and digest not in self.index_configs:
                self.problems.append(f"{where}: Config {digest} is not the config of any image in index.json")
            try:
                cfg = json.loads(data)
            except ValueError as err:
                self.problems.append(f"{where}: Config {e['Config']} is not JSON: {err}")
                continue
            diff_ids = self._diff_ids(cfg, f"{where} Config", len(e["Layers"]))
            for j, name in enumerate(e["Layers"]):
                lw = f"{where} Layers[{j}] ({name})"
                if not isinstance(name, str) or self.src.size(name) is None:
                    self.problems.append(f"{lw}: missing from the archive")
                elif diff_ids is not None:
                    self._layer(name, None, diff_ids[j], lw)

    # -- pieces --

    def _well_formed(self, desc: Any, where: str) -> bool:
        ok = (
            isinstance(desc, Mapping)
            and isinstance(desc.get("mediaType"), str)
            and split_digest(desc.get("digest")) is not None
            and isinstance(desc.get("size"), int)
            and desc["size"] >= 0
        )
        if not ok:
            self.problems.append(
                f"{where}: not a descriptor with a mediaType, a sha256:<64 lowercase hex digits> digest "
                f"and a size: {desc!r}"[:300]
            )
        return ok

    def _same_media(self, value: Mapping[str, Any], media: str, where: str) -> None:
        if value.get("mediaType") not in (None, media):
            self.problems.append(
                f"{where}: the descriptor says {media} but the blob says {value.get('mediaType')}"
            )
        if value.get("schemaVersion") != 2:
            self.problems.append(f"{where}: schemaVersion is {value.get('schemaVersion')!r}, not 2")

    def _diff_ids(self, cfg: Any, where: str, layers: int) -> list[str] | None:
        if cfg is None:
            return None
        rootfs = cfg.get("rootfs") if isinstance(cfg, dict) else None
        if (
            not isinstance(rootfs, dict)
            or rootfs.get("type") != "layers"
            or not isinstance(rootfs.get("diff_ids"), list)
        ):
            self.problems.append(f"{where}: rootfs is not {{type: layers, diff_ids: [...]}}")
            return None
        if not cfg.get("architecture") or not cfg.get("os"):
            self.problems.append(f"{where}: architecture or os is missing")
        diff_ids = [str(d) for d in rootfs["diff_ids"]]
        if len(diff_ids) != layers:
            self.problems.append(f"{where}: {len(diff_ids)} diff_ids for {layers} layers")
            return None
        return diff_ids

    def _blob(self, desc: Mapping[str, Any], where: str) -> str | None:
        """Check a blob's size and sha256 once; return its member name if it matched."""
        alg, hexdigest = split_digest(desc["digest"]) or ("", "")
        name = f"blobs/{alg}/{hexdigest}"
        if name in self.blobs:
            return name if self.blobs[name] else None
        ok = False
        size = self.src.size(name)
        if size is None:
            self.problems.append(f"{where}: blob {desc['digest']} is missing")
        elif size != desc["size"]:
            self.problems.append(
                f"{where}: blob {desc['digest']} has {size} bytes, the descriptor says {desc['size']}"
            )
        else:
            h = hashlib.sha256()
            with self.src.open(name) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            ok = h.hexdigest() == hexdigest
            if not ok:
                self.problems.append(f"{where}: blob {desc['digest']} has sha256:{h.hexdigest()}")
        self.blobs[name] = ok
        return name if ok else None

    def _json_blob(self, desc: Mapping[str, Any], where: str) -> dict[str, Any] | None:
        name = self._blob(desc, where)
        if name is None:
            return None
        value = self._parse(self._file_bytes(name, where), where)
        if value is not None and not isinstance(value, dict):
            self.problems.append(f"{where}: not a JSON object")
            return None
        return value

    def _json_file(self, name: str) -> Any:
        return self._parse(self._file_bytes(name, name), name)

    def _parse(self, data: bytes | None, where: str) -> Any:
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError as err:
            self.problems.append(f"{where}: not JSON: {err}")
            return None

    def _file_bytes(self, name: str, where: str) -> bytes | None:
        size = self.src.size(name)
        if size is None:
            self.problems.append(f"{where}: {name} is missing")
            return None
        if size > MAX_JSON:
            self.problems.append(f"{where}: {name} is larger than {MAX_JSON} bytes")
            return None
        with self.src.open(name) as f:
            return f.read()

    def _layer(self, name: str, media: str | None, diff_id: str, where: str) -> None:
        """Deep check of one layer: decompress, compare the sha256 with ``diff_id``, list its paths."""
        if not self.deep:
            return
        if name not in self.diff_ids:
            self.diff_ids[name], problems = scan_layer(self.src, name, media, where)
            self.problems += problems
        actual = self.diff_ids[name]
        if actual is not None and actual != diff_id:
            self.problems.append(
                f"{where}: the uncompressed layer has {actual}, the config's diff_id is {diff_id}"
            )
