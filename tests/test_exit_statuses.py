"""Each exit status of the README's table, from a real failure of the real command line: the
status, the message on stderr, nothing on stdout and no output written.

The failures are made for real in the offline build world (tests/build/helpers.py): a project
without pyproject.toml, an index that refuses, a backend that fails, a wheel whose bytes are not
the locked ones, a build interrupted with SIGINT while the index stalls.
"""

from __future__ import annotations

import ctypes
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from slimline import cli
from slimline.cache.store import Cache
from slimline.errors import ExitStatus
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.build.helpers import make_base, write_project
from tests.support import run, tool

WHEEL = "tinydep-0.3.0-py3-none-any.whl"


class World:
    """A project, a base and an output path in ``tmp_path``; :meth:`build` runs the real CLI in-process."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp = tmp_path
        self.cache = tmp_path / "cache"
        self.base = make_base(Cache(self.cache), tmp_path / "base")
        self.out = tmp_path / "out"
        self.capsys = capsys

    def args(self, root: Path, *extra: str) -> list[str]:
        return [
            "build",
            str(root),
            "--base",
            self.base,
            "--to",
            f"oci:{self.out}:t",
            "--cache-dir",
            str(self.cache),
            *extra,
        ]

    def build(self, root: Path, *extra: str) -> tuple[int, str]:
        """The exit status and stderr; asserts that stdout is empty and nothing was written."""
        self.capsys.readouterr()
        code = cli.main(self.args(root, "-q", *extra))
        captured = self.capsys.readouterr()
        assert captured.out == "", captured.out
        assert not self.out.exists(), "a failed build wrote its output"
        return code, captured.err


@pytest.fixture
def world(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.chdir(tmp_path)  # make_base's reference is relative to tmp_path
    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE", raising=False)
    return World(tmp_path, capsys)


def test_the_statuses_are_the_documented_numbers() -> None:
    """The README's table is what the code returns (the numbers are a public interface)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for status in ExitStatus:
        assert f"| {int(status)} | `{status.name.lower()}` |" in readme, status


def test_usage(world: World, tmp_path: Path) -> None:
    root = tmp_path / "p"
    with pytest.raises(SystemExit) as parsed:  # argparse's own status
        cli.main(world.args(root, "--label", "revision"))
    assert parsed.value.code == ExitStatus.USAGE
    assert int(ExitStatus.USAGE) == 2
    assert "argument --label: 'revision' is not KEY=VALUE" in world.capsys.readouterr().err

    # an option checked after parsing has the same status
    code, err = world.build(root, "--entrypoint", '["ok", 1]')
    assert code == ExitStatus.USAGE
    assert err.startswith("slimline: error: reading the command line: '[\"ok\", 1]' is not a JSON list")


def test_input(world: World, tmp_path: Path) -> None:
    missing = tmp_path / "no-project"
    missing.mkdir()
    code, err = world.build(missing)
    assert code == ExitStatus.INPUT
    assert int(ExitStatus.INPUT) == 3
    assert err.startswith("slimline: error: reading the project: no pyproject.toml here"), err
    assert "hint: run slimline in a Poetry project directory" in err

    with serve(LocalIndex(files={"tinydep": {WHEEL: make_wheel("tinydep", "0.3.0")}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=False)
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + 'colour = "blue"\n')
    code, err = world.build(root)
    assert code == ExitStatus.INPUT
    assert err.startswith("slimline: error: reading tool.slimline.colour: unknown key 'colour'"), err
    assert "hint: known keys: " in err


def test_network(world: World, tmp_path: Path) -> None:
    """An index that refuses every request (401, no credentials configured)."""
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}}, auth=("user", "secret"))) as index:
        root = write_project(tmp_path / "proj", index.url, package=False)
        code, err = world.build(root)
    assert code == ExitStatus.NETWORK
    assert int(ExitStatus.NETWORK) == 4
    assert err.startswith("slimline: error: reading the index page of tinydep: HTTP 401"), err
    assert "hint: the server wants credentials" in err


BROKEN_BACKEND = """
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("the compiler is missing")


def get_requires_for_build_wheel(config_settings=None):
    return []
"""


def test_build_failure(world: World, tmp_path: Path) -> None:
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=True)
        (root / "backend.py").write_text(BROKEN_BACKEND)
        code, err = world.build(root)
    assert code == ExitStatus.BUILD
    assert int(ExitStatus.BUILD) == 5
    assert "building a wheel of " in err and "the compiler is missing" in err, err


