"""The size map of an image: a tree layer -> package -> directory -> file, small parts merged.

Contract of :func:`tree`: a node is ``{"n": name, "v": bytes, "c": [children]}`` (``"c"`` only
on inner nodes, ``"x"``: bytes of its files that a later layer replaced or removed, when any).
Every node's ``v`` is the sum of its children's, and the root's is the image's unpacked size
(every layer's regular files, :attr:`slimline.inspect.scan.Scan.unpacked`): nothing is dropped,
small parts are merged.  Files of 0 bytes are left out (they cover no area).  Below a layer,
a file goes under the package that owns it (``(no package)`` else), then its directories,
with chains of single directories joined into one node ("usr/lib/python3").  A node keeps at
most :data:`MAX_CHILDREN` children and only those of at least ``total / DETAIL`` bytes; the
rest become one node "(N smaller)": the page stays small whatever the image holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slimline.inspect.scan import Scan, files

__all__ = ["DETAIL", "MAX_CHILDREN", "MAX_DEPTH", "tree"]

DETAIL = 2000  # the smallest node shown is this fraction of the whole image
MAX_CHILDREN = 60
MAX_DEPTH = 48  # directories below a package; deeper parts stay in the file's name
NO_PACKAGE = "(no package)"


class _Dir:
    __slots__ = ("dirs", "files")

    def __init__(self) -> None:
        self.dirs: dict[str, _Dir] = {}
        self.files: list[tuple[str, int, bool]] = []  # name, size, wasted

    def add(self, parts: list[str], size: int, wasted: bool) -> None:
        node = self
        for part in parts[:-1]:
            node = node.dirs.setdefault(part, _Dir())
        node.files.append((parts[-1], size, wasted))


def _node(name: str, d: _Dir) -> dict[str, Any]:
    while not d.files and len(d.dirs) == 1:  # join a chain of single directories
        ((sub, d),) = d.dirs.items()
        name = f"{name}/{sub}" if name else sub
    children = [_node(n, sub) for n, sub in d.dirs.items()]
    children += [{"n": n, "v": size, **({"x": size} if wasted else {})} for n, size, wasted in d.files]
    return _inner(name or "/", children)


def _inner(name: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": name, "v": sum(c["v"] for c in children), "c": children}
    wasted = sum(c.get("x", 0) for c in children)
    if wasted:
        out["x"] = wasted
    return out


def _prune(node: dict[str, Any], floor: int) -> dict[str, Any]:
    children = node.get("c")
    if children is None:
        return node
    children = sorted(children, key=lambda c: (-c["v"], c["n"]))
    keep = [c for c in children[:MAX_CHILDREN] if c["v"] >= floor]
    rest = children[len(keep) :]
    kept = [_prune(c, floor) for c in keep]
    if rest:
        merged: dict[str, Any] = {"n": f"({len(rest)} smaller)", "v": sum(c["v"] for c in rest)}
        wasted = sum(c.get("x", 0) for c in rest)
        if wasted:
            merged["x"] = wasted
        kept.append(merged)
    return {**node, "c": kept}


def tree(scan: Scan, owner: Mapping[str, str]) -> dict[str, Any]:
    """The size map of a scanned image (see the module's contract)."""
    layers = []
    packages: list[dict[str, _Dir]] = [{} for _ in scan.layers]
    for index, m, wasted in files(scan):
        parts = m.path.split("/")
        if len(parts) > MAX_DEPTH:  # (recursion stays shallow whatever the image's paths)
            parts = [*parts[: MAX_DEPTH - 1], "/".join(parts[MAX_DEPTH - 1 :])]
        packages[index - 1].setdefault(owner.get(m.path, NO_PACKAGE), _Dir()).add(parts, m.size, wasted)
    for s, found in zip(scan.layers, packages, strict=True):
        made = f": {s.created_by[:80]}" if s.created_by else ""
        layers.append(_inner(f"layer {s.index}{made}", [_package(name, d) for name, d in found.items()]))
    root = _inner("image", layers)
    return _prune(root, max(1, root["v"] // DETAIL))


def _package(name: str, files: _Dir) -> dict[str, Any]:
    top = _node("", files)
    return {**top, "n": name} if top["n"] == "/" else _inner(name, [top])
