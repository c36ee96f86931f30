"""The local registry of the bench: the real ``docker-registry`` on loopback, and what it holds.

The server is started by ``tests.oci.registry_helpers.registry`` (the same set-up the tests use).
Here: counting the blob uploads it logged (one completed upload is one ``PUT`` to
``/v2/NAME/blobs/uploads/...`` answered 201; cross-repository mounts and blobs the client
found already present by ``HEAD`` are not uploads), and measuring an image it holds through
the registry API: compressed bytes (the manifest's layer sizes, what a pull downloads),
unpacked bytes (the layer tars after decompression, what the image's file system holds) and
uncompressed layer digests (``diff_ids``) to tell a base's layers from the rest.
"""

from __future__ import annotations

import http.client
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_UPLOAD = re.compile(r'"PUT /v2/\S+/blobs/uploads/\S*[?&]digest=\S+ HTTP/[\d.]+" 201 ')


def uploads(log: Path) -> int:
    """Completed blob uploads in the registry's access log so far."""
    return len(_UPLOAD.findall(log.read_text(errors="replace")))


@dataclass(frozen=True)
class LayerSize:
    diff_id: str
    compressed: int
    unpacked: int


@dataclass(frozen=True)
class ImageSize:
    layers: tuple[LayerSize, ...]

    @property
    def compressed(self) -> int:
        return sum(layer.compressed for layer in self.layers)

    @property
    def unpacked(self) -> int:
        return sum(layer.unpacked for layer in self.layers)

    def minus(self, base: ImageSize) -> tuple[int, int]:
        """(compressed, unpacked) bytes of the layers that are not the base's (by diff_id)."""
        own = {layer.diff_id for layer in base.layers}
        rest = [layer for layer in self.layers if layer.diff_id not in own]
        return sum(x.compressed for x in rest), sum(x.unpacked for x in rest)


def _get(host: str, path: str, accept: str = "*/*") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, timeout=120)
    conn.request("GET", path, headers={"Accept": accept})
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"bench: GET {path} from the local registry answered {resp.status}")
    return resp


def _unpacked(host: str, name: str, digest: str, media_type: str) -> int:
    resp = _get(host, f"/v2/{name}/blobs/{digest}")
    if "zstd" in media_type:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(resp)
        total = 0
        while chunk := reader.read(1 << 20):
            total += len(chunk)
        return total
    inflate = zlib.decompressobj(wbits=47) if ("gzip" in media_type or "tar.gz" in media_type) else None
    total = 0
    while chunk := resp.read(1 << 20):
        total += len(inflate.decompress(chunk)) if inflate else len(chunk)
    return total


def image_size(host: str, name: str, tag: str) -> ImageSize:
    """Sizes of ``host/name:tag`` read through the registry API (see the module contract)."""
    manifest = json.loads(_get(host, f"/v2/{name}/manifests/{tag}", ACCEPT).read())
    config = json.loads(_get(host, f"/v2/{name}/blobs/{manifest['config']['digest']}").read())
    diff_ids = config["rootfs"]["diff_ids"]
    return ImageSize(
        tuple(
            LayerSize(diff_id, layer["size"], _unpacked(host, name, layer["digest"], layer["mediaType"]))
            for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True)
        )
    )
