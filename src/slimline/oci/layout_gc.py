"""What a rewrite of an OCI layout keeps of the old one: its other entries, and the blobs they reach.

:func:`merge` puts the new ``index.json`` entry in place of the entries it replaces (those with
the same ``org.opencontainers.image.ref.name``; for an untagged write, the untagged ones), at
the first one's position, and keeps every other entry in order.  :func:`carry_over` hard-links
(or, across file systems, copies) into the new layout every blob the kept entries reach:
through indexes, manifests, their configs and layers, and ``subject`` references; a referenced
blob the old layout lacks is skipped.  Blobs nothing reaches are left behind (the layout is
garbage-collected), unless an entry cannot be understood (unknown media type, unreadable
manifest): then every old blob is kept.  The old layout's other top-level files come along too.
Neither changes the old layout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from slimline.oci import swap
from slimline.oci.blobs import INDEX_TYPES, MANIFEST_TYPES, MAX_JSON, REF_NAME, split_digest

__all__ = ["carry_over", "drop_stale_referrers", "merge"]

_REFERRERS_TAG = re.compile(r"sha256-([0-9a-f]{64})")


def merge(old: list[Any], entry: dict[str, Any], *, tag: str | None) -> list[Any]:
    """Old entries with ``entry`` in place of the ones it replaces (at the first one's position)."""
    out: list[Any] = []
    placed = False
    for e in old:
        e_tag = (e.get("annotations") or {}).get(REF_NAME) if isinstance(e, dict) else "?"
        if e_tag == tag:
            if not placed:
                out.append(entry)
                placed = True
            continue
        out.append(e)
    if not placed:
        out.append(entry)
    return out


def drop_stale_referrers(old: Path, entries: list[Any], *, alive: set[str]) -> list[Any]:
    """``entries`` without the referrers tags (``sha256-<hex>``) of images no other entry reaches
    in the layout ``old`` and not in ``alive`` (digests the write adds); all kept when the
    layout holds something that cannot be understood."""

    def referrers_of(e: Any) -> str | None:
        tag = (e.get("annotations") or {}).get(REF_NAME) if isinstance(e, dict) else None
        m = _REFERRERS_TAG.fullmatch(tag) if isinstance(tag, str) else None
        return f"sha256:{m[1]}" if m else None

    others = [e for e in entries if referrers_of(e) is None]
    reachable = _reachable(old, [e for e in others if e.get("digest") not in alive])
    if reachable is None:
        return entries
    return [e for e in entries if (d := referrers_of(e)) is None or d in alive or d in reachable]


def carry_over(old: Path, new: Path, kept: list[Any]) -> None:
    """Hard-link the blobs ``kept`` reaches and the old layout's other top-level files into ``new``."""
    reachable = _reachable(old, kept)
    if reachable is None:
        swap.link_tree(old / "blobs", new / "blobs")
    else:
        for digest in sorted(reachable):
            parts = split_digest(digest)
            assert parts is not None  # _reachable only returns well-formed digests
            src = old / "blobs" / parts[0] / parts[1]
            dst = new / "blobs" / parts[0] / parts[1]
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not swap.link(src, dst):
                    swap.copy_file(src, dst)
    for child in old.iterdir():
        if child.name not in ("blobs", "index.json", "oci-layout"):
            swap.link_tree(child, new / child.name)


def _reachable(root: Path, entries: list[Any]) -> set[str] | None:
    """Digests reachable from ``entries``; None if something could not be understood."""
    seen: set[str] = set()
    stack = list(entries)
    while stack:
        d = stack.pop()
        parts = split_digest(d.get("digest")) if isinstance(d, dict) else None
        if parts is None:
            return None
        digest = f"{parts[0]}:{parts[1]}"
        if digest in seen:
            continue
        seen.add(digest)
        path = root / "blobs" / parts[0] / parts[1]
        if not path.is_file():
            continue  # a layout may lack blobs it references
        media = d.get("mediaType")
        if media not in INDEX_TYPES | MANIFEST_TYPES:
            return None
        try:
            value = json.loads(path.read_bytes()) if path.stat().st_size <= MAX_JSON else None
        except (OSError, ValueError):
            return None
        if not isinstance(value, dict):
            return None
        if media in INDEX_TYPES:
            stack.extend(value.get("manifests") or [])
        else:
            for leaf in [value.get("config"), *(value.get("layers") or [])]:
                leaf_parts = split_digest(leaf.get("digest")) if isinstance(leaf, dict) else None
                if leaf_parts is None:
                    return None
                seen.add(f"{leaf_parts[0]}:{leaf_parts[1]}")  # configs and layers are leaves
        if value.get("subject") is not None:
            stack.append(value["subject"])
    return seen
