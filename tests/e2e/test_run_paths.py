"""End to end, in containers: where a running app may write (``writable``, ``/tmp``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import podman, podman_run, run, slimline, tool

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


def _layers(layout: Path, tag: str) -> list[str]:
    manifest = json.loads(run([tool("skopeo"), "inspect", "--raw", f"oci:{layout}:{tag}"]).stdout)
    return [layer["digest"] for layer in manifest["layers"]]


def test_the_debug_image_gives_a_shell_and_the_plain_one_does_not(locked_cli: Path, tmp_path: Path) -> None:
    layout, archive = tmp_path / "out", tmp_path / "greet.tar"
    args = (
        "build",
        str(locked_cli),
        "--debug",
        "--to",
        f"oci:{layout}:d",
        "--to",
        f"docker-archive:{archive}:greet:d",
    )
    lines = slimline(*args, "-q").stdout.strip().splitlines()
    plain, debugged = lines[0], lines[2]
    assert lines[1] == plain and lines[3] == debugged  # the archive holds the same images
    assert _layers(layout, "d-debug")[:-1] == _layers(layout, "d")

    shell = ["--entrypoint", "sh"]
    out = podman_run(f"oci:{layout}:d-debug", "-c", "id -u; ls /busybox/sh; echo $PATH", flags=shell).stdout
    assert out.split() == [
        "65532",
        "/busybox/sh",
        "/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox",
    ]
    assert (
        podman_run(f"oci:{layout}:d-debug", "--name", "dbg").stdout.strip() == "hello, dbg!"
    )  # the app as before
    refused = podman_run(f"oci:{layout}:d", "-c", "true", flags=shell, check=False)
    assert refused.returncode != 0 and "not found" in refused.stderr
    loaded = podman("load", "-i", str(tmp_path / "greet-debug.tar")).stdout
    assert "localhost/greet:d-debug" in loaded

    again = slimline(
        *args[:-4], "--to", f"oci:{tmp_path / 'again'}:d", "-q", env={"SLIMLINE_NO_LAYER_CACHE": "1"}
    )
    assert again.stdout.strip().splitlines() == [plain, debugged]
