"""A lock may take packages only from the sources the project configures (checked before any download)."""

from __future__ import annotations

import contextlib
import functools
import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slimline.project import lockfile, locksources, pyproject
from tests.artifacts.helpers import LocalIndex, git, make_wheel, serve, write_project
from tests.support import poetry_env, run, tool

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


@contextlib.contextmanager
def _served(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP on 127.0.0.1 (git's dumb protocol needs only static files)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # the real Poetry locks twice (about 7 s each)
@pytest.mark.parametrize("rev", ["", "@{commit}#egg=tiny"])
def test_a_pep508_git_dependency_locked_by_poetry_passes(tmp_path: Path, rev: str) -> None:
    # python-poetry/poetry's own pyproject says `poetry-core @ git+https://.../poetry-core.git`;
    # Poetry locks the repository without `git+` (and without `@rev`).
    source = write_project(tmp_path / "tiny", "tiny", backend="poetry-core", body="X = 1\n")
    git("init", "-q", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-qm", "tiny", cwd=source)
    commit = git("rev-parse", "HEAD", cwd=source)
    git("clone", "-q", "--bare", str(source), str(tmp_path / "srv" / "tiny.git"), cwd=tmp_path)
    git("update-server-info", cwd=tmp_path / "srv" / "tiny.git")
    app = tmp_path / "app"
    app.mkdir()
    with _served(tmp_path / "srv") as url:
        requirement = f"tiny @ git+{url}/tiny.git{rev.format(commit=commit)}"
        (app / "pyproject.toml").write_text(
            f'[project]\nname = "app"\nversion = "1.0"\nrequires-python = ">=3.11"\n'
            f"dependencies = [{json.dumps(requirement)}]\n\n[tool.poetry]\npackage-mode = false\n"
        )
        run([tool("poetry"), "lock"], cwd=app, env=poetry_env(), timeout=300)
    lock = lockfile.load(app / "poetry.lock")
    assert [(p.name, p.source and p.source.type) for p in lock.packages] == [("tiny", "git")]
    locksources.check(pyproject.load(app), lock, default_index="https://default.example.test/simple")


def test_another_repository_than_the_pep508_git_url_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tiny @ git+https://git.example.test/tiny.git@v1"]\n'
    )
    (tmp_path / "poetry.lock").write_text(
        _package("tiny", '[package.source]\ntype = "git"\nurl = "https://git.example.test/other.git"\n')
        + '\n[metadata]\nlock-version = "2.1"\npython-versions = ">=3.11"\ncontent-hash = "x"\n'
    )
    with pytest.raises(locksources.LockSourceError, match=r"other\.git"):
        locksources.check(
            pyproject.load(tmp_path),
            lockfile.load(tmp_path / "poetry.lock"),
            default_index="https://default.example.test/simple",
        )


@pytest.mark.slow  # the real Poetry locks three times
def test_a_git_source_a_plain_poetry_lock_kept_is_refused_with_the_command_that_fixes_it(
    tmp_path: Path,
) -> None:
    # python-poetry/poetry with its `poetry-core @ git+...` replaced by a version range: `poetry
    # lock` kept the git source (the locked version still fits); `poetry update --lock` fixes it
    source = write_project(tmp_path / "tiny", "tiny", backend="poetry-core", body="X = 1\n")
    git("init", "-q", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-qm", "tiny", cwd=source)
    git("clone", "-q", "--bare", str(source), str(tmp_path / "srv" / "tiny.git"), cwd=tmp_path)
    git("update-server-info", cwd=tmp_path / "srv" / "tiny.git")
    app = tmp_path / "app"
    app.mkdir()
    head = '[project]\nname = "app"\nversion = "1.0"\nrequires-python = ">=3.11"\n'
    tail = "\n[tool.poetry]\npackage-mode = false\n"
    wheel = make_wheel("tiny", "1.0.0")
    with (
        _served(tmp_path / "srv") as url,
        serve(LocalIndex(files={"tiny": {"tiny-1.0.0-py3-none-any.whl": wheel}})) as idx,
    ):
        (app / "pyproject.toml").write_text(head + f'dependencies = ["tiny @ git+{url}/tiny.git"]\n' + tail)
        run([tool("poetry"), "lock"], cwd=app, env=poetry_env(), timeout=300)
        source_table = f'\n[[tool.poetry.source]]\nname = "local"\nurl = "{idx.url}/"\npriority = "primary"\n'
        (app / "pyproject.toml").write_text(head + 'dependencies = ["tiny (>=1.0)"]\n' + tail + source_table)
        run([tool("poetry"), "lock"], cwd=app, env=poetry_env(), timeout=300)
        with pytest.raises(locksources.LockSourceError) as info:
            locksources.check(pyproject.load(app), lockfile.load(app / "poetry.lock"), default_index=idx.url)
        assert "  - tiny 1.0.0: git http://127.0.0.1:" in str(info.value)
        assert "`poetry update --lock tiny`" in info.value.hint
        run([tool("poetry"), "update", "--lock", "tiny"], cwd=app, env=poetry_env(), timeout=300)
    locksources.check(pyproject.load(app), lockfile.load(app / "poetry.lock"), default_index=idx.url)
