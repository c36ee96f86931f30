"""What ``slimline inspect`` says about one image, as plain data (the ``--json`` document).

The keys are a stable interface (README, "See inside an image"): new keys may be added, none
is renamed or removed without changing :data:`SCHEMA`.  Sizes are bytes: ``compressed`` the
blobs as stored, ``unpacked`` the content bytes of every layer's regular files (tar headers'
sizes: what unpacking the layers writes, hard links and metadata counted as 0), ``files`` the
final file system's regular files (what a container sees), ``wasted`` the bytes of layers'
files that a later layer (or a later entry of the same layer) replaced or removed.  A Python
distribution's ``dropped`` is what slim mode left out of it (its ``SLIMLINE-DROPPED`` list:
``files``, ``size`` in bytes as RECORD says, ``paths`` in the image, sorted), null without one.
"""

from __future__ import annotations

from typing import Any

from slimline.inspect.packages import DebPackage, PyDist, debian, owners, python
from slimline.inspect.scan import Scan, files
from slimline.layers.filetree import Kind
from slimline.oci.image import Image

__all__ = ["BASE_DIGEST", "BASE_NAME", "SCHEMA", "TOP", "image_facts", "wasted"]

SCHEMA = "slimline.inspect/1"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
TOP = 20  # rows of the largest files and of the wasted paths


def _config(image: Image) -> dict[str, Any]:
    c = image.config
    return {
        "entrypoint": list(c.entrypoint) if c.entrypoint is not None else None,
        "cmd": list(c.cmd) if c.cmd is not None else None,
        "user": c.user,
        "working_dir": c.working_dir,
        "env": list(c.env),
        "ports": list(c.exposed_ports),
        "labels": dict(sorted(c.labels.items())),
    }


def _base(image: Image) -> dict[str, str] | None:
    """From slimline's manifest annotations, else labels of the same names."""
    for source in (image.annotations, image.config.labels):
        if source.get(BASE_NAME) or source.get(BASE_DIGEST):
            return {"name": source.get(BASE_NAME, ""), "digest": source.get(BASE_DIGEST, "")}
    return None


def _layers(scan: Scan) -> list[dict[str, Any]]:
    return [
        {
            "index": s.index,
            "digest": s.layer.digest,
            "diff_id": s.layer.diff_id,
            "media_type": s.layer.media_type,
            "compressed": s.layer.size,
            "unpacked": s.unpacked,
            "entries": len(s.members),
            "created_by": s.created_by,
        }
        for s in scan.layers
    ]


def wasted(scan: Scan) -> tuple[int, list[dict[str, Any]]]:
    """Bytes of layer files that no container sees, and those files (largest first): each
    ``by`` "replaced" (a later entry holds the path) or "removed" (the path is gone)."""
    rows: list[dict[str, Any]] = [
        {
            "path": f"/{m.path}",
            "size": m.size,
            "layer": index,
            "by": "replaced" if m.path in scan.final else "removed",
        }
        for index, m, lost in files(scan)
        if lost
    ]
    rows.sort(key=lambda r: (-r["size"], r["path"], r["layer"]))
    return sum(r["size"] for r in rows), rows


def _largest(scan: Scan, owner: dict[str, str]) -> list[dict[str, Any]]:
    found = [(e.size, p) for p, e in scan.final.items() if e.kind is Kind.FILE]
    found.sort(key=lambda t: (-t[0], t[1]))
    return [
        {"path": f"/{p}", "size": size, "layer": scan.origin.get(p, 0), "package": owner.get(p, "")}
        for size, p in found[:TOP]
    ]


def _py(d: PyDist) -> dict[str, Any]:
    return {
        "name": d.name,
        "version": d.version,
        "size": d.size,
        "files": len(d.files),
        "location": d.location,
        "dropped": None
        if d.dropped is None
        else {
            "files": len(d.dropped),
            "size": sum(n for _, n in d.dropped),
            "paths": [p for p, _ in d.dropped],
        },
    }


def _deb(d: DebPackage) -> dict[str, Any]:
    return {
        "name": d.name,
        "version": d.version,
        "architecture": d.architecture,
        "size": d.size,
        "installed_size": d.installed_size,
        "files": len(d.files),
    }


def image_facts(image: Image, scan: Scan) -> tuple[dict[str, Any], dict[str, str]]:
    """The document for one image, and which package owns each path (for the size map)."""
    dists, debs = python(scan.final), debian(scan.final)
    owner = owners(dists, debs)
    waste, rows = wasted(scan)
    facts = {
        "platform": str(image.platform),
        "digest": image.origin or image.digest,
        "created": image.created,
        "config": _config(image),
        "base": _base(image),
        "size": {
            "compressed": sum(layer.size for layer in image.layers),
            "unpacked": scan.unpacked,
            "files": scan.final_size,
            "wasted": waste,
        },
        "layers": _layers(scan),
        "python": [_py(d) for d in dists],
        "debian": [_deb(d) for d in debs],
        "largest_files": _largest(scan, owner),
        "wasted": rows[:TOP],
    }
    return facts, owner
