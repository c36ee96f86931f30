"""The size map's tree (``sizemap.tree``) of a synthetic image: it covers every byte of every
layer (the total from tarfile over the layout's blobs), each node adds up, small parts are
merged so the tree stays small, and bytes a later layer removed stay with their package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimline.cache.store import Cache
from slimline.context import Context
from slimline.inspect import summary
from slimline.inspect.scan import scan
from slimline.inspect.sizemap import DETAIL, MAX_CHILDREN, tree
from slimline.oci import transports
from slimline.oci.image import Platform
from slimline.oci.reference import parse
from tests.inspect.images import build, read_layout, write_layout
from tests.inspect.test_inspect import LIBFOO, specs
from tests.inspect.test_page import many_files


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("c", ()):
        out += _nodes(child)
    return out


def test_the_tree_covers_every_layer_byte_and_adds_up(tmp_path: Path) -> None:
    ref = write_layout(build(Cache(tmp_path / "make"), [*specs(), many_files()]), tmp_path / "l", "v1")
    ctx = Context(Cache(tmp_path / "cache"))
    image = transports.read(parse(ref, role="base"), platform=Platform.parse("linux/amd64"), ctx=ctx)
    scanned = scan(image)
    _, owner = summary.image_facts(image, scanned)
    root = tree(scanned, owner)
    blobs = read_layout(tmp_path / "l", "v1")
    assert root["v"] == sum(size for layer in blobs.layers for size, _ in layer.values())
    nodes = _nodes(root)
    for node in nodes:
        if "c" in node:
            assert node["v"] == sum(c["v"] for c in node["c"]) and len(node["c"]) <= MAX_CHILDREN + 1
    assert all(
        n["v"] >= root["v"] // DETAIL for n in nodes if "c" not in n and not n["n"].endswith("smaller)")
    )
    assert len(nodes) < 600  # 400 data files and the rest, merged: the page stays small
    layer1 = root["c"][[c["n"] for c in root["c"]].index("layer 1: base: debian files")]
    libfoo = next(c for c in layer1["c"] if c["n"] == "debian: libfoo")
    big = 50_000  # opt/big.bin: named by libfoo, removed by layer 3
    assert libfoo["v"] == sum(len(d) for d in LIBFOO.values()) + big and libfoo["x"] == big
