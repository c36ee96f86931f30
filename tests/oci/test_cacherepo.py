"""Records of a shared build cache in a real registry (``docker-registry``), through a recording proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline import layers
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.layers.filetree import TreeBuilder
from slimline.oci.cacherepo import Blob, CacheRepo, tag
from slimline.oci.credentials import Credentials
from slimline.oci.image import Layer
from slimline.oci.reference import RegistryRef
from slimline.oci.registry import push
from slimline.oci.registry_client import Session
from tests.oci.registry_helpers import Proxy, free_port, image, registry
from tests.support import Lines

pytestmark = pytest.mark.container  # Debian's docker-registry, as the other registry tests

KEY = "ab" * 32
WRITES = ("PUT", "POST", "PATCH", "DELETE")


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    with registry(tmp_path / "reg") as reg:
        p = Proxy(reg.host)
        try:
            yield p
        finally:
            p.close()


def _repo(
    proxy: Proxy, cache: Cache, *, readonly: bool = False, fetch: bool = True
) -> tuple[CacheRepo, Lines]:
    lines = Lines()
    ctx = Context(cache=cache, report=lines)
    ref = RegistryRef(proxy.host, "team/cache")
    return CacheRepo(ref, ctx=ctx, readonly=readonly, fetch=fetch, credentials=Credentials(())), lines


def _layer(cache: Cache, text: str = "hello") -> Layer:
    tb = TreeBuilder()
    tb.data("hello.txt", text.encode() * 100)
    return layers.write(tb.freeze(), cache=cache)


def _put_layer(repo: CacheRepo, layer: Layer) -> None:
    repo.put(
        "layer",
        KEY,
        {"diff_id": layer.diff_id},
        [(Blob(layer.digest, layer.size, layer.media_type), layer.open)],
    )


def test_a_record_written_by_one_cache_is_found_by_another_with_its_blob_verified(
    proxy: Proxy, tmp_path: Path
) -> None:
    writer, _ = _repo(proxy, Cache(tmp_path / "a"))
    layer = _layer(writer._ctx.cache)
    _put_layer(writer, layer)
    assert writer.counts.stored == 1 and writer.counts.uploaded > layer.size

    reader_cache = Cache(tmp_path / "b")
    reader, _ = _repo(proxy, reader_cache)
    entry = reader.get("layer", KEY)
    assert entry is not None and entry.record["diff_id"] == layer.diff_id
    assert entry.blob == Blob(layer.digest, layer.size, layer.media_type)
    assert entry.path is not None and entry.path.read_bytes() == layer.path.read_bytes()
    assert reader.get("layer", "cd" * 32) is None
    assert (reader.counts.hits, reader.counts.misses) == (1, 1)


def test_a_record_left_on_the_registry_is_checked_by_head_and_marked_for_mounts(
    proxy: Proxy, tmp_path: Path
) -> None:
    writer, _ = _repo(proxy, Cache(tmp_path / "a"))
    layer = _layer(writer._ctx.cache)
    _put_layer(writer, layer)
    reader, _ = _repo(proxy, Cache(tmp_path / "b"), fetch=False)
    before = len(proxy.seen)
    entry = reader.get("layer", KEY)
    assert entry is not None and entry.path is None
    seen = proxy.seen[before:]
    assert not [s for s in seen if s.method == "GET" and layer.digest in s.path]  # not downloaded
    assert [s for s in seen if s.method == "HEAD" and layer.digest in s.path]
    assert "team/cache" in (reader._ctx.cache.read_meta("registry-sources", layer.digest[7:]) or b"").decode()


def test_a_tag_that_is_not_a_slimline_record_is_ignored(proxy: Proxy, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "a")
    push([image(cache)], RegistryRef(proxy.host, "team/cache", tag("layer", KEY)), ctx=Context(cache=cache))
    reader, lines = _repo(proxy, Cache(tmp_path / "b"))
    assert reader.get("layer", KEY) is None
    assert reader.counts.ignored == 1
    assert any("not a slimline cache record" in line for line in lines.lines), lines.lines


@pytest.mark.parametrize("fetch", [True, False])
def test_a_record_whose_blob_is_gone_is_ignored_and_rewritten(
    proxy: Proxy, tmp_path: Path, fetch: bool
) -> None:
    writer, _ = _repo(proxy, Cache(tmp_path / "a"))
    layer = _layer(writer._ctx.cache)
    _put_layer(writer, layer)
    sess = Session(
        RegistryRef(proxy.host, "team/cache"),
        http=writer._ctx.http,
        insecure=(),
        credentials=Credentials(()),
        scopes=["repository:team/cache:pull,push,delete"],
        op="test",
    )
    sess.request("DELETE", f"/v2/team/cache/blobs/{layer.digest}", ok=(202,), what="deleting the blob")
    reader, lines = _repo(proxy, Cache(tmp_path / "b"), fetch=fetch)
    assert reader.get("layer", KEY) is None
    assert reader.counts.ignored == 1 and any("is missing" in line for line in lines.lines), lines.lines
    _put_layer(reader, layer)  # what a build does after making the layer again
    again, _ = _repo(proxy, Cache(tmp_path / "c"))
    entry = again.get("layer", KEY)
    assert entry is not None and entry.path is not None and entry.path.read_bytes() == layer.path.read_bytes()


def test_a_read_only_cache_never_writes(proxy: Proxy, tmp_path: Path) -> None:
    repo, _ = _repo(proxy, Cache(tmp_path / "a"), readonly=True)
    layer = _layer(repo._ctx.cache)
    assert repo.get("layer", KEY) is None
    _put_layer(repo, layer)
    assert repo.counts.stored == 0
    assert not [s for s in proxy.seen if s.method in WRITES], proxy.seen


def test_an_unreachable_registry_is_one_warning_and_no_cache(tmp_path: Path) -> None:
    lines = Lines()
    ctx = Context(cache=Cache(tmp_path / "a"), report=lines)
    repo = CacheRepo(
        RegistryRef(f"127.0.0.1:{free_port()}", "team/cache"), ctx=ctx, readonly=False, fetch=True,
        credentials=Credentials(()),
    )  # fmt: skip
    assert repo.get("layer", KEY) is None
    assert repo.get("layer", "cd" * 32) is None
    _put_layer(repo, _layer(ctx.cache))
    warnings = [line for line in lines.lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "building without it" in warnings[0], lines.lines


def test_record_names_are_checked() -> None:
    assert tag("wheel", KEY) == f"wheel-{KEY}"
    for kind, key in (("layer", "AB" * 32), ("layer", "ab"), ("other", KEY), ("layer", "../" + KEY[3:])):
        with pytest.raises(ValueError):
            tag(kind, key)
