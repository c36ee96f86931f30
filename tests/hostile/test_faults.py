"""Faults around a build: killed at random points, run twice at once, a full cache, a cache it
may not write.

The project and base are the offline golden fixtures (:mod:`tests.build.test_golden`: a
synthetic ``oci:`` base, a wheel on a local index on 127.0.0.1, a PEP 517 backend in the
project's tree); the real command line runs as a child process so that it can be killed.  After
every fault the output is intact (absent, the old image or the complete new one, and
:func:`slimline.oci.validate.validate` passes), a failure is one ``slimline: error:`` line with a
hint and no traceback, and the next build gives the digest a clean build gives.  The full and
read-only caches are real mounts (this suite runs as root); a mount that fails fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.oci import validate
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.build.helpers import make_base, write_project
from tests.hostile.helpers import Place, Run, place, run_slimline, snapshot, start_slimline

pytestmark = pytest.mark.slow  # kills, mounts and full disks: tens of seconds

KILLS = 10
SEED = int(os.environ.get("SLIMLINE_FAULT_SEED", "12"))  # set it to replay another run


@pytest.fixture(scope="module")
def index() -> Iterator[LocalIndex]:
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        yield idx


class Project:
    """The golden packaged project on the golden base, in two versions (its module edited)."""

    def __init__(self, p: Place, index: LocalIndex) -> None:
        self.p = p
        make_base(Cache(p.root / "base-cache"), p.inputs / "base")
        self.base = f"oci:{p.inputs / 'base'}:base"
        self.root = write_project(p.inputs / "proj", index.url, package=True)
        self.module = self.root / "hello_app" / "__init__.py"
        self.sources = [self.module.read_text(), self.module.read_text() + "VERSION = 2\n"]

    def use(self, version: int) -> None:
        self.module.write_text(self.sources[version])

    def args(self, out: Path) -> list[str]:
        return ["build", str(self.root), "--base", self.base, "--to", f"oci:{out}:t"]

    def build(self, out: Path, **kw: object) -> Run:
        return run_slimline(self.p, *self.args(out), check_outside=False, **kw)  # type: ignore[arg-type]


def clean_digest(project: Project, version: int, scratch: Path) -> str:
    """What a build of ``version`` gives with a cache of its own."""
    project.use(version)
    env = {"SLIMLINE_CACHE_DIR": str(scratch / "cache")}
    result = run_slimline(project.p, *project.args(scratch / "out"), env=env, check_outside=False)
    shutil.rmtree(scratch)
    return result.ok()


def tagged(out: Path) -> str | None:
    """The digest the layout ``out`` holds under the tag ``t`` (after validating all of it)."""
    if not out.exists():
        return None
    validate.validate(out)
    index = json.loads((out / "index.json").read_bytes())
    found = [
        e["digest"]
        for e in index["manifests"]
        if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == "t"
    ]
    assert len(found) == 1, index
    return str(found[0])


def test_builds_killed_at_random_points_leave_old_or_new_outputs_and_heal(
    tmp_path: Path, index: LocalIndex
) -> None:
    p = place(tmp_path)
    project = Project(p, index)
    clean = [clean_digest(project, v, tmp_path / "scratch") for v in (0, 1)]
    assert clean[0] != clean[1]
    # how long a cold and a warm build take here, to kill them anywhere between start and end
    span = {}
    for cold in (True, False):
        started = time.monotonic()
        project.build(p.out).ok()
        span[cold] = time.monotonic() - started
    rng = random.Random(SEED)
    previous, kills, late = clean[0], 0, 0
    for attempt in range(3 * KILLS):
        if kills == KILLS:
            break
        version, cold = 1 - attempt % 2, attempt % 3 == 0
        project.use(version)
        if cold:
            shutil.rmtree(p.cache)
        proc = start_slimline(p, *project.args(p.out), log=f"killed-{attempt}", new_session=True)
        delay = rng.uniform(0.05, 0.9) * span[cold]
        time.sleep(delay)
        if proc.poll() is None:
            kills += 1
        else:
            late += 1  # it finished first: its output is checked all the same, the kill not counted
        with contextlib.suppress(ProcessLookupError):  # (nothing of its process group is left)
            os.killpg(proc.pid, signal.SIGKILL)  # the build and any child it started (the PEP 517 backend)
        proc.wait()
        held = tagged(p.out)
        assert held in (previous, clean[version]), f"attempt {attempt}, killed after {delay:.2f}s: {held}"
        started = time.monotonic()
        healed = project.build(p.out).ok()
        span[False] = time.monotonic() - started  # the next warm build takes about as long
        assert healed == clean[version], f"the build after attempt {attempt} ({delay:.2f}s, cold={cold})"
        assert tagged(p.out) == healed
        assert not list(p.root.glob(".out.slimline-*")), "an unfinished output was left beside it"
        previous = healed
    assert kills == KILLS, f"{late} builds finished before their kill ({span})"


def test_two_builds_at_once_on_one_cache_give_the_same_image(tmp_path: Path, index: LocalIndex) -> None:
    p = place(tmp_path)
    project = Project(p, index)
    expected = clean_digest(project, 0, tmp_path / "scratch")
    outs = [p.root / "out" / "a", p.root / "out" / "b"]
    procs = [start_slimline(p, *project.args(out), log=out.name) for out in outs]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, (p.root / "logs" / "a.err").read_text() + (
            p.root / "logs" / "b.err"
        ).read_text()
    assert [tagged(out) for out in outs] == [expected, expected]
    assert project.build(p.root / "out" / "c").ok() == expected  # the cache they shared is sound


@pytest.fixture
def mounted() -> Iterator[list[Path]]:
    """Mount points to unmount at the end, innermost last."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        subprocess.run(["umount", str(point)], check=False)


