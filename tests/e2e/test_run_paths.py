"""End to end, in containers: where a running app may write (``writable``, ``/tmp``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import podman_run, slimline

pytestmark = [pytest.mark.network, pytest.mark.container]

_PROBE = """\
import os, sys
for path in sys.argv[1:]:
    try:
        with open(os.path.join(path, "probe"), "w") as f:
            f.write("ok")
        print(path, "yes", os.getuid())
    except PermissionError:
        print(path, "no", os.getuid())
"""


def test_the_app_writes_to_writable_paths_and_tmp_only(locked_cli: Path, tmp_path: Path) -> None:
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.slimline]\nwritable = ["/app/data", "/var/cache/greet"]\n'
    )
    layout = tmp_path / "out"
    first = slimline("build", str(proj), "--to", f"oci:{layout}:w", "-q").stdout.strip().splitlines()[-1]
    again = slimline(
        "build", str(proj), "--to", f"oci:{tmp_path / 'again'}:w", "-q", env={"SLIMLINE_NO_LAYER_CACHE": "1"}
    )
    assert again.stdout.strip().splitlines()[-1] == first

    flags = ["--entrypoint", "/app/.venv/bin/python"]
    out = podman_run(
        f"oci:{layout}:w",
        "-c",
        _PROBE,
        "/app/data",
        "/var/cache/greet",
        "/tmp",
        "/app",
        "/var/cache",
        flags=flags,
    )
    assert out.stdout.splitlines() == [
        "/app/data yes 65532",
        "/var/cache/greet yes 65532",
        "/tmp yes 65532",
        "/app no 65532",
        "/var/cache no 65532",
    ]
