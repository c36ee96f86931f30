"""Progress on a terminal: the real command line in a pseudo-terminal shows bars (bytes, rate)
for a download the local index serves slowly; with stderr not a terminal it prints the plain
lines and no control character; with -q nothing but the digest."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.build.helpers import make_base, write_project
from tests.support import tool

WHEEL = "tinydep-0.3.0-py3-none-any.whl"
PAYLOAD = 3 << 20  # bytes of incompressible data in the wheel
SECONDS = 1.5  # how long the index takes to send it
REPORT_LINE = re.compile(r"\[\s*\d+\.\d+s\] ")


@contextmanager
def slow_index(wheel: bytes) -> Iterator[str]:
    """A simple index on 127.0.0.1 whose one file trickles out over about ``SECONDS``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/simple/tinydep":
                page = {
                    "meta": {"api-version": "1.1"},
                    "name": "tinydep",
                    "files": [
                        {"filename": WHEEL, "url": f"/files/{WHEEL}", "hashes": {"sha256": sha256(wheel)}}
                    ],
                }
                body, ctype = json.dumps(page).encode(), "application/vnd.pypi.simple.v1+json"
            elif self.path == f"/files/{WHEEL}":
                body, ctype = wheel, "application/octet-stream"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = 64 << 10
            pause = SECONDS * step / len(body) if ctype == "application/octet-stream" else 0
            for i in range(0, len(body), step):
                self.wfile.write(body[i : i + step])
                time.sleep(pause)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def _command(tmp_path: Path, index_url: str, wheel: bytes, name: str, *flags: str) -> tuple[list[str], Path]:
    root = write_project(tmp_path / name / "proj", index_url, package=False)
    lock = root / "poetry.lock"
    small = sha256(make_wheel("tinydep", "0.3.0"))
    lock.write_text(lock.read_text().replace(small, sha256(wheel)))
    cache = tmp_path / name / "cache"
    base = make_base(Cache(cache), tmp_path / name / "base")
    out = tmp_path / name / "out"
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
    return [*cmd, *flags], tmp_path / name


def run_in_pty(cmd: list[str], *, cwd: Path, timeout: float = 120) -> tuple[int, str, str]:
    """(status, stdout, what the terminal on stderr received): stdout is a pipe, stderr a pty."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None and not select.select([master], [], [], 0)[0]:
                break
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, out, seen.decode(errors="replace")


def test_a_terminal_sees_progress_bars(tmp_path: Path) -> None:
    wheel = make_wheel("tinydep", "0.3.0", extra={"tinydep/data.bin": os.urandom(PAYLOAD)})
    with slow_index(wheel) as url:
        cmd, cwd = _command(tmp_path, url, wheel, "tty")
        status, out, terminal = run_in_pty(cmd, cwd=cwd)
        assert status == 0, terminal
        assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out), out  # stdout stays the digest alone
        assert "\x1b[" in terminal, "no control sequence: the live display never ran"
        assert f"downloading {WHEEL}" in terminal, terminal
        # a bar with bytes done of the total and a rate, as rich's download columns write them
        assert re.search(r"\d+(\.\d+)?/3\.\d MiB", terminal), terminal
        assert re.search(r"\d+(\.\d+)? [kKMG]i?B/s", terminal), terminal
        assert "━" in terminal
        assert "fetching 1 distributions" in terminal  # the step lines are there too

        # -q: nothing on the terminal, the digest on stdout
        cmd, cwd = _command(tmp_path, url, wheel, "quiet", "-q")
        status, quiet_out, quiet_terminal = run_in_pty(cmd, cwd=cwd)
    assert status == 0 and quiet_out == out
    assert quiet_terminal == "", quiet_terminal


def test_without_a_terminal_the_lines_have_no_control_characters(tmp_path: Path) -> None:
    wheel = make_wheel("tinydep", "0.3.0", extra={"tinydep/data.bin": os.urandom(PAYLOAD)})
    with slow_index(wheel) as url:
        cmd, cwd = _command(tmp_path, url, wheel, "pipe")
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TERM": "xterm-256color"},
        )
    assert proc.returncode == 0, proc.stderr
    assert "fetching 1 distributions" in proc.stderr
    assert all(REPORT_LINE.match(line) for line in proc.stderr.splitlines()), proc.stderr
    control = [c for c in proc.stderr + proc.stdout if ord(c) < 32 and c != "\n"]
    assert not control, repr(control[:10])


PROBE = """
import sys, slimline.__main__ as m
code = 0
try:
    m.run()
except SystemExit as e:
    code = e.code
print("rich loaded" if "rich" in sys.modules else "rich not loaded")
sys.exit(code)
"""


@pytest.mark.parametrize("terminal", [False, True])
def test_a_small_build_does_not_load_rich(tmp_path: Path, terminal: bool) -> None:
    """rich is imported only for a bar worth showing: never without a terminal, and not on a
    terminal for a build that moves less than a MiB at a time (a rebuild from the memo)."""
    import sys

    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        cmd, cwd = _command(tmp_path, index.url, wheel, "small")
        probe = [sys.executable, "-c", PROBE, *cmd[1:]]
        if terminal:
            status, out, seen = run_in_pty(probe, cwd=cwd)
        else:
            proc = subprocess.run(probe, cwd=cwd, capture_output=True, text=True, timeout=120)
            status, out, seen = proc.returncode, proc.stdout, proc.stderr
    assert status == 0, seen
    assert out.splitlines()[-1] == "rich not loaded", out
    assert "fetching 1 distributions" in seen
