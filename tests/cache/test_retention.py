"""``slimline cache info|prune``: what goes is what went unused, and builds never notice.

Ages are set with os.utime, as a month of not building would leave them; the pruning under
test is the real command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slimline.artifacts.wheelcache import store_wheel
from slimline.cache import retention
from slimline.cache.store import Cache, CacheBusy
from tests.support import cache_dir, run, slimline, tool

DAY = 24 * 3600


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def _disk_size(top: Path) -> int:
    """Bytes on disk of a directory tree, as ``du`` counts them."""
    paths = [top, *top.rglob("*")]
    return sum(p.lstat().st_blocks * 512 for p in paths)


def _blob(cache: Cache, data: bytes, days: float) -> Path:
    digest, _ = cache.put_stream(io.BytesIO(data))
    path = cache.root / "blobs" / "sha256" / digest
    _age(path, days)
    return path


def _filled(root: Path) -> dict[str, Path]:
    """A cache with old and recent entries of every kind, plus files that are not slimline's."""
    cache = Cache(root)
    old_blob = _blob(cache, b"old" * 1000, 40)
    new_blob = _blob(cache, b"new" * 1000, 1)
    wheel_blob = _blob(cache, b"wheel" * 1000, 40)
    wheel = store_wheel(cache, wheel_blob, wheel_blob.name, "demo-1.0-py3-none-any.whl")
    _age(wheel, 40)  # a hard link: the blob's inode
    envs = root / "build-envs"
    for name, days in (("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40), ("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 2)):
        (envs / name / "lib").mkdir(parents=True)
        (envs / name / "lib" / "x.py").write_bytes(b"x" * 5000)
        (envs / name / ".slimline-env.json").write_text("{}")
        (envs / f"{name}.lock").touch()
        _age(envs / name / ".slimline-env.json", days)
    bases = root / "rootfs"  # unpacked bases (rootfs.cached): marked used on the directory itself
    for name, days in (("c" * 32, 40), ("d" * 32, 3), (".tmp-half", 3)):
        (bases / name / "usr" / "bin").mkdir(parents=True)
        (bases / name / "usr" / "bin" / "python3").write_bytes(b"p" * 3000)
        _age(bases / name, days)
    cache.write_meta("layers", "a" * 64, json.dumps({"digest": f"sha256:{old_blob.name}"}).encode())
    cache.write_meta("layers", "b" * 64, json.dumps({"digest": f"sha256:{new_blob.name}"}).encode())
    _age(cache.meta_path("layers", "a" * 64), 40)
    (root / "poetry" / "cache").mkdir(parents=True)  # not slimline's: the tests' Poetry cache
    (root / "poetry" / "cache" / "old.txt").write_text("keep")
    _age(root / "poetry" / "cache" / "old.txt", 400)
    (root / "notes.txt").write_text("keep")
    stale = root / "blobs" / "sha256" / ".in.x.part"
    stale.write_bytes(b"half")
    _age(stale, 3)
    return {
        "old_blob": old_blob,
        "new_blob": new_blob,
        "wheel_blob": wheel_blob,
        "wheel": wheel,
        "old_env": envs / "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "new_env": envs / "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "old_base": bases / ("c" * 32),
        "new_base": bases / ("d" * 32),
        "unfinished_base": bases / ".tmp-half",
        "old_meta": cache.meta_path("layers", "a" * 64),
        "new_meta": cache.meta_path("layers", "b" * 64),
        "foreign": root / "poetry" / "cache" / "old.txt",
        "note": root / "notes.txt",
        "stale": stale,
    }


def test_prune_removes_what_went_unused_and_nothing_else(tmp_path: Path) -> None:
    paths = _filled(tmp_path / "cache")
    proc = slimline("cache", "prune", "--older-than", "30", "--cache-dir", str(tmp_path / "cache"))
    assert (
        "removed 2 blobs and wheels, 1 build environments, 1 unpacked bases and 1 metadata files"
        in proc.stdout
    )
    gone = {"old_blob", "wheel_blob", "wheel", "old_env", "old_base", "unfinished_base", "old_meta", "stale"}
    for name, path in paths.items():
        assert path.exists() == (name not in gone), name
    assert not paths["wheel"].parent.exists()  # the emptied wheels/<sha> directory too
    assert not (tmp_path / "cache" / "build-envs" / "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.lock").exists()


def test_dry_run_and_max_size(tmp_path: Path) -> None:
    paths = _filled(tmp_path / "cache")
    proc = slimline("cache", "prune", "--dry-run", "--cache-dir", str(tmp_path / "cache"))
    assert proc.stdout.startswith("would remove 2 blobs and wheels")
    assert all(path.exists() for path in paths.values())

    # nothing is a month old now, but the cache must shrink by the size of the base and the
    # environment: the least recently used go first (the 3-day-old base, then the 2-day-old
    # environment), and the 1-day-old blob after them is kept, since the cache then fits
    for path in paths.values():
        os.utime(path, None)
    _age(paths["new_base"], 3)
    _age(paths["new_env"] / ".slimline-env.json", 2)
    _age(paths["new_blob"], 1)
    cache = Cache(tmp_path / "cache")
    fits = retention.survey(cache).size - _disk_size(paths["new_base"]) - _disk_size(paths["new_env"])
    done = retention.prune(cache, older_than=30 * DAY, max_size=fits)
    assert not paths["new_base"].exists() and not paths["new_env"].exists()
    assert paths["new_blob"].exists()
    assert done.left == retention.survey(cache).size <= fits


