"""The venv, wheel and app layers really run: unpacked with GNU tar, run by podman + runc.

No base image is assembled: the root filesystem is the layers unpacked with ``tar``, plus
the host's ``/usr`` mounted read-only (the host's Debian Python 3.11 stands in for the
base's interpreter at the same path).  The console script is run through its own
``#!/app/.venv/bin/python`` shebang inside the container.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from slimline import layers
from slimline.cache.store import Cache
from slimline.trees.appfiles import app_tree
from slimline.trees.install import wheel_tree
from slimline.trees.venv import venv_tree
from tests.support import RUN_FLAGS, ULIMITS, cache_dir, run, tool
from tests.trees.helpers import HOST_TARGET, download_wheel

pytestmark = [pytest.mark.network, pytest.mark.container]

MAIN = """\
import sys
import idna
print(idna.encode("bücher.example").decode(), sys.prefix, sys.executable)
"""


def test_layers_run_in_a_container(tmp_path: Path) -> None:
    interpreter = "/usr/bin/python3.11"
    assert os.access(interpreter, os.X_OK), f"{interpreter} is needed as the stand-in base interpreter"
    version = run([interpreter, "-c", "import sys; print(*sys.version_info[:3])"]).stdout.split()
    target = replace(
        HOST_TARGET,
        interpreter=interpreter,
        python_version=(int(version[0]), int(version[1]), int(version[2])),
    )
    downloads = Cache(cache_dir())
    idna, idna_name = download_wheel("idna", "3.10", cache=downloads)
    pyflakes, pyflakes_name = download_wheel("pyflakes", "3.2.0", cache=downloads)
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text(MAIN)
    (project / "unused.py").write_text("import os\n")

    cache = Cache(tmp_path / "layers")
    trees = [
        venv_tree(target),
        wheel_tree(idna, target=target, filename=idna_name),
        wheel_tree(pyflakes, target=target, filename=pyflakes_name, requested=True),
        app_tree(project),
    ]
    rootfs = tmp_path / "rootfs"
    for name in ("usr", "proc", "dev", "sys", "tmp", "etc"):
        (rootfs / name).mkdir(parents=True)
    for name in ("bin", "lib", "lib64", "sbin"):
        (rootfs / name).symlink_to(f"usr/{name}")
    for tree in trees:
        layer = layers.write(tree, cache=cache)
        run([tool("tar"), "-xzf", layer.path, "-C", rootfs])

    def container(*args: str, check: bool = True) -> str:
        proc = run(
            [
                tool("podman"),
                *RUN_FLAGS,
                "run",
                "--rm",
                *ULIMITS,
                "--network",
                "none",
                "-v",
                "/usr:/usr:ro",
                "--workdir",
                "/app",
                "--env",
                "PATH=/app/.venv/bin:/usr/bin",
                "--rootfs",
                rootfs,
                *args,
            ],
            timeout=120,
            check=check,
        )
        return proc.stdout + proc.stderr

    out = container("python", "main.py")
    assert out.split() == ["xn--bcher-kva.example", "/app/.venv", "/app/.venv/bin/python"]
    assert "3.2.0" in container("pyflakes", "--version")  # runs through its #! line
    assert "'os' imported but unused" in container("pyflakes", "unused.py", check=False)

    # and without a container: the unpacked venv works with the host's interpreter
    host = run([rootfs / "app/.venv/bin/python", "-c", "import idna, sys; print(sys.prefix)"]).stdout
    assert host.strip() == str(rootfs / "app/.venv")
