"""A git dependency's checkout with the real git: the locked commit from a repository served on
127.0.0.1 (git's dumb HTTP protocol), and a host that cannot be reached told apart from a wrong
lock by its exit status."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slimline.artifacts.gitcheckout import FetchError, GitUnreachable, checkout_git
from slimline.errors import ExitStatus
from tests.artifacts.helpers import git, write_project


@contextmanager
def _served(directory: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served_repo(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository of a small project under ``tmp_path/srv`` and its commit."""
    source = write_project(tmp_path / "tiny", "tiny", backend="poetry-core", body="X = 1\n")
    git("init", "-q", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-qm", "tiny", cwd=source)
    git("clone", "-q", "--bare", str(source), str(tmp_path / "srv" / "tiny.git"), cwd=tmp_path)
    git("update-server-info", cwd=tmp_path / "srv" / "tiny.git")
    return tmp_path / "srv", git("rev-parse", "HEAD", cwd=source)


def test_the_locked_commit_is_checked_out(tmp_path: Path, served_repo: tuple[Path, str]) -> None:
    srv, commit = served_repo
    with _served(srv) as url:
        dest = checkout_git(f"{url}/tiny.git", commit=commit, dest=tmp_path / "out")
    assert (dest / "tiny" / "__init__.py").read_text().endswith("X = 1\n")


def test_a_missing_commit_is_the_lock_s_fault(tmp_path: Path, served_repo: tuple[Path, str]) -> None:
    srv, _ = served_repo
    with _served(srv) as url, pytest.raises(FetchError) as info:
        checkout_git(f"{url}/tiny.git", commit="0" * 40, dest=tmp_path / "out")
    assert not isinstance(info.value, GitUnreachable) and info.value.exit_status == ExitStatus.INPUT
    assert "the locked commit exists" in info.value.hint


def test_a_host_that_cannot_be_reached_is_a_network_failure(tmp_path: Path) -> None:
    # python-poetry/poetry locks poetry-core from a git host; offline, that was exit 3 (input)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    with pytest.raises(GitUnreachable) as info:
        checkout_git(f"http://127.0.0.1:{port}/tiny.git", commit="a" * 40, dest=tmp_path / "out")
    assert info.value.exit_status == ExitStatus.NETWORK
    assert "Failed to connect" in str(info.value) or "Connection refused" in str(info.value)
    assert "check the network and proxy, or vendor it as a path dependency" in info.value.hint
