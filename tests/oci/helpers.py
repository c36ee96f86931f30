"""Small real images for the oci tests, and podman with a private store.

Images are built the way slimline builds them (TreeBuilder -> layers.write -> Image) into a
cache under the test's tmp_path.  podman runs with its own ``--root``/``--runroot`` (vfs driver)
under tmp_path, so the tests neither see nor change the machine's image store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from slimline import layers
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci.image import Config, History, Image, Platform
from tests.support import run, tool

FILES = {
    "etc/motd": b"hello from slimline\n",
    "app/main.py": b"print('hi')\n",
}


def make_image(
    cache: Cache,
    *,
    platform: str = "linux/amd64",
    marker: str = "",
    compression: layers.Compression | None = None,
) -> Image:
    """Two layers: a base-like one (files, a symlink, an executable) and an app layer whose
    content includes ``marker``, so images with different markers differ only in layer 2."""
    base = TreeBuilder()
    base.data("etc/motd", FILES["etc/motd"])
    base.data("usr/bin/tool", b"#!/bin/sh\necho tool\n", mode=0o755)
    base.symlink("bin", "usr/bin")
    base.dir("tmp", mode=0o1777)
    app = TreeBuilder()
    app.data("app/main.py", FILES["app/main.py"])
    app.data("app/marker.txt", f"{marker}|{platform}\n".encode())
    layer1 = layers.write(base.freeze(), cache=cache, compression=compression)
    layer2 = layers.write(app.freeze(), cache=cache, compression=compression)
    return Image(
        platform=Platform.parse(platform),
        layers=(layer1, layer2),
        config=Config(env=("PATH=/usr/bin:/bin",), cmd=("/usr/bin/tool",), working_dir="/app"),
        history=(History("base files"), History(f"app {marker}")),
    )


def tree_bytes(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes), directory ("dir") and symlink ("-> target") under ``root``, by relative path."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath, d)
            out[str(p.relative_to(root))] = f"-> {os.readlink(p)}" if p.is_symlink() else "dir"
        for f in filenames:
            p = Path(dirpath, f)
            out[str(p.relative_to(root))] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes()
    return out


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Podman:
    """podman with a private image store under ``root`` (its run root must be a short path: in /tmp).

    Use as a context manager: the run root is removed at the end.
    """

    def __init__(self, root: Path) -> None:
        self._runroot = Path(tempfile.mkdtemp(prefix="slimline-podman-", dir="/tmp"))
        self.flags = ["--root", str(root), "--runroot", str(self._runroot), "--storage-driver", "vfs"]

    def __enter__(self) -> Podman:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self._runroot, ignore_errors=True)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([tool("podman"), *self.flags, *args], timeout=300, check=check)
