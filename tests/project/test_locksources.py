"""A lock may take packages only from the sources the project configures (checked before any download)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from slimline.project import lockfile, locksources, pyproject

PYPROJECT = """\
[project]
name = "app"
version = "1.0"
requires-python = ">=3.11"
dependencies = ["inhouse", "vendored @ https://files.example.test/vendored-1.0-py3-none-any.whl"]

[tool.poetry.dependencies]
forked = {git = "https://git.example.test/forked.git"}

[[tool.poetry.source]]
name = "corp"
url = "https://corp.example.test/simple/"
priority = "supplemental"
"""

HASH = "sha256:" + "ab" * 32


def _package(name: str, source: str, deps: str = "") -> str:
    return textwrap.dedent(
        f"""\
        [[package]]
        name = "{name}"
        version = "1.0"
        description = ""
        optional = false
        python-versions = "*"
        groups = ["main"]
        files = [{{file = "{name}-1.0-py3-none-any.whl", hash = "{HASH}"}}]
        {deps}
        {source}
        """
    )


def _check(tmp_path: Path, *packages: str, default: str = "https://default.example.test/simple") -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    body = "\n".join(packages)
    (tmp_path / "poetry.lock").write_text(
        body + '\n[metadata]\nlock-version = "2.1"\npython-versions = ">=3.11"\ncontent-hash = "x"\n'
    )
    project = pyproject.load(tmp_path)
    locksources.check(project, lockfile.load(tmp_path / "poetry.lock"), default_index=default)


def _legacy(url: str) -> str:
    return f'[package.source]\ntype = "legacy"\nurl = "{url}"\nreference = "corp"\n'


def test_configured_sources_and_declared_urls_pass(tmp_path: Path) -> None:
    _check(
        tmp_path,
        _package("plain", ""),  # no source: the default index
        _package(
            "inhouse", _legacy("HTTPS://user:pw@Corp.Example.Test/simple")
        ),  # same source, other spelling
        _package("fromdefault", _legacy("https://default.example.test/simple/")),
        _package(
            "vendored",
            '[package.source]\ntype = "url"\nurl = "https://files.example.test/vendored-1.0-py3-none-any.whl"\n',
        ),
        _package("forked", '[package.source]\ntype = "git"\nurl = "https://git.example.test/forked.git"\n'),
        _package(
            "transitive",
            '[package.source]\ntype = "url"\nurl = "https://other.example.test/t-1.0.tar.gz"\n',
        ),
        _package(
            "needs-transitive",
            "",
            deps='[package.dependencies]\ntransitive = {url = "https://other.example.test/t-1.0.tar.gz"}\n',
        ),
    )


@pytest.mark.parametrize(
    "source",
    [
        _legacy("https://evil.example.test/simple"),
        _legacy("https://corp.example.test/other-simple"),
        '[package.source]\ntype = "url"\nurl = "https://evil.example.test/inhouse-1.0-py3-none-any.whl"\n',
        '[package.source]\ntype = "git"\nurl = "https://evil.example.test/inhouse.git"\n',
    ],
)
def test_a_package_from_elsewhere_is_refused_naming_it(tmp_path: Path, source: str) -> None:
    with pytest.raises(locksources.LockSourceError) as info:
        _check(tmp_path, _package("plain", ""), _package("inhouse", source))
    message = str(info.value)
    assert "inhouse 1.0" in message and "plain" not in message.split("configure:")[1]
    assert "evil.example.test" in message or "other-simple" in message
    assert "poetry lock" in message