def test_build_requirements_installed_for_a_builder_are_pruned_as_environments(tmp_path: Path) -> None:
    """target-envs/<key>: marked used on its .complete when a build reuses it; the family locks
    beside them are files of no content, pruned with the metadata."""
    root = tmp_path / "cache"
    targets = root / "target-envs"
    for name, days in (("e" * 32, 40), ("f" * 32, 2)):
        (targets / name / "setuptools").mkdir(parents=True)
        (targets / name / "setuptools" / "__init__.py").write_bytes(b"s" * 4000)
        (targets / name / ".complete").write_text("{}")
        _age(targets / name / ".complete", days)
    lock = targets / ("1" * 32 + ".lock")
    lock.touch()
    _age(lock, 40)
    areas = {a.name: a for a in retention.survey(Cache(root)).areas}
    assert areas["build environments"].entries == 2 and areas["build environments"].size >= 8000
    done = retention.prune(Cache(root), older_than=30 * DAY)
    assert (done.environments, done.metadata) == (1, 1)
    assert not (targets / ("e" * 32)).exists() and not lock.exists()
    assert (targets / ("f" * 32) / "setuptools" / "__init__.py").exists()


def test_prune_waits_for_no_build_and_info_reports(tmp_path: Path) -> None:
    _filled(tmp_path / "cache")
    info = slimline("cache", "info", "--cache-dir", str(tmp_path / "cache")).stdout
    assert f"cache {tmp_path / 'cache'}:" in info and "build environments: 2" in info
    assert "unpacked bases (for bytecode): 2" in info  # the unfinished one is not counted
    assert "least recently used entry: 40.0 days ago" in info

    # a build holds the cache (shared lock): prune refuses, says why, removes nothing
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from slimline.cache.store import Cache\n"
         f"with Cache(Path({str(tmp_path / 'cache')!r})).lock():\n"
         "    print('held', flush=True)\n    time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        proc = slimline("cache", "prune", "--cache-dir", str(tmp_path / "cache"), check=False)
        assert proc.returncode == 1 and "in use by another slimline process" in proc.stderr
        with pytest.raises(CacheBusy):
            retention.prune(Cache(tmp_path / "cache"), older_than=0)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "cache" / "build-envs" / "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").exists()


@pytest.mark.network
def test_a_pruned_cache_still_serves_the_build_it_was_used_by(locked_cli: Path, tmp_path: Path) -> None:
    # a copy of the shared cache made of hard links (no bytes copied), every entry a month old
    cache = tmp_path / "cache"
    run(["cp", "-al", str(cache_dir()), str(cache)])
    (cache / ".lock").unlink(missing_ok=True)  # the shared cache's lock file: not this cache's
    shutil.rmtree(cache / "memo", ignore_errors=True)  # a memo of another checkout must not serve it
    month = time.time() - 40 * DAY
    shared: dict[Path, tuple[int, int]] = {}  # the same inodes under the shared cache: their times
    for dirpath, _dirs, files in os.walk(cache):
        for name in files:
            path = Path(dirpath) / name
            st = path.lstat()  # symlinks (in unpacked bases) are aged themselves, never followed
            shared[cache_dir() / path.relative_to(cache)] = (st.st_atime_ns, st.st_mtime_ns)
            os.utime(path, (month, month), follow_symlinks=False)
    try:
        _prune_and_rebuild(cache, locked_cli, tmp_path)
    finally:  # the shared cache's entries keep the times they had
        for path, times in shared.items():
            with contextlib.suppress(FileNotFoundError):
                os.utime(path, ns=times, follow_symlinks=False)


def _prune_and_rebuild(cache: Path, locked_cli: Path, tmp_path: Path) -> None:
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    env = {"SLIMLINE_CACHE_DIR": str(cache)}
    first = slimline("build", str(proj), "--to", f"oci:{tmp_path / 'out'}:a", "-q", env=env).stdout.strip()

    done = slimline("cache", "prune", "--older-than", "1", env=env).stdout
    assert "removed" in done
    assert len(list((cache / "blobs" / "sha256").iterdir())) < len(
        list((cache_dir() / "blobs" / "sha256").iterdir())
    )

    proc = slimline("build", str(proj), "--to", f"oci:{tmp_path / 'out'}:b", "-v", env=env)
    assert proc.stdout.strip().splitlines()[-1] == first
    for work in ("fetching", "downloading", "assembling base", "creating a build environment", "building"):
        assert work not in proc.stderr, work
    # and the image is whole: skopeo reads every blob of it
    run([tool("skopeo"), "inspect", "--raw", f"oci:{tmp_path / 'out'}:b"])