def mount(points: list[Path], *args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"mount {' '.join(args)} failed (this test needs root): {proc.stderr.strip()}")
    points.append(Path(args[-1]))


def refused_intact(
    p: Place, result: Run, out: Path, before: dict[str, tuple[int, int, int, str]], *phrases: str
) -> None:
    result.refused(*phrases)
    assert "hint:" in result.err
    assert snapshot(out) == before, "the output changed"
    validate.validate(out)


@pytest.mark.parametrize("free", [0, 64 << 10], ids=["nothing-free", "64KiB-free"])
def test_a_full_cache_is_an_error_that_says_so(
    tmp_path: Path, index: LocalIndex, mounted: list[Path], free: int
) -> None:
    p = place(tmp_path)
    project = Project(p, index)
    project.use(0)
    project.build(p.out, env={"SLIMLINE_CACHE_DIR": str(tmp_path / "other-cache")}).ok()
    before = snapshot(p.out)
    p.cache.mkdir()
    mount(mounted, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(p.cache))
    left = os.statvfs(p.cache)
    with (p.cache / "filler").open("wb") as f:
        f.write(b"\0" * max(0, left.f_bavail * left.f_frsize - free))
    project.use(1)
    result = project.build(p.out)
    refused_intact(p, result, p.out, before, "No space left on device", "disk is full", "--cache-dir")


def test_a_read_only_cache_is_an_error_that_says_so(
    tmp_path: Path, index: LocalIndex, mounted: list[Path]
) -> None:
    p = place(tmp_path)
    project = Project(p, index)
    project.use(0)
    project.build(p.out).ok()  # everything this build needs is cached now
    before = snapshot(p.out)
    mount(mounted, "--bind", str(p.cache), str(p.cache))
    mount(mounted, "-o", "remount,bind,ro", str(p.cache))
    result = project.build(p.out)
    refused_intact(p, result, p.out, before, "Read-only file system", "--cache-dir")


def test_a_cache_owned_by_someone_else_is_an_error_that_says_so(tmp_path: Path, index: LocalIndex) -> None:
    """Root without the capability to override file modes meets EACCES as any other user would.
    Only the cache directory and its lock file lose their write bits (never anything through a
    symlink: the cache's build environments link to the host's interpreter)."""
    p = place(tmp_path)
    project = Project(p, index)
    project.use(0)
    project.build(p.out).ok()
    before = snapshot(p.out)
    changed = [(p.cache, 0o555), (p.cache / ".lock", 0o444)]
    modes = {path: os.lstat(path).st_mode for path, _ in changed}
    assert not any(stat.S_ISLNK(mode) for mode in modes.values())
    try:
        for path, mode in changed:
            os.chmod(path, mode)  # neither is a symlink (asserted above)
        drop = ("setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--")
        result = run_slimline(p, *project.args(p.out), prefix=drop, check_outside=False)
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode & 0o7777)
    refused_intact(p, result, p.out, before, "Permission denied", "--cache-dir")


@pytest.mark.parametrize("medium", ["oci", "docker-archive"])
def test_a_full_output_disk_is_an_error_that_leaves_the_old_output(
    tmp_path: Path, index: LocalIndex, mounted: list[Path], medium: str
) -> None:
    p = place(tmp_path)
    project = Project(p, index)
    disk = p.root / "out"
    disk.mkdir()
    mount(mounted, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk))
    out = disk / ("image" if medium == "oci" else "image.tar")
    ref = f"{medium}:{out}" + (":t" if medium == "oci" else "")
    project.use(0)
    run_slimline(p, "build", str(project.root), "--base", project.base, "--to", ref, check_outside=False).ok()
    left = os.statvfs(disk)
    with (disk / "filler").open("wb") as f:
        f.write(b"\0" * (left.f_bavail * left.f_frsize))
    before = snapshot(disk)
    project.use(1)
    result = run_slimline(
        p, "build", str(project.root), "--base", project.base, "--to", ref, check_outside=False
    )
    result.refused("No space left on device", "disk is full")
    assert snapshot(disk) == before, "the old output changed"
    validate.validate(out)
