"""End to end: slimline's wheel installed into a real Poetry's own venv; ``poetry image build``.

The project's one dependency lives on a local index (127.0.0.1) that demands HTTP basic
credentials.  Poetry holds them as users keep them: the user name in Poetry's ``auth.toml``,
the password in the keyring (a small file-backed keyring backend, made here, that Poetry uses
like any other).  slimline on its own finds the user name but not the password; through the
plugin, Poetry's own authenticator finds both and hands them over in memory.  The image must
run, and the password must appear in no output, no image and no file slimline wrote.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline.cli.main import names
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.support import ROOT, cache_dir, podman_run, poetry_venv, run, slimline, slimline_wheel

pytestmark = [pytest.mark.network, pytest.mark.container]

KEYRING_BACKEND = '''\
"""A keyring backend that keeps its entries in the JSON file $SLIMLINE_TEST_KEYRING."""
import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class FileBackend(KeyringBackend):
    priority = 1

    def _entries(self):
        path = Path(os.environ["SLIMLINE_TEST_KEYRING"])
        return json.loads(path.read_text()) if path.exists() else {}

    def get_password(self, service, username):
        return self._entries().get(f"{service} {username}")

    def set_password(self, service, username, password):
        entries = self._entries()
        entries[f"{service} {username}"] = password
        Path(os.environ["SLIMLINE_TEST_KEYRING"]).write_text(json.dumps(entries))

    def delete_password(self, service, username):
        entries = self._entries()
        entries.pop(f"{service} {username}", None)
        Path(os.environ["SLIMLINE_TEST_KEYRING"]).write_text(json.dumps(entries))
'''

PYPROJECT = """\
[project]
name = "hello-private"
version = "0.1.0"
description = "uses a package from a private index"
requires-python = ">=3.11"
dependencies = ["tinydep (==1.0.0)"]

[project.scripts]
hello-private = "hello_private:main"

[tool.poetry]
packages = [{{ include = "hello_private", from = "src" }}]

[[tool.poetry.source]]
name = "private"
url = "{url}"
priority = "primary"

[build-system]
requires = ["poetry-core>=2.0,<3.0"]
build-backend = "poetry.core.masonry.api"
"""

MAIN = """\
import tinydep


def main() -> None:
    print(f"hello-private: {tinydep.MESSAGE}")
"""


@pytest.fixture(scope="module")
def poetry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Poetry with this worktree's slimline installed into its own venv."""
    work = tmp_path_factory.mktemp("poetry-plugin")
    return poetry_venv(work / "venv", slimline_wheel(work / "dist"))


@pytest.fixture
def private_index() -> Iterator[LocalIndex]:
    """A fresh dependency (its bytes unique to this run, so no cache holds it) behind a fresh password."""
    token = secrets.token_hex(8)
    wheel = make_wheel("tinydep", "1.0.0", body=f'MESSAGE = "tinydep {token}"\n')
    index = LocalIndex({"tinydep": {"tinydep-1.0.0-py3-none-any.whl": wheel}}, auth=("alice", f"pw-{token}"))
    with serve(index) as served:
        yield served


def _poetry_world(tmp_path: Path, index: LocalIndex) -> tuple[Path, dict[str, str]]:
    """The project, and the environment in which Poetry keeps its config and keyring in tmp_path."""
    keyring_dir = tmp_path / "keyring"
    keyring_dir.mkdir()
    (keyring_dir / "slimline_test_keyring.py").write_text(KEYRING_BACKEND)
    env = {
        "PYTHONPATH": str(keyring_dir),  # the keyring backend, and not this worktree's sources
        "PYTHON_KEYRING_BACKEND": "slimline_test_keyring.FileBackend",
        "SLIMLINE_TEST_KEYRING": str(tmp_path / "keyring.json"),
        "POETRY_CONFIG_DIR": str(tmp_path / "poetry-config"),
        "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
        "POETRY_VIRTUALENVS_CREATE": "false",
        "POETRY_NO_INTERACTION": "1",
        "SLIMLINE_CACHE_DIR": str(cache_dir()),
        "NETRC": str(tmp_path / "no-netrc"),
    }
    project = tmp_path / "hello-private"
    (project / "src" / "hello_private").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT.format(url=index.url))
    (project / "src" / "hello_private" / "__init__.py").write_text(MAIN)
    return project, env


