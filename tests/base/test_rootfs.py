"""rootfs.from_jobs: the builder's file system written straight from layer jobs' trees."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from slimline import layers
from slimline.base import rootfs
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.layers.filetree import FileTree, TreeBuilder
from slimline.layers.job import Job
from slimline.oci.image import Image, Platform


def _lower() -> FileTree:
    b = TreeBuilder()
    b.dir("usr/lib/x86_64-linux-gnu")
    b.symlink("lib", "usr/lib")
    b.data("usr/lib/x86_64-linux-gnu/libz.so.1.2", b"zlib", mode=0o644)
    b.symlink("usr/lib/x86_64-linux-gnu/libz.so.1", "libz.so.1.2")
    b.data("usr/bin/python3.11", b"#!python", mode=0o755)
    b.symlink("usr/bin/python3", "/usr/bin/python3.11")  # absolute: made relative inside the root
    b.data("etc/replaced", b"old")
    b.hardlink("usr/bin/python3.11-copy", "usr/bin/python3.11")
    return b.freeze()


def _upper() -> FileTree:
    b = TreeBuilder()
    b.data("etc/replaced", b"new")
    b.data("usr/lib/x86_64-linux-gnu/libnew.so", b"added above")
    b.dir("var/tmp", mode=0o1777)
    return b.freeze()


def _jobs(made: list[str]) -> list[Job]:
    def job(name: str, tree: FileTree) -> Job:
        def make() -> FileTree:
            made.append(name)
            return tree

        return Job(keys.key("test-rootfs", name), make, name, 0)

    return [job("lower", _lower()), job("upper", _upper())]


def _listing(root: Path) -> dict[str, tuple[str, int, str]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what = ("link", 0, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            what = ("dir", st.st_mode & 0o777, "")
        else:
            what = ("file", st.st_mode & 0o777, path.read_bytes().hex())
        out[str(path.relative_to(root))] = what
    return out


def test_from_jobs_writes_what_unpacking_the_jobs_layers_writes(tmp_path: Path) -> None:
    made: list[str] = []
    cache = Cache(tmp_path / "cache")
    direct = rootfs.from_jobs(_jobs(made), cache=cache)
    assert sorted(made) == ["lower", "upper"]
    assert direct.parent == cache.root / keys.ROOTFS and direct.name == rootfs.jobs_key(_jobs([]))

    realised = layers.realise(_jobs([]), cache=Cache(tmp_path / "other"), compression=layers.Compression())
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    rootfs.unpack(Image(Platform("amd64"), tuple(realised.layers)), unpacked)
    listing = _listing(direct)
    assert listing == _listing(unpacked)
    assert listing["usr/bin/python3"] == ("link", 0, "python3.11")
    assert listing["etc/replaced"][2] == b"new".hex()
    assert (direct / "lib/x86_64-linux-gnu/libnew.so").read_bytes() == b"added above"
    assert listing["usr/bin/python3.11-copy"] == listing["usr/bin/python3.11"]


def _replacing() -> list[FileTree]:
    """Trees whose later entries replace what earlier ones wrote: what the writer's shortcut
    (parents it made, paths not written before) must hand to the full rules."""
    first = TreeBuilder()
    first.data("opt/d/old", b"in a directory")
    first.data("etc/conf", b"a file")
    first.dir("srv")
    second = TreeBuilder()
    # a directory the writer made becomes a symlink whose ".." climb out of the root (stopped
    # there, the file below it lands in /srv)
    second.symlink("opt/d", "../../../srv")
    second.data("opt/d/new", b"through the link")
    second.dir("etc/conf")  # a file becomes a directory
    second.data("etc/conf/part", b"inside")
    second.data("usr/share/.wh.kept", b"a whiteout's name")  # a whiteout: removes usr/share/kept
    third = TreeBuilder()
    third.data("usr/share/kept", b"made again")
    third.symlink("usr/share/link", "kept")
    third.data("srv/new", b"replaced")  # the file written through the link, written again
    return [first.freeze(), second.freeze(), third.freeze()]


def test_from_jobs_replaces_what_earlier_trees_wrote_as_unpacking_their_layers_does(tmp_path: Path) -> None:
    def job(i: int, tree: FileTree) -> Job:
        return Job(keys.key("test-rootfs-replacing", str(i)), lambda: tree, f"tree {i}", 0)

    jobs = [job(i, t) for i, t in enumerate(_replacing())]
    direct = rootfs.from_jobs(jobs, cache=Cache(tmp_path / "cache"))
    realised = layers.realise(jobs, cache=Cache(tmp_path / "other"), compression=layers.Compression())
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    rootfs.unpack(Image(Platform("amd64"), tuple(realised.layers)), unpacked)
    listing = _listing(direct)
    assert listing == _listing(unpacked)
    assert listing["opt/d"] == ("link", 0, "../../../srv") and "opt/d/old" not in listing
    assert listing["srv/new"][2] == b"replaced".hex() and listing["etc/conf"][0] == "dir"
    assert not (direct.parent / "srv").exists()  # where the link points outside the root
    assert listing["usr/share/kept"][2] == b"made again".hex()


def test_from_jobs_makes_its_trees_once_and_marks_the_copy_used(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    made: list[str] = []
    root = rootfs.from_jobs(_jobs(made), cache=cache)
    os.utime(root, (1, 1))
    assert rootfs.from_jobs(_jobs(made), cache=cache) == root
    assert sorted(made) == ["lower", "upper"] and root.stat().st_mtime > 1
    assert rootfs.from_pinned(root) == root


def test_a_failing_tree_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")

    def broken() -> FileTree:
        raise RuntimeError("the archive went away")

    jobs = [*_jobs([]), Job(keys.key("test-rootfs", "broken"), broken, "broken", 0)]
    with pytest.raises(RuntimeError, match="went away"):
        rootfs.from_jobs(jobs, cache=cache)
    assert not any((cache.root / keys.ROOTFS).iterdir())


def test_more_jobs_than_cores_are_still_written_in_their_order(tmp_path: Path) -> None:
    """The trees are made a few at a time and may finish in any order (here the first is the
    slowest); each path holds what the last job that has it wrote, as unpacking the layers gives."""
    first_may_finish = threading.Event()
    count = (os.cpu_count() or 1) + 3

    def job(i: int) -> Job:
        def make() -> FileTree:
            if i == 0:
                first_may_finish.wait(timeout=5)
            elif i == count - 1:
                first_may_finish.set()
            b = TreeBuilder()
            b.data("etc/owner", f"job {i}".encode())
            b.data(f"usr/share/job{i}", b"x")
            return b.freeze()

        return Job(keys.key("test-rootfs-order", str(i)), make, f"job {i}", 0)

    jobs = [job(i) for i in range(count)]
    root = rootfs.from_jobs(jobs, cache=Cache(tmp_path / "cache"))
    assert (root / "etc/owner").read_bytes() == f"job {count - 1}".encode()
    assert sorted(p.name for p in (root / "usr/share").iterdir()) == sorted(f"job{i}" for i in range(count))
