"""One definition of what in a project's directory is not its source (slimline.project.ignore),
used by the wheel cache's tree hash and by the files copied into images."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimline.artifacts.wheelcache import tree_files
from slimline.layers.filetree import Kind
from slimline.project import ignore
from slimline.trees.appfiles import app_tree


def _write(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")


@pytest.mark.parametrize("name", sorted(ignore.NOT_SOURCE))
def test_both_leave_out_vcs_data_and_caches_anywhere(name: str) -> None:
    for top in (True, False):
        assert ignore.skip_when_hashing(name, top=top)
        assert ignore.skip_when_copying(name, top=top)


def test_the_walks_agree_and_differ_where_documented(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for rel in [
        "app/__init__.py",
        ".git/HEAD",
        "app/__pycache__/m.cpython-311.pyc",
        "x.egg-info/PKG-INFO",
        "dist/x.whl",
        "src/app/build/gen.py",  # "build" below the top is an ordinary directory
        "env/pyvenv.cfg",  # a virtualenv under another name
        "node_modules/m.js",  # hashing: left out at the top; copying: kept
        "venv/lib.py",  # (no pyvenv.cfg)
        "app/.venv/x.py",  # hashing: could be packaged; copying: never in an image
        ".slimline/x",
        "app/stray.pyc",
    ]:
        _write(root, rel)
    hashed = {f.path for f in tree_files(root)}
    copied = {
        e.path.removeprefix("app/") for e in app_tree(root).entries() if e.kind in (Kind.FILE, Kind.SYMLINK)
    }
    assert hashed == {
        "app/__init__.py",
        "src/app/build/gen.py",
        "app/.venv/x.py",
        ".slimline/x",
        "app/stray.pyc",
    }
    assert copied == {"app/__init__.py", "src/app/build/gen.py", "node_modules/m.js", "venv/lib.py"}
