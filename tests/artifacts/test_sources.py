"""Where the default index and source credentials come from (offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slimline.artifacts.sources import credentials_for, default_index_url
from slimline.context import SourceAuth
from slimline.http import BasicAuth

INDEX_VARS = ("SLIMLINE_INDEX_URL", "PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No index variables, pip config files only from tmp_path, no netrc or Poetry config."""
    for name in INDEX_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc-xdg"))
    monkeypatch.setenv("POETRY_CONFIG_DIR", str(tmp_path / "poetry"))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.delenv("PIP_CONFIG_FILE", raising=False)
    for key in list(os.environ):
        if key.startswith("POETRY_HTTP_BASIC_"):
            monkeypatch.delenv(key)
    return tmp_path


def test_setting_wins_over_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example.invalid/simple")
    monkeypatch.setenv("SLIMLINE_INDEX_URL", "https://slim.example.invalid/simple/")
    assert (
        default_index_url(setting="https://set.example.invalid/simple/")
        == "https://set.example.invalid/simple"
    )
    assert default_index_url() == "https://slim.example.invalid/simple"
    monkeypatch.delenv("SLIMLINE_INDEX_URL")
    assert default_index_url() == "https://pip.example.invalid/simple"


def test_pip_config_file_sections(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = clean_env / "pip.conf"
    conf.write_text("[global]\nindex-url = https://global.example.invalid/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert default_index_url() == "https://global.example.invalid/simple"
    conf.write_text(
        "[global]\nindex-url = https://global.example.invalid/simple\n"
        "[install]\nindex-url = https://install.example.invalid/simple\n"
    )
    assert default_index_url() == "https://install.example.invalid/simple"
    # the user file is read too, and PIP_CONFIG_FILE is read last (it wins)
    user = clean_env / "home" / ".config" / "pip" / "pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[global]\nindex-url = https://user.example.invalid/simple\n")
    assert default_index_url() == "https://install.example.invalid/simple"
    monkeypatch.delenv("PIP_CONFIG_FILE")
    assert default_index_url() == "https://user.example.invalid/simple"


def test_falls_back_to_pips_builtin_default(clean_env: Path) -> None:
    from pip._internal.models.index import PyPI

    assert default_index_url() == PyPI.simple_url.rstrip("/")


def test_no_index_anywhere_explains_how_to_set_one(clean_env: Path) -> None:
    # A host with no pip at all: pip cannot be imported here and no python on PATH has it.
    code = (
        "import sys; sys.modules['pip'] = None\n"
        "from slimline.artifacts.sources import default_index_url, NoIndexConfigured\n"
        "try:\n    default_index_url()\nexcept NoIndexConfigured as err:\n    print(err)\n"
    )
    empty = clean_env / "empty-bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "no package index is configured" in out.stdout
    assert "SLIMLINE_INDEX_URL" in out.stdout and "index-url" in out.stdout and "PIP_INDEX_URL" in out.stdout


def test_credentials_from_poetry_environment(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POETRY_HTTP_BASIC_MY_CORP_REPO_USERNAME", "alice")
    monkeypatch.setenv("POETRY_HTTP_BASIC_MY_CORP_REPO_PASSWORD", "s3cret")
    auth = credentials_for("my-corp.repo", "https://repo.example.invalid/simple")
    assert auth == BasicAuth("alice", "s3cret")
    assert "s3cret" not in repr(auth)
    assert credentials_for("other", "https://repo.example.invalid/simple") is None


def test_credentials_from_poetry_auth_toml(clean_env: Path) -> None:
    cfg = clean_env / "poetry"
    cfg.mkdir()
    (cfg / "auth.toml").write_text('[http-basic.corp]\nusername = "bob"\npassword = "pw"\n')
    assert credentials_for("corp", "https://repo.example.invalid/simple") == BasicAuth("bob", "pw")


def test_credentials_from_url_then_netrc(clean_env: Path) -> None:
    assert credentials_for("corp", "https://u:p%40ss@repo.example.invalid/simple") == BasicAuth("u", "p@ss")
    (clean_env / "netrc").write_text("machine repo.example.invalid login carol password pw2\n")
    (clean_env / "netrc").chmod(0o600)
    assert credentials_for("corp", "https://repo.example.invalid/simple") == BasicAuth("carol", "pw2")
    assert credentials_for("", "https://elsewhere.example.invalid/x") is None


GIVEN = (
    SourceAuth("corp", "https://repo.example.invalid/simple", BasicAuth("alice", "from-poetry")),
    SourceAuth("team", "https://repo.example.invalid/team/simple", BasicAuth("tess", "team-pw")),
    SourceAuth("plain", "http://plain.example.invalid/simple", BasicAuth("pat", "plain-pw")),
)


def test_handed_over_credentials_come_first_by_name(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POETRY_HTTP_BASIC_CORP_USERNAME", "env-user")
    url = "https://repo.example.invalid/simple"
    assert credentials_for("corp", url) == BasicAuth("env-user", "")  # without them: the environment
    assert credentials_for("CORP", url, given=GIVEN) == BasicAuth("alice", "from-poetry")
    assert credentials_for("team", url, given=GIVEN) == BasicAuth("tess", "team-pw")


def test_handed_over_credentials_by_host_and_longest_path(clean_env: Path) -> None:
    # a source the lock names differently, or a file URL: the source on the same host whose path fits best
    assert credentials_for("", "https://repo.example.invalid/team/simple/x/", given=GIVEN) == GIVEN[1].auth
    assert credentials_for("", "https://repo.example.invalid/files/x.whl", given=GIVEN) == GIVEN[0].auth
    assert credentials_for("other", "https://repo.example.invalid/simple/", given=GIVEN) == GIVEN[0].auth
    assert credentials_for("", "https://elsewhere.example.invalid/simple", given=GIVEN) is None
    assert credentials_for("", "https://plain.example.invalid/simple", given=GIVEN) == GIVEN[2].auth


def test_handed_over_https_credentials_never_go_over_http(clean_env: Path) -> None:
    assert credentials_for("corp", "http://repo.example.invalid/simple", given=GIVEN) is None
    assert credentials_for("", "http://repo.example.invalid/files/x.whl", given=GIVEN) is None
    assert "from-poetry" not in repr(GIVEN)