def test_verification_failure(world: World, tmp_path: Path) -> None:
    """The index serves other bytes than the lock recorded (and says so on its page)."""
    other = make_wheel("tinydep", "0.3.0", body="VALUE = 'not what was locked'\n")
    with serve(LocalIndex(files={"tinydep": {WHEEL: other}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=False)
        code, err = world.build(root)
    assert code == ExitStatus.VERIFICATION
    assert int(ExitStatus.VERIFICATION) == 6
    assert "hash mismatch for " in err and WHEEL in err, err
    assert "hint: the file was changed after it was locked" in err


def test_verify_help_states_the_statuses_it_exits_with() -> None:
    """`slimline verify --help` said 3 for a failed verification, which exits 6."""
    proc = run([tool("slimline"), "verify", "--help"])
    text = " ".join(proc.stdout.split())
    assert f"{ExitStatus.VERIFICATION:d} verification failed" in text
    assert "3 verification failed" not in text
    assert "DIR's lock (poetry.lock, uv.lock or pylock.toml)" in text


def test_other(world: World, tmp_path: Path) -> None:
    """A failure of none of the kinds above: the cache cannot be a file."""
    occupied = tmp_path / "occupied"
    occupied.write_text("a file, not a directory\n")
    world.capsys.readouterr()
    code = cli.main(["build", str(tmp_path), "--to", f"oci:{world.out}:t", "--cache-dir", str(occupied)])
    captured = world.capsys.readouterr()
    assert code == ExitStatus.ERROR
    assert int(ExitStatus.ERROR) == 1
    assert captured.err.startswith("slimline: error: ") and str(occupied) in captured.err, captured.err
    assert captured.out == "" and not world.out.exists()


@contextmanager
def stalling_server() -> Iterator[tuple[str, threading.Event]]:
    """A server on 127.0.0.1 that accepts connections and never answers; the event is set on
    the first connection."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.05)
    connected, stop = threading.Event(), threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            held.append(conn)
            connected.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/simple", connected
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to one thread of another process (Linux's tgkill)."""
    number = {"x86_64": 234, "aarch64": 131}[platform.machine()]  # SYS_tgkill
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


def _as_a_foreground_job() -> None:
    """Ctrl-C's default action, as a command typed at a terminal has it: a test run started in the
    background by a non-interactive shell ignores SIGINT, and so would slimline (a program keeps
    ignoring what it was started ignoring, as shells expect)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _to_main_thread(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)  # the kernel gives it to the main thread, as a rule


def _to_a_worker_thread(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C as it may also arrive: at a thread that waits on the network, not the main one."""
    workers = sorted(int(t.name) for t in Path(f"/proc/{proc.pid}/task").iterdir() if int(t.name) != proc.pid)
    assert workers, "the build runs no thread besides its main one"
    _tgkill(proc.pid, workers[-1], signal.SIGINT)


@pytest.mark.parametrize("deliver", [_to_main_thread, _to_a_worker_thread])
def test_interrupted(tmp_path: Path, deliver: Callable[[subprocess.Popen[str]], None]) -> None:
    """SIGINT while the index stalls: 130, one line, no traceback, no output."""
    cache = tmp_path / "cache"
    base = make_base(Cache(cache), tmp_path / "base")
    out = tmp_path / "out"
    with stalling_server() as (url, connected):
        root = write_project(tmp_path / "proj", url, package=False)
        cmd = [
            tool("slimline"),
            "build",
            str(root),
            "--base",
            base,
            "--to",
            f"oci:{out}:t",
            "--cache-dir",
            str(cache),
        ]
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_as_a_foreground_job,
        )  # fmt: skip
        try:
            assert connected.wait(60), "the build never asked the index"
            time.sleep(0.2)
            deliver(proc)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == ExitStatus.INTERRUPTED
    assert int(ExitStatus.INTERRUPTED) == 130, stderr
    assert "slimline: interrupted; outputs were left as they were" in stderr
    assert "Traceback" not in stderr
    assert stdout == "" and not out.exists()


def test_python_m_has_the_same_statuses(tmp_path: Path) -> None:
    missing = tmp_path / "no-project"
    missing.mkdir()
    env = {"SLIMLINE_CACHE_DIR": str(tmp_path / "cache")}
    proc = run([sys.executable, "-m", "slimline", "build", str(missing)], env=env, check=False)
    assert proc.returncode == ExitStatus.INPUT and proc.stdout == ""
    assert "no pyproject.toml here" in proc.stderr
