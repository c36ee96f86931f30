"""[tool.slimline] and command-line overrides into Settings (offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slimline.project import settings
from slimline.project.settings import DebianSettings, Settings, SettingsError


def test_defaults() -> None:
    s = settings.load({})
    assert s == Settings()
    assert s.platforms == ("linux/amd64",) and s.venv == "/app/.venv" and s.workdir == "/app"
    assert s.compression == "gzip" and s.bytecode is False and s.user is None


def test_every_key() -> None:
    table: dict[str, Any] = {
        "base": "debian:trixie",
        "platforms": ["linux/amd64", "arm64", "linux/arm64/v8"],
        "venv": "/opt/venv/",
        "workdir": "/srv",
        "entrypoint": ["/opt/venv/bin/app"],
        "cmd": ["serve"],
        "user": "1000:1000",
        "env": {"A": "1"},
        "labels": {"org.opencontainers.image.title": "demo"},
        "ports": [8000, "53/udp"],
        "with": ["Dev,docs"],
        "without": ["test"],
        "only": [],
        "extras": ["socks http2"],
        "all-extras": False,
        "include": ["app/**"],
        "exclude": ["**/*.pyc"],
        "compression": "zstd",
        "compression-level": 3,
        "index-url": "https://mirror.invalid/simple",
        "tag": "demo:1",
        "bytecode": True,
        "debian": {
            "mirror": "http://m.invalid/debian",
            "packages": ["tzdata"],
            "strip-stdlib": False,
            "keyring": "/etc/keys/debian.pgp",
            "keep-gconv": True,
            "check-valid-until": False,
        },
    }
    s = settings.load(table)
    assert s.platforms == ("linux/amd64", "linux/arm64/v8")
    assert s.venv == "/opt/venv" and s.ports == ("8000/tcp", "53/udp")
    assert s.with_groups == ("dev", "docs") and s.without_groups == ("test",) and s.only_groups == ()
    assert s.extras == ("socks", "http2") and s.compression == "zstd" and s.compression_level == 3
    assert s.entrypoint == ("/opt/venv/bin/app",) and s.cmd == ("serve",)
    assert s.debian == DebianSettings(
        mirror="http://m.invalid/debian",
        packages=("tzdata",),
        strip_stdlib=False,
        keyring=Path("/etc/keys/debian.pgp"),
        keep_gconv=True,
        check_valid_until=False,
    )


def test_unverified_and_plain_http_name_packages() -> None:
    s = settings.load({"unverified": ["My_Pkg", "other"], "plain-http": "Local.Pkg"})
    assert s.unverified == ("my-pkg", "other") and s.plain_http == ("local-pkg",)
    with pytest.raises(SettingsError, match=r"tool\.slimline\.unverified"):
        settings.load({"unverified": [1]})


def test_overrides_win() -> None:
    s = settings.load(
        {"compression": "zstd", "with": ["dev"], "debian": {"mirror": "a"}},
        overrides={
            "compression": "gzip",
            "with_groups": None,
            "all_extras": True,
            "debian.mirror": "b",
            "platforms": ["linux/arm64"],
        },
    )
    assert (s.compression, s.with_groups, s.all_extras, s.debian.mirror) == ("gzip", ("dev",), True, "b")
    assert s.platforms == ("linux/arm64/v8",)
    both = settings.load({}, overrides={"platforms": "linux/amd64,linux/arm64"}).platforms
    assert both == ("linux/amd64", "linux/arm64/v8")


def test_command_line_env_and_labels_add_to_the_tables() -> None:
    s = settings.load(
        {"env": {"A": "1", "B": "2"}, "labels": {"team": "web"}},
        overrides={"env": {"B": "3", "C": ""}, "labels": {"org.opencontainers.image.revision": "abc"}},
    )
    assert s.env == {"A": "1", "B": "3", "C": ""}
    assert s.labels == {"team": "web", "org.opencontainers.image.revision": "abc"}
    assert settings.load({}, overrides={"labels": {"k": "v"}}).labels == {"k": "v"}
    with pytest.raises(SettingsError) as info:
        settings.load({}, overrides={"labels": {"k": 1}})
    assert info.value.key == "--label"


@pytest.mark.parametrize(
    ("table", "key", "suggestion"),
    [
        ({"platform": ["linux/amd64"]}, "tool.slimline.platform", "platforms"),
        ({"all_extra": True}, "tool.slimline.all_extra", "all-extras"),
        ({"debian": {"mirrors": "x"}}, "tool.slimline.debian.mirrors", "mirror"),
        ({"frobnicate": 1}, "tool.slimline.frobnicate", "known keys"),
    ],
)
def test_unknown_keys(table: dict[str, Any], key: str, suggestion: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings.load(table)
    assert info.value.key == key
    assert "unknown key" in str(info.value) and suggestion in str(info.value)


def test_unknown_override() -> None:
    with pytest.raises(SettingsError) as info:
        settings.load({}, overrides={"compresion": "zstd"})
    assert info.value.key == "--compresion" and "compression" in str(info.value)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"base": 3}, "tool.slimline.base"),
        ({"platforms": ["linux/sparc"]}, "tool.slimline.platforms"),
        ({"platforms": ["windows/amd64"]}, "tool.slimline.platforms"),
        ({"platforms": []}, "tool.slimline.platforms"),
        ({"venv": "relative/venv"}, "tool.slimline.venv"),
        ({"cmd": "serve"}, "tool.slimline.cmd"),
        ({"env": {"A": 1}}, "tool.slimline.env"),
        ({"ports": [70000]}, "tool.slimline.ports"),
        ({"ports": ["http"]}, "tool.slimline.ports"),
        ({"all-extras": "yes"}, "tool.slimline.all-extras"),
        ({"compression": "xz"}, "tool.slimline.compression"),
        ({"compression-level": True}, "tool.slimline.compression-level"),
        ({"debian": {"strip-stdlib": 1}}, "tool.slimline.debian.strip-stdlib"),
        ({"debian": []}, "tool.slimline.debian"),
    ],
)
def test_wrong_types_name_the_key(table: dict[str, Any], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings.load(table)
    assert info.value.key == key
    assert key in str(info.value)


def test_sbom_settings() -> None:
    assert settings.load({}).sbom is True and settings.load({}).sbom_formats == ("cyclonedx",)
    s = settings.load({"sbom-format": ["spdx", "cyclonedx", "spdx"], "builder-id": "urn:ci"})
    assert s.sbom_formats == ("spdx", "cyclonedx") and s.builder_id == "urn:ci"
    assert settings.load({"sbom": True}, overrides={"sbom": False}).sbom is False
    with pytest.raises(SettingsError) as info:
        settings.load({"sbom-format": ["swid"]})
    assert info.value.key == "tool.slimline.sbom-format"


def test_slim_debug_and_slim_keep() -> None:
    chosen = settings.load(
        {"slim": True, "debug": True, "slim-keep": {"NumPy": ["numpy/testing/**"], "b_c": []}}
    )
    assert chosen.slim and chosen.debug and chosen.stdlib_bytecode
    assert chosen.slim_keep == {"b-c": (), "numpy": ("numpy/testing/**",)}
    assert settings.load({}, overrides={"slim": True, "stdlib-bytecode": False}).stdlib_bytecode is False
    bad_values: list[object] = [["numpy"], {"numpy": "numpy/testing/**"}, {":all:": []}]
    for bad in bad_values:
        with pytest.raises(SettingsError) as err:
            settings.load({"slim-keep": bad})
        assert err.value.key.startswith("tool.slimline.slim-keep")


def test_the_shared_cache_repository_and_read_only_flag() -> None:
    table = {"cache-repo": "registry.example/team/slimline-cache"}
    s = settings.load(table, overrides={"cache_repo_readonly": True})
    assert (s.cache_repo, s.cache_repo_readonly) == ("registry.example/team/slimline-cache", True)
    assert settings.load({}).cache_repo is None
    with pytest.raises(SettingsError) as err:
        settings.load({"cache-repo-readonly": "yes"})
    assert err.value.key == "tool.slimline.cache-repo-readonly"
