"""Image values: platforms, descriptors, layers, configs and images.

Everything here is immutable.  "Mutations" (:meth:`Image.append`, :meth:`Image.with_config`)
return new values.  An :class:`Image` serialises its config and manifest once, canonically
(sorted keys, no spaces), so that the same value always has the same digest.

A :class:`Layer` knows its compressed ``digest`` (the blob, what manifests list) and its
uncompressed ``diff_id`` (what the config lists); they are equal for uncompressed layers.
Its blob lives in a file (normally the cache's blob store); :meth:`Layer.open` returns a
fresh stream of the *compressed* bytes that the caller must close.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "CONFIG",
    "EMPTY_EPOCH",
    "INDEX",
    "LAYER_GZIP",
    "LAYER_TAR",
    "LAYER_ZSTD",
    "MANIFEST",
    "Config",
    "Descriptor",
    "History",
    "Image",
    "Layer",
    "Platform",
    "canonical_json",
    "rfc3339",
]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"

EMPTY_EPOCH = "1970-01-01T00:00:00Z"


def canonical_json(value: Any) -> bytes:
    """The one serialisation slimline uses for JSON it hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(epoch: int) -> str:
    """``epoch`` (seconds since 1970, UTC) as the RFC 3339 time OCI configs hold."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Platform:
    """OCI platform names (``amd64``, ``arm64``), never wheel or Debian names."""

    architecture: str
    os: str = "linux"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/amd64``, ``linux/arm64/v8``, ``amd64`` or ``arm64``."""
        parts = text.strip().split("/")
        if len(parts) == 1:
            return cls(architecture=parts[0]).normalised()
        if len(parts) in (2, 3):
            return cls(
                os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else ""
            ).normalised()
        raise ValueError(f"not a platform: {text!r} (expected os/arch[/variant], e.g. linux/arm64)")

    def normalised(self) -> Platform:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(self.architecture, self.architecture)
        variant = self.variant
        if arch == "arm64" and variant == "":
            variant = "v8"
        return replace(self, architecture=arch, variant=variant)

    def to_json(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_json()
        return d


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str  # "sha256:<hex>" of the blob as stored (compressed)
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    size: int  # bytes of the blob as stored
    media_type: str
    path: Path  # the blob on disk
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, self.annotations)


@dataclass(frozen=True, slots=True)
class History:
    created_by: str
    created: str = EMPTY_EPOCH
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"created": self.created, "created_by": self.created_by}
        if self.comment:
            d["comment"] = self.comment
        if self.empty_layer:
            d["empty_layer"] = True
        return d


