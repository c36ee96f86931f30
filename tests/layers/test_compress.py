"""Block-parallel gzip layers: valid for Python's gzip and the real gzip/zcat/tar tools, the same
bytes whatever the thread count, close to one-stream gzip in size, and failures leave no blob.

Data is real: the files of an installed wheel (pip, from this venv's site-packages), read once
into memory so that the tree cannot change under the test."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import subprocess
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pip
import pytest

from slimline import layers
from slimline.cache.store import Cache, HashingWriter
from slimline.errors import SlimlineError
from slimline.layers import compress
from slimline.layers.filetree import Bytes, FileTree, TreeBuilder
from slimline.oci.image import Layer
from tests.support import tool

BS = layers.BLOCK_SIZE


@pytest.fixture(scope="module")
def wheel_tree() -> FileTree:
    """pip's installed files (no bytecode caches), several blocks of tar."""
    root = Path(pip.__file__).parent
    tb = TreeBuilder()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.is_symlink():
            continue
        tb.data(f"site-packages/pip/{path.relative_to(root).as_posix()}", path.read_bytes())
    tree = tb.freeze()
    assert tree.payload_size() > 4 * BS
    return tree


def _tar_bytes(tree: FileTree, tmp_path: Path) -> bytes:
    """The exact uncompressed tar that :func:`layers.write` makes for ``tree``."""
    plain = layers.write(tree, cache=Cache(tmp_path / "plain"), compression=layers.Compression("none"))
    return plain.path.read_bytes()


def _check_blob(layer: Layer, tar: bytes) -> None:
    """The blob is one gzip member whose content is ``tar``, by Python and by the real tools."""
    blob = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest() and layer.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert blob[:4] == b"\x1f\x8b\x08\x00" and blob[4:8] == b"\0\0\0\0"  # no name, mtime 0
    assert gzip.decompress(blob) == tar
    subprocess.run([tool("gzip"), "-t", str(layer.path)], check=True)
    assert subprocess.run([tool("zcat")], input=blob, capture_output=True, check=True).stdout == tar
    listed = subprocess.run(
        [tool("tar"), "-tzf", str(layer.path)], capture_output=True, check=True, text=True
    ).stdout.splitlines()
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        names = t.getnames()
    assert [n.rstrip("/") for n in listed] == names


def test_real_tree_round_trips_through_python_and_cli_tools(wheel_tree: FileTree, tmp_path: Path) -> None:
    tar = _tar_bytes(wheel_tree, tmp_path)
    assert len(tar) > 4 * BS
    layer = layers.write(wheel_tree, cache=Cache(tmp_path / "c"), compression=layers.Compression("gzip", 1))
    _check_blob(layer, tar)
    assert layer.path.read_bytes()[8:10] == b"\x04\xff"  # XFL "fastest" for level 1, OS unknown, as gzip


def test_same_bytes_with_one_thread_many_threads_and_the_shared_pool(
    wheel_tree: FileTree, tmp_path: Path
) -> None:
    for level in (1, 6):
        comp = layers.Compression("gzip", level)
        digests = {
            threads: layers.write(
                wheel_tree, cache=Cache(tmp_path / f"{level}-{threads}"), compression=comp, threads=threads
            ).digest
            for threads in (1, 2, 7, None)
        }
        assert len(set(digests.values())) == 1, digests


def test_layers_written_at_once_share_the_pool_and_keep_their_bytes(
    wheel_tree: FileTree, tmp_path: Path
) -> None:
    half = TreeBuilder()
    for i, entry in enumerate(wheel_tree.entries()):
        if i % 2 and entry.source is not None:
            half.add(entry)
    trees = [wheel_tree, half.freeze(), wheel_tree]
    cache = Cache(tmp_path / "many")
    comp = layers.Compression("gzip", 1)
    together = layers.write_many(
        [lambda t=t: layers.write(t, cache=cache, compression=comp) for t in trees]  # type: ignore[misc]
    )
    alone = [layers.write(t, cache=Cache(tmp_path / "alone"), compression=comp, threads=1) for t in trees]
    assert [x.digest for x in together] == [x.digest for x in alone]
    assert together[0].digest == together[2].digest != together[1].digest


