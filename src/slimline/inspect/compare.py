"""What changed from image A to image B, as plain data (the ``diff --json`` document).

Contract of :func:`diff`: both scans must have been made with ``hashes=True``.  Packages are
compared by name (Python names normalised as PEP 503 does); a package present in both with
another version is "changed".  Layers are compared position by position (slimline's images
keep base, venv, dependencies and project in the same places) and each of B's layers is
``reused`` when A has a layer with the same diff_id anywhere.  Files are the final file
systems' non-directory entries: "modified" when the kind, a regular file's size or content
digest, or a link's target differs.  Sizes as in :mod:`slimline.inspect.summary`.
"""

from __future__ import annotations

import re
from typing import Any

from slimline.inspect.packages import debian, python
from slimline.inspect.scan import LayerScan, Scan
from slimline.layers.filetree import Kind
from slimline.layers.read import FinalEntry
from slimline.oci.image import Image

__all__ = ["SCHEMA", "diff"]

SCHEMA = "slimline.diff/1"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _versions(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for name, version in pairs:
        out.setdefault(name, []).append(version)
    return {name: ", ".join(sorted(set(v))) for name, v in out.items()}


def _changes(a: dict[str, str], b: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {
        "added": [{"name": n, "version": b[n]} for n in sorted(b.keys() - a.keys())],
        "removed": [{"name": n, "version": a[n]} for n in sorted(a.keys() - b.keys())],
        "changed": [
            {"name": n, "from": a[n], "to": b[n]} for n in sorted(a.keys() & b.keys()) if a[n] != b[n]
        ],
    }


def _packages(a: Scan, b: Scan) -> dict[str, Any]:
    py_a = _versions([(_norm(d.name), d.version) for d in python(a.final)])
    py_b = _versions([(_norm(d.name), d.version) for d in python(b.final)])
    deb_a = _versions([(d.name, d.version) for d in debian(a.final)])
    deb_b = _versions([(d.name, d.version) for d in debian(b.final)])
    return {"python": _changes(py_a, py_b), "debian": _changes(deb_a, deb_b)}


def _layer(s: LayerScan | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "digest": s.layer.digest,
        "diff_id": s.layer.diff_id,
        "compressed": s.layer.size,
        "unpacked": s.unpacked,
        "created_by": s.created_by,
    }


def _layers(a: Scan, b: Scan) -> list[dict[str, Any]]:
    in_a = {s.layer.diff_id for s in a.layers}
    rows = []
    for i in range(max(len(a.layers), len(b.layers))):
        la = a.layers[i] if i < len(a.layers) else None
        lb = b.layers[i] if i < len(b.layers) else None
        rows.append(
            {
                "index": i + 1,
                "a": _layer(la),
                "b": _layer(lb),
                "reused": lb is not None and lb.layer.diff_id in in_a,
                "delta": {
                    "compressed": (lb.layer.size if lb else 0) - (la.layer.size if la else 0),
                    "unpacked": (lb.unpacked if lb else 0) - (la.unpacked if la else 0),
                },
            }
        )
    return rows


def _same(pa: str, ea: FinalEntry, a: Scan, eb: FinalEntry, b: Scan) -> bool:
    if ea.kind is not eb.kind:
        return False
    if ea.kind is Kind.FILE:
        return ea.size == eb.size and a.digests.get(pa) == b.digests.get(pa)
    return ea.target == eb.target


def _files(a: Scan, b: Scan) -> dict[str, list[dict[str, Any]]]:
    fa = {p: e for p, e in a.final.items() if e.kind is not Kind.DIR}
    fb = {p: e for p, e in b.final.items() if e.kind is not Kind.DIR}

    def row(path: str, e: FinalEntry) -> dict[str, Any]:
        return {"path": f"/{path}", "size": e.size if e.kind is Kind.FILE else 0}

    added = sorted((row(p, e) for p, e in fb.items() if p not in fa), key=lambda r: (-r["size"], r["path"]))
    removed = sorted((row(p, e) for p, e in fa.items() if p not in fb), key=lambda r: (-r["size"], r["path"]))
    modified: list[dict[str, Any]] = [
        {"path": f"/{p}", "a_size": _size(fa[p]), "b_size": _size(fb[p])}
        for p in fa.keys() & fb.keys()
        if not _same(p, fa[p], a, fb[p], b)
    ]
    modified.sort(key=lambda r: (-abs(r["b_size"] - r["a_size"]), r["path"]))
    return {"added": added, "removed": removed, "modified": modified}


def _size(e: FinalEntry) -> int:
    return e.size if e.kind is Kind.FILE else 0


def _side(ref: str, image: Image) -> dict[str, str]:
    return {"reference": ref, "digest": image.origin or image.digest, "platform": str(image.platform)}


def diff(a: tuple[str, Image, Scan], b: tuple[str, Image, Scan]) -> dict[str, Any]:
    """The document comparing ``a`` and ``b`` (reference text, image, scan with hashes)."""
    (ref_a, image_a, scan_a), (ref_b, image_b, scan_b) = a, b

    def sizes(va: int, vb: int) -> dict[str, int]:
        return {"a": va, "b": vb, "delta": vb - va}

    compressed_a = sum(layer.size for layer in image_a.layers)
    compressed_b = sum(layer.size for layer in image_b.layers)
    return {
        "schema": SCHEMA,
        "a": _side(ref_a, image_a),
        "b": _side(ref_b, image_b),
        "size": {
            "compressed": sizes(compressed_a, compressed_b),
            "unpacked": sizes(scan_a.unpacked, scan_b.unpacked),
            "files": sizes(scan_a.final_size, scan_b.final_size),
        },
        **_packages(scan_a, scan_b),
        "layers": _layers(scan_a, scan_b),
        "files": _files(scan_a, scan_b),
    }
