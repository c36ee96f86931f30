"""layers.realise with a shared cache (slimline.layers.shared.SharedLayers).

The shared cache here is a second real slimline cache directory standing for another machine:
what one realise gives it, a realise on an empty cache finds there and does not make again.
"""

from __future__ import annotations

from pathlib import Path

from slimline import layers
from slimline.cache.store import Cache
from slimline.layers.filetree import FileTree, TreeBuilder
from slimline.layers.job import Job
from slimline.oci.image import Layer


class OtherMachine:
    """A SharedLayers kept in another cache directory; blobs copied in on a find."""

    def __init__(self, root: Path, here: Cache) -> None:
        self.store, self.here = Cache(root), here
        self.records: dict[str, Layer] = {}

    def find(self, key: str) -> Layer | None:
        layer = self.records.get(key)
        if layer is None:
            return None
        with layer.open() as f:
            self.here.put_stream(f, expected=layer.digest[7:])
        return Layer(
            layer.digest, layer.diff_id, layer.size, layer.media_type, self.here.digest_path(layer.digest)
        )

    def keep(self, key: str, layer: Layer) -> None:
        with layer.open() as f:
            self.store.put_stream(f, expected=layer.digest[7:])
        self.records[key] = Layer(
            layer.digest, layer.diff_id, layer.size, layer.media_type, self.store.digest_path(layer.digest)
        )


def _jobs(made: list[str]) -> list[Job]:
    def tree(name: str) -> FileTree:
        made.append(name)
        tb = TreeBuilder()
        tb.data(f"{name}.txt", name.encode() * 1000)
        return tb.freeze()

    return [Job(f"key-{n}", lambda n=n: tree(n), f"layer {n}", 0) for n in ("a", "b", "c")]  # type: ignore[misc]


def test_a_second_machine_finds_every_layer_and_makes_none(tmp_path: Path) -> None:
    first, second = Cache(tmp_path / "one"), Cache(tmp_path / "two")
    shared = OtherMachine(tmp_path / "shared", first)
    made_first: list[str] = []
    one = layers.realise(_jobs(made_first), cache=first, compression=layers.Compression(), shared=shared)
    assert made_first == ["a", "b", "c"] and one.shared == 0 and len(shared.records) == 3

    shared.here = second
    made_second: list[str] = []
    two = layers.realise(_jobs(made_second), cache=second, compression=layers.Compression(), shared=shared)
    assert made_second == []
    assert (two.reused, two.shared) == (3, 3)
    assert [x.digest for x in two.layers] == [x.digest for x in one.layers]
    assert all(x.path.is_file() for x in two.layers)

    # found in the shared cache, remembered here: a third realise needs neither
    shared.records.clear()
    three = layers.realise(_jobs(made_second), cache=second, compression=layers.Compression(), shared=shared)
    assert made_second == [] and (three.reused, three.shared) == (3, 0)


def test_a_layer_the_shared_cache_lacks_is_made_and_given_to_it(tmp_path: Path) -> None:
    here = Cache(tmp_path / "here")
    shared = OtherMachine(tmp_path / "shared", here)
    made: list[str] = []
    layers.realise(
        _jobs(made)[:1], cache=Cache(tmp_path / "elsewhere"), compression=layers.Compression(), shared=shared
    )
    made.clear()
    got = layers.realise(_jobs(made), cache=here, compression=layers.Compression(), shared=shared)
    assert made == ["b", "c"] and got.shared == 1 and len(shared.records) == 3
