"""Credential lookup and challenge parsing, with real files and a real credential helper program."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from slimline.oci.auth import is_loopback, parse_challenges
from slimline.oci.credentials import Credential, CredentialError, Credentials


def test_parse_bearer_challenge_with_commas_in_quotes() -> None:
    (ch,) = parse_challenges(
        'Bearer realm="https://auth.example.test/token",service="registry.example.test",'
        'scope="repository:library/python:pull,push"'
    )
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.example.test/token"
    assert ch.params["service"] == "registry.example.test"
    assert ch.params["scope"] == "repository:library/python:pull,push"


def test_parse_several_challenges_and_escapes() -> None:
    chs = parse_challenges(
        'Basic realm="a \\"quoted\\" realm", Bearer realm="https://t.test/x",error=insufficient_scope'
    )
    assert [c.scheme for c in chs] == ["basic", "bearer"]
    assert chs[0].realm == 'a "quoted" realm'
    assert chs[1].params == {"realm": "https://t.test/x", "error": "insufficient_scope"}


def test_loopback_hosts() -> None:
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.1:41234") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.test:5000") and not is_loopback("10.0.0.1")


def _auth(user: str, pw: str) -> str:
    return base64.b64encode(f"{user}:{pw}".encode()).decode()


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_docker_config_auths_and_hub_key(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "docker" / "config.json",
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _auth("hubuser", "hubpw")},
                "http://reg.example.test:5000/v2/": {"auth": _auth("u", "p:with:colons")},
            }
        },
    )
    creds = Credentials.from_env({"HOME": str(tmp_path / "home"), "DOCKER_CONFIG": str(cfg.parent)})
    hub = creds.lookup("docker.io", "library/python")
    assert hub == Credential("hubuser", "hubpw", f"auths in {cfg}")
    other = creds.lookup("reg.example.test:5000", "x")
    assert other is not None and (other.username, other.secret) == ("u", "p:with:colons")
    assert creds.lookup("reg.example.test", "x") is None  # the port is part of the host
    assert "hubpw" not in repr(hub)


def test_registry_auth_file_wins_and_podman_namespaces(tmp_path: Path) -> None:
    podman_file = _write(
        tmp_path / "auth.json",
        {
            "auths": {
                "reg.example.test": {"auth": _auth("whole", "1")},
                "reg.example.test/team": {"auth": _auth("team", "2")},
                "reg.example.test/team/app": {"auth": _auth("app", "3")},
            }
        },
    )
    docker = _write(
        tmp_path / "home" / ".docker" / "config.json",
        {"auths": {"reg.example.test": {"auth": _auth("docker", "4")}}},
    )
    creds = Credentials.from_env({"HOME": str(tmp_path / "home"), "REGISTRY_AUTH_FILE": str(podman_file)})
    assert creds.files[0] == podman_file and creds.files[-1] == docker

    def user(repo: str) -> str:
        found = creds.lookup("reg.example.test", repo)
        assert found is not None
        return found.username

    assert user("team/app") == "app"
    assert user("team/other") == "team"
    assert user("teamx/app") == "whole"
    assert user("solo") == "whole"
    assert str(podman_file) in creds.describe()


def test_identity_token(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "config.json", {"auths": {"reg.example.test": {"identitytoken": "refresh-me"}}})
    found = Credentials((cfg,)).lookup("reg.example.test")
    assert found is not None and found.identity_token and found.secret == "refresh-me"


def _helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / f"docker-credential-{name}"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)


def test_cred_helpers_and_creds_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    # A real helper program speaking the docker-credential protocol: "get", server URL on stdin.
    _helper(
        bin_dir,
        "slimtest",
        """
[ "$1" = get ] || exit 2
read server
case "$server" in
  reg.example.test) echo '{"ServerURL":"reg.example.test","Username":"helper-user","Secret":"helper-pw"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"<token>","Secret":"id-token"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
""",
    )
    _helper(bin_dir, "broken", "echo 'keychain locked' >&2; exit 3\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = _write(
        tmp_path / "config.json",
        {
            "credHelpers": {"reg.example.test": "slimtest", "broken.example.test": "broken"},
            "credsStore": "slimtest",
            "auths": {"fallback.example.test": {"auth": _auth("file-user", "file-pw")}},
        },
    )
    creds = Credentials((cfg,))
    found = creds.lookup("reg.example.test", "app")
    assert found == Credential("helper-user", "helper-pw", "docker-credential-slimtest")
    hub = creds.lookup("docker.io", "library/python")
    assert hub is not None and hub.identity_token and hub.secret == "id-token"
    # the store has no entry: the auths entry is used
    fallback = creds.lookup("fallback.example.test")
    assert fallback is not None and fallback.username == "file-user"
    with pytest.raises(CredentialError) as err:
        creds.lookup("broken.example.test")
    assert "keychain locked" in str(err.value) and "docker-credential-broken" in str(err.value)


def test_missing_helper_is_an_error(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "config.json", {"credsStore": "does-not-exist-anywhere"})
    with pytest.raises(CredentialError, match="not on PATH"):
        Credentials((cfg,)).lookup("reg.example.test")


def test_broken_file_does_not_echo_its_content(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text('{"auths": {"r": {"auth": "c2VjcmV0LXZhbHVl"}}')  # truncated JSON holding a secret
    with pytest.raises(CredentialError) as err:
        Credentials((cfg,)).lookup("r")
    assert "c2VjcmV0LXZhbHVl" not in str(err.value) and str(cfg) in str(err.value)