def test_block_boundary_inside_a_file(tmp_path: Path) -> None:
    # one file straddles the first two block boundaries; its content has long-range repeats, so
    # matches reach back across a boundary into the previous block's dictionary
    unit = os.urandom(20_000)
    big = (unit * (3 * BS // len(unit) + 1))[: 3 * BS - 777]
    tb = TreeBuilder()
    tb.data("a/small.txt", b"hello\n" * 100)
    tb.data("a/big.bin", big)
    tb.data("b/after.txt", b"after the boundary\n")
    tree = tb.freeze()
    tar = _tar_bytes(tree, tmp_path)
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        member = t.getmember("a/big.bin")
    assert member.offset_data < BS < 2 * BS < member.offset_data + member.size
    layer = layers.write(tree, cache=Cache(tmp_path / "c"), compression=layers.Compression("gzip", 6))
    _check_blob(layer, tar)
    assert layer.size < len(tar) // 10  # the repeats were found, across blocks too


def test_empty_tree(tmp_path: Path) -> None:
    empty = TreeBuilder().freeze()
    tar = _tar_bytes(empty, tmp_path)
    layer = layers.write(empty, cache=Cache(tmp_path / "c"))
    _check_blob(layer, tar)


@pytest.mark.parametrize("size", [0, 1, BS - 1, BS, BS + 1, 2 * BS, 3 * BS + 12345])
def test_block_gzip_at_and_around_block_sizes(size: int, tmp_path: Path) -> None:
    """Inputs of exactly one (or two) blocks end with the full block finished (no empty trailing
    block), the output does not depend on how the input was chunked, and it is exactly pigz's
    scheme as written out independently below."""
    data = (b"slimline %d\n" * (size // 10 + 1) % tuple(range(size // 10 + 1)))[:size]
    outputs = []
    with ThreadPoolExecutor(2) as pool:
        for chunk in (size or 1, 65536, 99991):
            buf = io.BytesIO()
            z = compress._BlockGzip(HashingWriter(buf), level=6, pool=lambda: (pool, 2), block_size=BS)
            for i in range(0, size, chunk):
                z.write(data[i : i + chunk])
            z.close()
            outputs.append(buf.getvalue())
    assert outputs[0] == outputs[1] == outputs[2]
    assert gzip.decompress(outputs[0]) == data
    path = tmp_path / "x.gz"
    path.write_bytes(outputs[0])
    subprocess.run([tool("gzip"), "-t", str(path)], check=True)
    assert subprocess.run([tool("zcat"), str(path)], capture_output=True, check=True).stdout == data
    assert outputs[0] == _reference_gzip(data, level=6)


def _reference_gzip(data: bytes, *, level: int) -> bytes:
    """pigz's scheme written out with zlib directly: blocks at fixed offsets, each primed with the
    previous 32 KiB, sync-flushed except the last (finished; the empty input is one empty block)."""
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    starts = list(range(0, len(data), BS)) or [0]
    for start in starts:
        prev = data[max(0, start - 32768) : start]
        if prev:
            z = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, prev)
        else:
            z = zlib.compressobj(level, zlib.DEFLATED, -15, 8)
        out += z.compress(data[start : start + BS])
        out += z.flush(zlib.Z_FINISH if start == starts[-1] else zlib.Z_SYNC_FLUSH)
    return bytes(out + struct.pack("<II", zlib.crc32(data), len(data)))


@pytest.mark.parametrize("level", [1, 6, 9])
def test_size_within_a_percent_of_one_stream_gzip(level: int, wheel_tree: FileTree, tmp_path: Path) -> None:
    tar = _tar_bytes(wheel_tree, tmp_path)
    layer = layers.write(
        wheel_tree, cache=Cache(tmp_path / "c"), compression=layers.Compression("gzip", level)
    )
    one_stream = len(gzip.compress(tar, compresslevel=level, mtime=0))
    assert abs(layer.size - one_stream) / one_stream < 0.01, (layer.size, one_stream)


def _leftovers(cache: Cache) -> list[str]:
    blobs = cache.root / "blobs" / "sha256"
    return sorted(p.name for p in blobs.iterdir()) if blobs.exists() else []


def test_a_failing_block_task_propagates_and_leaves_no_blob(wheel_tree: FileTree, tmp_path: Path) -> None:
    # zlib rejects level 42 when the block is compressed, i.e. inside a pool thread
    cache = Cache(tmp_path / "c")
    for threads in (None, 2):
        with pytest.raises(ValueError) as info:
            layers.write(wheel_tree, cache=cache, compression=layers.Compression("gzip", 42), threads=threads)
        assert any(entry.name == "_deflate" for entry in info.traceback)
        assert _leftovers(cache) == []


def test_a_short_source_after_blocks_are_in_flight_leaves_no_blob(
    wheel_tree: FileTree, tmp_path: Path
) -> None:
    tb = TreeBuilder()
    for entry in wheel_tree.entries():
        tb.add(entry)
    tb.file("zz/short.bin", Bytes(b"x" * 100), 5000)  # claims more than it has; comes last in the tar
    cache = Cache(tmp_path / "c")
    with pytest.raises(SlimlineError, match="source ended"):
        layers.write(tb.freeze(), cache=cache, compression=layers.Compression("gzip", 1))
    assert _leftovers(cache) == []
    # the shared pool is still usable afterwards
    _check_blob(layers.write(wheel_tree, cache=cache), _tar_bytes(wheel_tree, tmp_path))
