"""Hints that follow the cause of a failed build, and the warnings of one that worked: real
backends (setuptools, setuptools-scm, poetry-core) run on projects written here.

Build environments come from the shared test cache (that is the network part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimline.artifacts import backend_hints
from slimline.artifacts.build_backend import BuildFailed, build_wheel
from slimline.artifacts.buildenv import BuildEnvs
from slimline.artifacts.sources import default_index_url
from slimline.cache.store import Cache
from tests.support import Lines, cache_dir, run, tool

SCM = """\
[build-system]
requires = ["setuptools>=64", "setuptools-scm>=8"]
build-backend = "setuptools.build_meta"

[project]
name = "scmapp"
dynamic = ["version"]

[tool.setuptools_scm]
"""

NO_PACKAGE = """\
[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"

[project]
name = "my-service"
version = "1.0.0"
"""

# setuptools (77 and later) warns about a license table and license classifiers
WARNED = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "warned"
version = "1.0.0"
license = {text = "MIT"}
classifiers = ["License :: OSI Approved :: MIT License"]
"""


def envs(lines: Lines) -> BuildEnvs:
    return BuildEnvs(cache=Cache(cache_dir()), index_url=default_index_url(), report=lines)


def project(root: Path, pyproject: str, *modules: str) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(pyproject)
    for module in modules:
        (root / module).mkdir()
        (root / module / "__init__.py").write_text("")
    return root


@pytest.mark.network
def test_version_from_git_without_a_checkout(tmp_path: Path) -> None:
    root = project(tmp_path / "scmapp", SCM, "scmapp")
    with pytest.raises(BuildFailed) as info:
        build_wheel(root, envs=envs(Lines()), out_dir=tmp_path / "out")
    hint = info.value.hint
    assert hint.startswith(f"setuptools-scm takes the version from git, and {root} is not in a git checkout")
    assert "SETUPTOOLS_SCM_PRETEND_VERSION=1.2.3" in hint
    # what the hint says works: with a version given, or in a checkout with a tag, it builds
    git = tool("git")
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        run([git, *args], cwd=root)
    run([git, "tag", "v1.4.0"], cwd=root)
    assert build_wheel(root, envs=envs(Lines()), out_dir=tmp_path / "out").name.startswith("scmapp-1.4.0-")


@pytest.mark.network
def test_a_project_with_no_package_is_told_about_package_mode(tmp_path: Path) -> None:
    root = project(tmp_path / "svc", NO_PACKAGE)
    (root / "main.py").write_text("print('hi')\n")
    with pytest.raises(BuildFailed) as info:
        build_wheel(root, envs=envs(Lines()), out_dir=tmp_path / "out")
    assert "set package-mode = false under [tool.poetry]" in info.value.hint
    assert "No file/folder found for package my-service" in str(info.value)


README_CASE = """\
[build-system]
requires = ["poetry-core>=2.0.0,<3.0.0"]
build-backend = "poetry.core.masonry.api"

[project]
name = "webapp"
version = "0.1.0"
readme = "README.md"
"""


@pytest.mark.network
def test_a_readme_the_tree_lacks_is_named_with_the_file_of_another_case(tmp_path: Path) -> None:
    # Django and FastAPI apps locked with Poetry 2 often name README.md and ship readme.md (or
    # none): they were installed with `poetry install --no-root`, which never reads it.
    root = project(tmp_path / "webapp", README_CASE, "webapp")
    (root / "readme.md").write_text("# webapp\n")
    with pytest.raises(BuildFailed) as info:
        build_wheel(root, envs=envs(Lines()), out_dir=tmp_path / "out")
    hint = info.value.hint
    assert hint.startswith(f"pyproject.toml names the readme README.md, which is not in {root}")
    assert "(it has readme.md: file names are case-sensitive)" in hint
    assert "set package-mode = false under [tool.poetry]" in hint
    # what the hint says works: with the file named as pyproject.toml names it, it builds
    (root / "readme.md").rename(root / "README.md")
    assert build_wheel(root, envs=envs(Lines()), out_dir=tmp_path / "out").name.startswith("webapp-0.1.0-")


@pytest.mark.network
def test_backend_warnings_are_summarised_and_shown_in_full_as_details(tmp_path: Path) -> None:
    root = project(tmp_path / "warned", WARNED, "warned")
    lines = Lines()
    wheel = build_wheel(root, envs=envs(lines), out_dir=tmp_path / "out", what="warned")
    assert wheel.name.startswith("warned-1.0.0-")
    summary = [line for line in lines.lines if "from the backend" in line]
    assert len(summary) == 1 and summary[0].startswith("warned: ")
    assert "project.license" in summary[0] and "(-v shows the full text)" in summary[0]
    details = [line for line in lines.lines if line.startswith("warned: ") and line not in summary]
    assert any("License classifiers are deprecated" in line for line in details), lines.lines
    assert any("Please use a simple string" in line for line in details), lines.lines  # the full text
    assert not any("byte-compiling is disabled" in line for line in lines.lines)


def test_warnings_are_picked_out_with_their_continuation_lines() -> None:
    classifiers = "SetuptoolsDeprecationWarning: License classifiers are deprecated."
    stderr = (
        "running bdist_wheel\n"
        f"/tmp/env/lib/setuptools/dist.py:759: {classifiers}\n"
        "!!\n\n        ****\n        Please consider removing the following classifiers\n        ****\n\n!!\n"
        "  self._finalize_license_expression()\n"
        "copying warned/__init__.py -> build/lib/warned\n"
        "warning: build_py: byte-compiling is disabled, skipping.\n"
        "src/fast.c:12:5: warning: unused variable 'x' [-Wunused-variable]\n"
        f"/tmp/env/lib/setuptools/dist.py:759: {classifiers}\n"
    )
    relayed = "`project.license` as a TOML table is deprecated\n!!\n  Please use a simple string\n!!"
    found = backend_hints.warnings_in([stderr, ""], caught=[relayed])
    assert [block[0].split(": ", 1)[-1] for block in found] == [
        "`project.license` as a TOML table is deprecated",
        classifiers,
        "warning: unused variable 'x' [-Wunused-variable]",
    ]
    assert found[0] == relayed.splitlines()
    assert found[1][-1] == "  self._finalize_license_expression()" and len(found[1]) == 9
    assert backend_hints.summary(found) == (
        '3 warnings from the backend, the first: "`project.license` as a TOML table is deprecated" '
        "(-v shows the full text)"
    )


def test_no_hint_when_the_cause_is_something_else(tmp_path: Path) -> None:
    root = project(tmp_path / "scmapp", SCM, "scmapp")
    assert backend_hints.hint_for(root, "error: command 'gcc' failed: No such file or directory") == ""
    assert backend_hints.hint_for(root, "LookupError: setuptools-scm was unable to detect version")
    plain = project(tmp_path / "plain", NO_PACKAGE.replace("poetry-core>=2.0", "setuptools"))
    assert backend_hints.hint_for(plain, "setuptools-scm was unable to detect version") == ""


def test_warnings_relayed_on_one_thread_stay_with_that_thread() -> None:
    import threading
    import warnings

    from slimline.artifacts import backend_hints

    shown: list[str] = []

    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        shown.append(str(message))

    before = warnings.showwarning
    warnings.showwarning = show
    try:
        started, release = threading.Barrier(2), threading.Event()
        caught: dict[str, list[str]] = {}

        def build(name: str) -> None:
            with backend_hints.relayed() as sink:
                started.wait(5)
                warnings.warn_explicit(f"{name} warns", UserWarning, "setup.py", 1)
                release.wait(5)
            caught[name] = sink

        threads = [threading.Thread(target=build, args=(n,)) for n in ("one", "two")]
        for t in threads:
            t.start()
        warnings.warn_explicit("the main thread warns", UserWarning, "main.py", 1)
        release.set()
        for t in threads:
            t.join(10)
        assert caught == {"one": ["one warns"], "two": ["two warns"]}
        assert shown == ["the main thread warns"]
        with backend_hints.relayed() as after:
            pass
        assert after == []
        assert warnings.showwarning is show  # the hook is gone once no thread collects
    finally:
        warnings.showwarning = before