@dataclass(frozen=True, slots=True)
class Config:
    """The runtime part of an image config (the ``config`` object), plus what slimline reads of the rest.

    ``extra`` keeps fields of a base image's ``config`` object that slimline does not model
    (Healthcheck, Volumes, OnBuild, ...), so they survive a rebuild unchanged.
    """

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def with_env(self, **values: str) -> Config:
        """Set (or replace) environment variables, keeping the order of the others."""
        current = self.env_map()
        current.update(values)
        return replace(self, env=tuple(f"{k}={v}" for k, v in current.items()))

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        if self.env:
            d["Env"] = list(self.env)
        if self.entrypoint is not None:
            d["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            d["Cmd"] = list(self.cmd)
        if self.working_dir:
            d["WorkingDir"] = self.working_dir
        if self.user:
            d["User"] = self.user
        if self.labels:
            d["Labels"] = dict(self.labels)
        if self.exposed_ports:
            d["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.stop_signal:
            d["StopSignal"] = self.stop_signal
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Config:
        """The ``config`` object of an image config; a field of the wrong type raises ValueError."""
        d = dict(d or {})
        known = {"Env", "Entrypoint", "Cmd", "WorkingDir", "User", "Labels", "ExposedPorts", "StopSignal"}
        labels = d.get("Labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError("Labels is not an object of strings")
        return cls(
            env=_strings(d.get("Env") or (), "Env"),
            entrypoint=_strings(d["Entrypoint"], "Entrypoint") if d.get("Entrypoint") is not None else None,
            cmd=_strings(d["Cmd"], "Cmd") if d.get("Cmd") is not None else None,
            working_dir=str(d.get("WorkingDir") or ""),
            user=str(d.get("User") or ""),
            labels=labels,
            exposed_ports=_strings(sorted(d.get("ExposedPorts") or {}), "ExposedPorts"),
            stop_signal=str(d.get("StopSignal") or ""),
            extra={k: v for k, v in d.items() if k not in known and v is not None},
        )


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} is not a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class Image:
    """One platform's image: layers (base first) + config + manifest annotations."""

    platform: Platform
    layers: tuple[Layer, ...] = ()
    config: Config = field(default_factory=Config)
    history: tuple[History, ...] = ()
    created: str = EMPTY_EPOCH
    annotations: Mapping[str, str] = field(default_factory=dict)
    media_type: str = MANIFEST  # MANIFEST or DOCKER_MANIFEST
    # The digest of the manifest this value was read from, as its source (e.g. a registry) names
    # it; "" for images slimline made.  Every "mutation" clears it: the result is a new image.
    origin: str = field(default="", compare=False)

    def append(self, layers: tuple[Layer, ...], history: tuple[History, ...]) -> Image:
        if len(layers) != len(history):
            raise ValueError("one history entry per appended layer")
        return replace(self, layers=self.layers + layers, history=self.history + history, origin="")

    def with_config(self, config: Config) -> Image:
        return replace(self, config=config, origin="")

    def with_annotations(self, **values: str) -> Image:
        return replace(self, annotations={**self.annotations, **values}, origin="")

    def with_created(self, created: str) -> Image:
        return replace(self, created=created, origin="")

    # -- serialisation (computed once per value) --
    @cached_property
    def config_bytes(self) -> bytes:
        d: dict[str, Any] = {
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "created": self.created,
            "config": self.config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
            "history": [h.to_json() for h in self.history],
        }
        if self.platform.variant:
            d["variant"] = self.platform.variant
        return canonical_json(d)

    @cached_property
    def config_descriptor(self) -> Descriptor:
        media = DOCKER_CONFIG if self.media_type == DOCKER_MANIFEST else CONFIG
        return Descriptor(media, sha256_digest(self.config_bytes), len(self.config_bytes))

    @cached_property
    def manifest_bytes(self) -> bytes:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config_descriptor.to_json(),
            "layers": [layer.descriptor().to_json() for layer in self.layers],
        }
        if self.annotations and self.media_type == MANIFEST:
            d["annotations"] = dict(self.annotations)
        return canonical_json(d)

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    def descriptor(self, *, annotations: Mapping[str, str] | None = None) -> Descriptor:
        return Descriptor(
            self.media_type, self.digest, len(self.manifest_bytes), annotations or {}, self.platform
        )


def index_bytes(manifests: list[Descriptor], *, annotations: Mapping[str, str] | None = None) -> bytes:
    d: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [m.to_json() for m in manifests],
    }
    if annotations:
        d["annotations"] = dict(annotations)
    return canonical_json(d)


def parse_platform(d: Mapping[str, Any]) -> Platform:
    return Platform(
        architecture=str(d.get("architecture", "")),
        os=str(d.get("os", "")),
        variant=str(d.get("variant") or ""),
    ).normalised()


def choose_manifest(index: Mapping[str, Any], platform: Platform) -> Mapping[str, Any] | None:
    """The entry of an image index (OCI or Docker list) for ``platform``, or None.

    Entries without a platform or for ``unknown/unknown`` (attestations) are skipped; an empty
    arm64 variant counts as ``v8``.
    """
    want = platform.normalised()
    entries = index.get("manifests")
    for entry in entries if isinstance(entries, list) else ():
        p = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(p, dict) or p.get("os") == "unknown":
            continue
        got = parse_platform(p)
        if (got.os, got.architecture) == (want.os, want.architecture) and (
            not want.variant or not got.variant or got.variant == want.variant
        ):
            return dict(entry)
    return None
