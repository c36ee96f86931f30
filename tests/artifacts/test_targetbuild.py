"""Deciding what is built for the target, the builder resolved early, and the sandbox's refusals,
offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from slimline.artifacts import sandbox
from slimline.artifacts.compiled import native_names, native_sources, pure
from slimline.artifacts.targetbuild import HINTS, TargetBuilds
from slimline.artifacts.unpack import archive_names
from slimline.artifacts.wheelcache import keep_built
from slimline.base.builder import Builder
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.oci.image import Platform
from slimline.target import Target
from tests.artifacts.helpers import make_wheel


def test_pure_wheels_are_those_for_any_platform() -> None:
    assert pure("six-1.17.0-py2.py3-none-any.whl")
    assert not pure("python_ldap-3.4.4-cp311-cp311-linux_x86_64.whl")
    assert not pure("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert not pure("not a wheel.whl")


@pytest.mark.parametrize(
    ("files", "native"),
    [
        (["pkg/__init__.py", "setup.py"], False),
        (["pkg/__init__.py", "src/_speedups.c"], True),
        (["pkg/core.pyx"], True),
        (["Cargo.toml", "src/lib.rs"], True),
        (["pkg/__init__.py", ".git/hooks/x.c"], False),  # VCS folders are not the source
    ],
)
@pytest.mark.parametrize("archive", ["tar.gz", "zip"])
def test_native_sources_are_told_by_their_files_and_by_an_archive_of_them(
    tmp_path: Path, files: list[str], native: bool, archive: str
) -> None:
    tree = tmp_path / "pkg-1.0"
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("")
    assert native_sources(tree) is native
    made = Path(
        shutil.make_archive(str(tmp_path / "pkg-1.0"), "gztar" if archive == "tar.gz" else "zip", tmp_path)
    )
    names = archive_names(made, filename=made.name)
    assert any(n.endswith(files[-1]) for n in names), names
    assert native_names(names) is native  # before unpacking: the same answer


def test_an_archive_that_cannot_be_read_has_no_names(tmp_path: Path) -> None:
    bad = tmp_path / "pkg-1.0.tar.gz"
    bad.write_bytes(b"\x1f\x8b not gzip after all")
    assert archive_names(bad, filename=bad.name) == []
    assert archive_names(tmp_path / "missing.zip", filename="missing.zip") == []


def test_without_bubblewrap_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with pytest.raises(sandbox.SandboxError, match="bubblewrap") as info:
        sandbox.check("amd64")
    assert "apt-get install bubblewrap" in info.value.hint


def test_the_sandbox_sees_only_its_root_and_no_network(tmp_path: Path) -> None:
    """A real bubblewrap run in a tiny root holding this host's static busybox: the root is
    read-only, a bound folder is writable, only loopback is there, the exit status comes back."""
    busybox = Path("/bin/busybox")
    assert busybox.exists(), "busybox-static is installed by scripts/setup.sh --system"
    root = tmp_path / "root"
    for d in ("bin", "dev", "proc", "tmp", "data"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin/busybox")
    shared = tmp_path / "shared"
    shared.mkdir()
    script = "echo hi > /data/out; touch /x 2>/dev/null && echo wrote-root; cat /proc/net/dev; exit 3"
    argv = ["/bin/busybox", "sh", "-c", script]
    proc = sandbox.run(root, argv, arch=_host_arch(), binds={"/data": shared}, env={"PATH": "/bin"})
    assert proc.returncode == 3
    assert (shared / "out").read_text() == "hi\n"
    assert "wrote-root" not in proc.stdout
    interfaces = [line.split(":")[0].strip() for line in proc.stdout.splitlines() if ":" in line]
    assert interfaces == ["lo"], proc.stdout


def _host_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]


def test_the_hint_table_names_dev_packages() -> None:
    assert HINTS["python-ldap"] == ("libldap2-dev", "libsasl2-dev")
    assert HINTS["psycopg2"] == ("libpq-dev",)


def test_the_sandbox_runs_for_a_user_who_is_not_root() -> None:
    """As an unprivileged user (nobody), bubblewrap makes a user namespace: the same run works.

    What the user runs is copied to a directory it can read, since the checkout may sit in one
    only root reads (a clone in ``mktemp -d``): this checkout's slimline package, run by the base
    interpreter (the sandbox needs the standard library only, and a venv in such a directory
    is unreadable too)."""
    with tempfile.TemporaryDirectory(prefix="slimline-nobody-") as tmp:  # pytest's are root's only
        Path(tmp).chmod(0o755)
        readable = all(p.stat().st_mode & 0o005 == 0o005 for p in Path(tmp).parents)
        assert readable, f"{tmp}: its parents must be readable by nobody (set TMPDIR elsewhere)"
        src = Path(tmp, "src")
        package = Path(sandbox.__file__).resolve().parents[1]
        shutil.copytree(package, src / "slimline", ignore=shutil.ignore_patterns("__pycache__"))
        root = Path(tmp, "root")
        for d in ("bin", "dev", "proc", "tmp"):
            (root / d).mkdir(parents=True)
        shutil.copy2("/bin/busybox", root / "bin/busybox")
        argv = ["/bin/busybox", "sh", "-c", "id -u; exit 4"]
        code = (
            "from pathlib import Path; from slimline.artifacts import sandbox; "
            f"p = sandbox.run(Path({str(root)!r}), {argv!r}, arch={_host_arch()!r}); "
            "print(p.returncode, p.stdout.strip(), sandbox.__file__)"
        )
        python = getattr(sys, "_base_executable", sys.executable)  # outside the venv: see above
        proc = subprocess.run(
            ["su", "nobody", "-s", "/bin/sh", "-c", f'PYTHONPATH={src} {python} -c "{code}"'],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["4", "0"]  # its exit status, and root inside its own namespace
    # the copy of this checkout's sandbox ran, not another slimline on the interpreter's path
    assert proc.stdout.split()[2:] == [str(src / "slimline" / "artifacts" / "sandbox.py")]


def _builds(assemble: Callable[[], Builder], tmp_path: Path) -> TargetBuilds:
    return TargetBuilds(
        assemble, ctx=Context(Cache(tmp_path / "cache")), index_url="http://127.0.0.1:9/", index_auth=None
    )


def _a_builder() -> Builder:
    target = Target(Platform("amd64"), (3, 11, 2), "/usr/bin/python3.11", "glibc", (2, 36))
    return Builder("id", target, target.interpreter, (), False, lambda: Path("/nonexistent"))


def test_prepared_builds_resolve_the_builder_on_a_thread_once(tmp_path: Path) -> None:
    resolved_on: list[str] = []
    done = threading.Event()

    def assemble() -> Builder:
        resolved_on.append(threading.current_thread().name)
        done.set()
        return _a_builder()

    builds = _builds(assemble, tmp_path)
    builds.prepare()
    assert done.wait(timeout=10)
    assert builds.builder is builds.builder
    assert resolved_on == ["slimline-builder-resolve"]


def test_begun_builds_write_the_builders_files_once_on_a_thread_after_resolving_it(tmp_path: Path) -> None:
    written_on: list[str] = []
    done = threading.Event()

    def make_root() -> Path:
        written_on.append(threading.current_thread().name)
        done.set()
        return tmp_path / "root"

    def assemble() -> Builder:
        time.sleep(0.2)  # begun before its packages are resolved: it waits for them, not the caller
        return replace(_a_builder(), make_root=make_root)

    builds = _builds(assemble, tmp_path)
    builds.prepare()
    started = time.monotonic()
    builds.begin(source="sdist:a", package="a")
    builds.begin(source="sdist:b", package="b")
    assert time.monotonic() - started < 0.1
    assert done.wait(timeout=10)
    assert builds.builder.root == tmp_path / "root"
    assert written_on == ["slimline-builder"]  # once, on the builder's own thread


def test_a_source_whose_wheel_was_built_before_does_not_begin_the_builder(tmp_path: Path) -> None:
    written = threading.Event()

    def make_root() -> Path:
        written.set()
        return tmp_path / "root"

    builds = _builds(lambda: replace(_a_builder(), make_root=make_root), tmp_path)
    wheel = tmp_path / "a-1.0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(make_wheel("a", "1.0", tag="cp311-cp311-linux_x86_64"))
    keep_built(builds._ctx.cache, wheel, key=builds.key(source="sdist:a"))
    builds.begin(source="sdist:a", package="a")  # its wheel is in the cache: no builder is needed
    assert not written.wait(timeout=0.5)
    builds.begin(source="sdist:b", package="b")  # never built: the builder is written
    assert written.wait(timeout=10)


def test_a_builder_that_failed_to_resolve_early_fails_the_build_that_needs_it(tmp_path: Path) -> None:
    tries: list[int] = []

    def assemble() -> Builder:
        tries.append(1)
        raise OSError("the archive is unreachable")

    builds = _builds(assemble, tmp_path)
    builds.prepare()
    builds.begin(source="sdist:a", package="a")  # its failure is not raised here: the builds meet it
    deadline = time.monotonic() + 10
    while not tries and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(2):
        with pytest.raises(OSError, match="unreachable"):
            _ = builds.builder
    assert builds.made is None and tries == [1]  # resolved once: its error kept, not tried again
