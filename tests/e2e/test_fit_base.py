"""The default base fits the lock, and a named base that does not fails up front: the real command
line on a lock made by the real Poetry (``markupsafe 2.1.2``: wheels up to CPython 3.11).

"Before anything is downloaded" is proved by running slimline with an empty cache in a network
namespace that has only loopback (``unshare``): the decision is made there, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimline.errors import ExitStatus
from tests.plan.helpers import write_project
from tests.support import podman_run, poetry_lock, run, slimline, tool

pytestmark = pytest.mark.network

PYPROJECT = """\
[project]
name = "ms-app"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["markupsafe==2.1.2"]

[tool.poetry]
package-mode = false

[tool.poetry.group.dev.dependencies]
iniconfig = "2.0.0"

[tool.slimline]
include = ["*.py"]
"""
WHY = "base debian:bookworm: markupsafe 2.1.2 has no wheel for Python 3.13 (trixie)"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("fit") / "app", PYPROJECT)
    (root / "main.py").write_text("import markupsafe\nprint(markupsafe.escape('<fit>'))\n")
    poetry_lock(root)
    return root


def offline(*args: str, cache: Path) -> tuple[int, str]:
    """``slimline ARGS`` with an empty cache and no network but loopback."""
    proc = run(
        [tool("unshare"), "-rn", tool("slimline"), *args],
        env={"SLIMLINE_CACHE_DIR": str(cache)},
        check=False,
        timeout=120,
    )
    return proc.returncode, proc.stderr


def test_a_named_base_without_the_wheels_fails_before_downloading_anything(
    project: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    code, err = offline(
        "build", str(project), "--base", "debian:trixie", "--to", f"oci:{tmp_path / 'o'}", cache=cache
    )
    assert code == ExitStatus.INPUT, err
    assert "slimline: error: checking the base debian:trixie against poetry.lock" in err
    assert "markupsafe 2.1.2 has no wheel for Python 3.13 (trixie), while debian:bookworm has wheels" in err
    assert "use --base debian:bookworm" in err and "Traceback" not in err
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name != ".lock"], "something was cached"


def test_the_default_base_is_chosen_before_downloading_anything(project: Path, tmp_path: Path) -> None:
    code, err = offline("build", str(project), "--to", f"oci:{tmp_path / 'o'}", cache=tmp_path / "cache")
    assert code == ExitStatus.NETWORK  # the base cannot be assembled without the archive
    lines = err.splitlines()
    assert any(line.endswith(WHY) for line in lines), err
    assert "groups: main; not included: dev (use --with)" in err


@pytest.mark.container
def test_the_default_base_for_markupsafe_2_1_2_is_bookworm(project: Path, tmp_path: Path) -> None:
    layout = tmp_path / "image"
    proc = slimline("build", str(project), "--to", f"oci:{layout}:t")
    assert any(line.endswith(WHY) for line in proc.stderr.splitlines()), proc.stderr
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text())
    assert config["config"]["Labels"]["dev.slimline.python.version"].startswith("3.11.")
    out = podman_run(f"oci:{layout}:t", "/app/main.py").stdout
    assert out.strip() == "&lt;fit&gt;"