def _files_holding(root: Path, secret: bytes, *, since: float) -> list[str]:
    """Files under ``root`` changed since ``since`` whose bytes (gunzipped too) hold ``secret``."""
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.stat().st_mtime < since:
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data += gzip.decompress(data)
        if secret in data:
            found.append(str(path))
    return found


def test_poetry_image_build_uses_poetrys_keyring_credentials(
    poetry: Path, private_index: LocalIndex, tmp_path: Path
) -> None:
    project, env = _poetry_world(tmp_path, private_index)
    user, password = private_index.auth or ("", "")
    run([poetry, "config", "http-basic.private", user, password], cwd=project, env=env)
    auth_toml = (tmp_path / "poetry-config" / "auth.toml").read_text()
    assert user in auth_toml and password not in auth_toml  # the password went to the keyring
    assert password in (tmp_path / "keyring.json").read_text()
    run([poetry, "lock"], cwd=project, env=env, timeout=900)
    lock = (project / "poetry.lock").read_text()
    assert 'reference = "private"' in lock and private_index.url in lock

    # slimline alone reads auth.toml (the user name) but not Poetry's keyring: the index refuses it
    mine = {**env, "PYTHONPATH": str(ROOT / "src")}
    alone = slimline("build", str(project), "--to", f"oci:{tmp_path / 'alone'}:v1", env=mine, check=False)
    assert alone.returncode == 4, alone.stderr  # a network error: errors.ExitStatus.NETWORK
    assert "401" in alone.stderr and password not in alone.stderr + alone.stdout

    asked = len(private_index.requests)
    since = time.time() - 1
    layout = tmp_path / "out"
    # from a folder inside the project: Poetry finds the project above it, as for its own commands
    built = run(
        [poetry, "image", "build", "-v", "--to", f"oci:{layout}:v1", "--label", "via=poetry"],
        cwd=project / "src",
        env=env,
        timeout=1800,
    )
    digest = built.stdout.strip().splitlines()[-1]
    assert digest.startswith("sha256:"), built.stdout
    sent = {header for path, header in private_index.requests[asked:] if path.startswith("/files/")}
    assert len(sent) == 1 and None not in sent  # the wheel was fetched, with credentials

    out = podman_run(f"oci:{layout}:v1").stdout
    token = password.removeprefix("pw-")
    assert out.strip() == f"hello-private: tinydep {token}"
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest

    secret = password.encode()
    assert password not in built.stdout + built.stderr
    assert not _files_holding(layout, secret, since=0)
    assert not _files_holding(cache_dir(), secret, since=since)
    assert not _files_holding(project, secret, since=0)


def test_poetry_image_quiet_prints_only_the_digest_and_errors_go_through_slimline(
    poetry: Path, tmp_path: Path
) -> None:
    project = tmp_path / "nolock"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "nolock"\nversion = "1"\n')
    env = {
        "PYTHONPATH": "",
        "POETRY_CONFIG_DIR": str(tmp_path / "cfg"),
        "SLIMLINE_CACHE_DIR": str(cache_dir()),
    }
    failed = run([poetry, "image", "build", "-q"], cwd=project, env=env, check=False)
    assert failed.returncode == 3 and failed.stdout == ""  # an input error: errors.ExitStatus.INPUT
    assert f"reading {project}: " in failed.stderr and "has no lock file" in failed.stderr
    assert "Traceback" not in failed.stderr
    usage = run([poetry, "image", "build", "--compression", "brotli"], cwd=project, env=env, check=False)
    assert usage.returncode == 2 and "invalid choice: 'brotli'" in usage.stderr
    listed = run([poetry, "list"], env=env).stdout
    assert all(f"image {name} " in listed for name in names())
    assert os.path.isdir(project) and not (project / "poetry.lock").exists()
