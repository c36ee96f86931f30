"""Slim mode's lists for the SBOM (slimline.build.dropped): kept as a layer is made, then found in
the cache's record of the blob, in the blob itself, or in the tree made again; real trees
pruned by slim mode from a real wheel, real layer blobs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slimline import layers
from slimline.build.dropped import Watch, by_distribution
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.layers.filetree import FileTree, TreeBuilder
from slimline.layers.job import Job
from slimline.oci.image import Platform
from slimline.target import Target
from slimline.trees import install, slim
from tests.artifacts.helpers import make_wheel

VENV = "app/.venv"
SITE = f"{VENV}/lib/python3.11/site-packages"
TARGET = Target(Platform("amd64"), (3, 11, 2), "/usr/bin/python3.11", "glibc", (2, 36))
EXTRA = {"tinydep/tests/test_core.py": b"def test(): pass\n", "tinydep/core.pyi": b"X: int\n"}


def _job(tmp: Path, calls: list[int]) -> Job:
    wheel = tmp / "tinydep-0.3.0-py3-none-any.whl"
    wheel.write_bytes(make_wheel("tinydep", "0.3.0", extra=EXTRA))

    def make() -> FileTree:
        calls.append(1)
        tree = install.wheel_tree(wheel, target=TARGET, prefix="/" + VENV)
        return slim.prune(tree, venv=VENV, site=SITE)

    return Job("deps-key", make, "slimline: dependencies tinydep 0.3.0", 0)


def test_a_list_is_kept_as_made_then_read_from_the_record_the_blob_or_the_tree(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    calls: list[int] = []
    job = _job(tmp_path, calls)
    watch = Watch()
    (watched,) = watch.jobs([job])
    layer = layers.write(watched.make(), cache=cache)
    made = watch.dropped([watched], [layer], cache=cache)
    expected = {"tinydep": tuple(sorted((f"/{SITE}/{p}", len(data)) for p, data in EXTRA.items()))}
    assert made == expected and len(calls) == 1
    records = list((tmp_path / "cache" / keys.SLIM_DROPPED).rglob("*"))
    assert [p for p in records if p.is_file()]

    found = Watch()  # the next build: the layer found, its record read; nothing made
    assert found.dropped(found.jobs([job]), [layer], cache=cache) == expected and len(calls) == 1
    for p in records:
        if p.is_file():
            p.unlink()
    again = Watch()  # the record gone: read from the blob, and recorded again
    assert again.dropped(again.jobs([job]), [layer], cache=cache) == expected and len(calls) == 1
    assert [p for p in (tmp_path / "cache" / keys.SLIM_DROPPED).rglob("*") if p.is_file()]
    elsewhere = dataclasses.replace(layer, digest="sha256:" + "0" * 64, path=tmp_path / "absent")
    last = Watch()  # the blob not on this machine (a shared cache's): the tree made again
    assert last.dropped(last.jobs([job]), [elsewhere], cache=cache) == expected and len(calls) == 2


def test_unwatched_jobs_and_layers_without_lists_give_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    tree = TreeBuilder()
    tree.data(f"{SITE}/plain/__init__.py", b"")
    layer = layers.write(tree.freeze(), cache=cache)
    job = Job("k", lambda: tree.freeze(), "x", 0)
    watch = Watch()
    assert watch.dropped([job], [layer], cache=cache) == {}  # not watched: not even read
    assert watch.dropped(watch.jobs([job]), [layer], cache=cache) == {}


def test_an_oversized_list_in_a_blob_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from slimline.build import dropped

    cache = Cache(tmp_path / "cache")
    tree = TreeBuilder()
    listing = b"x/tests/t.py,,\n" * 10
    tree.data(f"{SITE}/x-1.dist-info/{slim.DROPPED}", listing)
    layer = layers.write(tree.freeze(), cache=cache)
    monkeypatch.setattr(dropped, "MAX_LIST", 20)
    watch = Watch()
    with pytest.raises(SlimlineError, match=f"SLIMLINE-DROPPED list of {len(listing)} bytes"):
        watch.dropped(watch.jobs([Job("k", tree.freeze, "x", 0)]), [layer], cache=cache)


def test_lists_by_distribution_resolve_paths_outside_site_packages() -> None:
    listing = "../../../include/site/python3.11/my_pkg/a.h,sha256=x,5\nmy_pkg/tests/t.py,,\n"
    got = by_distribution({f"{SITE}/My_Pkg-1.0.dist-info/{slim.DROPPED}": listing})
    assert got == {
        "my-pkg": ((f"/{VENV}/include/site/python3.11/my_pkg/a.h", 5), (f"/{SITE}/my_pkg/tests/t.py", 0))
    }
