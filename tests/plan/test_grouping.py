"""The layer grouping policy (slimline.plan.grouping)."""

from __future__ import annotations

import pytest

from slimline.plan.grouping import BIG, bucket_of, group
from slimline.plan.grouping import Item as Pkg

MiB = 1024 * 1024


SMALL = [Pkg(f"pkg-{i:02d}", 50_000 + i) for i in range(40)]
LARGE = [Pkg("numpy", 40 * MiB), Pkg("pandas", 60 * MiB), Pkg("scipy", 80 * MiB)]


def as_names(layers: list[list[Pkg]]) -> list[list[str]]:
    return [[p.name for p in layer] for layer in layers]


def test_big_packages_get_their_own_layer_first() -> None:
    layers = group([*SMALL, *LARGE])
    assert as_names(layers)[:3] == [["numpy"], ["pandas"], ["scipy"]]
    rest = [p for layer in layers[3:] for p in layer]
    assert sorted(rest, key=lambda p: p.name) == SMALL
    assert all(p.size < BIG for p in rest)
    assert len(layers) <= 3 + 4


def test_every_item_once_and_sorted_within_layers() -> None:
    layers = group([*reversed(SMALL), *LARGE])
    flat = [p.name for layer in layers for p in layer]
    assert sorted(flat) == sorted(p.name for p in [*SMALL, *LARGE])
    assert all(layer == sorted(layer, key=lambda p: p.name) for layer in layers)


def test_deterministic_and_independent_of_input_order() -> None:
    assert group([*SMALL, *LARGE]) == group([*reversed(LARGE), *reversed(SMALL)])


def test_one_changed_package_changes_one_layer() -> None:
    before = group([*SMALL, *LARGE])
    upgraded = [Pkg(p.name, p.size + 1) if p.name == "pkg-07" else p for p in SMALL]
    after = group([*upgraded, *LARGE])
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1 and "pkg-07" in [p.name for p in after[changed[0]]]
    added = group([*SMALL, Pkg("zzz-new", 10), *LARGE])
    old = {tuple(layer) for layer in as_names(before)}
    new = {tuple(layer) for layer in as_names(added)}
    assert len(new - old) == 1 and len(old - new) <= 1


def test_layer_count_is_bounded() -> None:
    many_big = [Pkg(f"big-{i:02d}", (20 + i) * MiB) for i in range(30)]
    layers = group([*SMALL, *many_big], max_layers=16, buckets=4)
    assert len(layers) <= 16
    singles = [layer[0].name for layer in layers if len(layer) == 1 and layer[0].size >= BIG]
    assert sorted(singles) == [f"big-{i:02d}" for i in range(18, 30)]  # the 12 largest keep their own layer
    assert sum(len(layer) for layer in layers) == len(SMALL) + 30


def test_small_inputs_and_bucket_stability() -> None:
    assert group([]) == []
    assert group([Pkg("only", 1)]) == [[Pkg("only", 1)]]
    assert bucket_of("requests", 4) == bucket_of("requests", 4)
    assert {bucket_of(p.name, 4) for p in SMALL} == {0, 1, 2, 3}
    assert len(group(SMALL, max_layers=1)) == 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        group(SMALL, max_layers=0)
    with pytest.raises(ValueError, match="duplicate names"):
        group([Pkg("a", 1), Pkg("a", 2)])
