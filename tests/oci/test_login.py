"""``slimline login`` / ``logout`` against the real registry server with htpasswd auth."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import ExitStatus
from slimline.http import Http
from slimline.oci.credentials import Credentials
from slimline.oci.reference import RegistryRef, parse
from slimline.oci.registry import push
from tests.oci.registry_helpers import image, registry
from tests.support import tool

pytestmark = pytest.mark.container


def _slimline(*args: str, stdin: str, auth: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("slimline"), *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(auth.parent),
            "REGISTRY_AUTH_FILE": str(auth),
            # the slimline under test, not the one the venv's console script would import
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
    )


def test_login_checks_then_stores_and_logout_removes(tmp_path: Path) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {"other.example.invalid": {"auth": "eDp5"}}}))
    with registry(tmp_path / "reg", auth="htpasswd") as r:
        password = r.users["alice"]
        wrong = _slimline("login", r.host, "-u", "alice", "--password-stdin", stdin="nope-nope\n", auth=auth)
        assert wrong.returncode == ExitStatus.NETWORK
        assert "401" in wrong.stderr or "credentials" in wrong.stderr
        assert "nope-nope" not in wrong.stderr + wrong.stdout
        assert r.host not in json.loads(auth.read_text())["auths"]  # nothing stored

        ok = _slimline("login", r.host, "-u", "alice", "--password-stdin", stdin=password + "\n", auth=auth)
        assert ok.returncode == 0, ok.stderr
        assert password not in ok.stderr + ok.stdout
        assert stat.S_IMODE(auth.stat().st_mode) == 0o600
        auths = json.loads(auth.read_text())["auths"]
        assert set(auths) == {"other.example.invalid", r.host}  # other entries kept

        # what was stored is what a push uses
        cache = Cache(tmp_path / "cache")
        target = parse(f"docker://{r.host}/team/app:1", role="output")
        assert isinstance(target, RegistryRef)
        out = push(
            [image(cache)], target, ctx=Context(cache, given_http=Http()), credentials=Credentials((auth,))
        )
        assert out.startswith(f"{r.host}/team/app@sha256:")

        gone = _slimline("logout", r.host, stdin="", auth=auth)
        assert gone.returncode == 0, gone.stderr
        assert set(json.loads(auth.read_text())["auths"]) == {"other.example.invalid"}
