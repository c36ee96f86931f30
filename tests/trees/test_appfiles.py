"""The project's own files for package-mode = false (slimline.trees.appfiles)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slimline import layers
from slimline.cache.store import Cache
from slimline.layers.filetree import FileOnDisk, FileTree, Kind
from slimline.trees.appfiles import AppFilesError, EscapingSymlink, Matcher, app_tree, parse_patterns


def write(root: Path, rel: str, text: str = "x\n", *, mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def files(tree: FileTree, base: str = "app") -> set[str]:
    return {e.path.removeprefix(base + "/") for e in tree.entries() if e.kind in (Kind.FILE, Kind.SYMLINK)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for rel in [
        "main.py",
        "README.md",
        "CHANGES.md",
        "docs/guide.md",
        "src/app/__init__.py",
        "src/app/build/gen.py",  # "build" below the top is an ordinary directory
        "src/app/test_app.py",
        "logs/today.log",
        "deep/a/b/c.tmp",
        "keep.tmp",
        "secrets/key.pem",
        "secrets/public.txt",
        "rootonly.txt",
        "sub/rootonly.txt",
        "a/b.txt",
        "a/x/y/b.txt",
        "notes/todo.txt",
    ]:
        write(root, rel)
    return root


def test_dockerignore_semantics(project: Path) -> None:
    (project / ".dockerignore").write_text(
        "\ufeff# a comment\n"
        "\n"
        "*.md\n"  # top level only: * does not cross /
        "!README.md\n"  # negation; the last match wins
        "logs/\n"  # a directory and everything in it
        "**/*.tmp\n"
        "   secrets   \n"
        "!secrets/public.txt\n"  # re-included from an excluded directory
        "/rootonly.txt\n"  # a leading / is the context root
        "a/**/b.txt\n"  # ** matches zero or more directories
        "#notes\n"
    )
    got = files(app_tree(project))
    assert got == {
        ".dockerignore",
        "main.py",
        "README.md",
        "docs/guide.md",
        "src/app/__init__.py",
        "src/app/build/gen.py",
        "src/app/test_app.py",
        "secrets/public.txt",
        "sub/rootonly.txt",
        "notes/todo.txt",
    }


def test_matcher_edge_cases() -> None:
    m = Matcher(parse_patterns(["**", "!src/**/*.py", "src/**/test_*.py", "fo?.[ch]", r"lit\*eral"]))
    assert m.matches("anything/at/all")
    assert not m.matches("src/x.py") and not m.matches("src/a/b/y.py")
    assert m.matches("src/a/test_y.py")
    assert Matcher(parse_patterns(["fo?.[ch]"])).matches("foo.c")
    assert not Matcher(parse_patterns(["fo?.[ch]"])).matches("fo/.c")
    assert Matcher(parse_patterns([r"lit\*eral"])).matches("lit*eral")
    assert not Matcher(parse_patterns([r"lit\*eral"])).matches("litXeral")
    assert Matcher(parse_patterns(["./docs/../build//"])).matches("build/x")
    assert Matcher(parse_patterns(["**/node_modules"])).matches("node_modules")
    assert Matcher(parse_patterns(["**/node_modules"])).matches("web/node_modules/x.js")
    assert not Matcher(parse_patterns(["a.b"])).matches("axb")  # . is literal
    assert Matcher(parse_patterns(["[a-c]x"])).matches("bx")
    assert not Matcher(parse_patterns(["[a-c]x"])).matches("dx")
    assert Matcher(parse_patterns(["[^a-c]x"])).matches("dx")


def test_bad_pattern_is_a_clear_error(project: Path) -> None:
    (project / ".dockerignore").write_text("ok\n!\n")
    with pytest.raises(AppFilesError, match=r"\.dockerignore line 2") as info:
        app_tree(project)
    assert "hint:" in str(info.value)
    (project / ".dockerignore").write_text("[z-a]\n")
    with pytest.raises(AppFilesError, match="not a valid pattern"):
        app_tree(project)


def test_always_excluded(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "main.py")
    for rel in [
        ".git/config",
        "vendor/lib/.git",  # a submodule's .git file
        ".venv/bin/python",
        "src/app/__pycache__/m.cpython-311.pyc",
        "src/app/stale.pyc",
        ".mypy_cache/x",
        ".pytest_cache/x",
        ".ruff_cache/x",
        ".tox/x",
        "dist/app-1.0.tar.gz",
        "build/lib/x.py",
        "src/app.egg-info/PKG-INFO",
        ".slimline/state",
        "env/pyvenv.cfg",  # a virtualenv under another name
        "env/lib/site.py",
        "out/image/index.json",
        "image.tar",
    ]:
        write(root, rel)
    write(root, "src/app/m.py")
    (root / ".dockerignore").write_text("!.git\n!**/*.pyc\n")  # cannot re-include
    tree = app_tree(root, also_exclude=[root / "out" / "image", Path("image.tar")])
    assert files(tree) == {".dockerignore", "main.py", "src/app/m.py", "out"} - {"out"}
    assert "app/out" in tree  # its parent stays, the output itself does not
    assert "app/out/image" not in tree


def test_include_and_exclude_settings(project: Path) -> None:
    (project / ".dockerignore").write_text("notes\n")
    tree = app_tree(project, include=["src", "main.py", "notes"], exclude=["**/test_*.py", "!notes/todo.txt"])
    assert files(tree) == {"main.py", "src/app/__init__.py", "src/app/build/gen.py", "notes/todo.txt"}
    only_py = app_tree(project, include=["**/*.py"])
    assert files(only_py) == {"main.py", "src/app/__init__.py", "src/app/build/gen.py", "src/app/test_app.py"}


def test_modes_owner_and_sources(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "run.sh", mode=0o700)
    write(root, "private.txt", mode=0o600)
    write(root, "setuid", mode=0o4755)
    (root / "empty").mkdir(mode=0o700)
    tree = app_tree(root, dest="/srv/app", uid=65532, gid=65532)
    modes = {e.path: e.mode for e in tree.entries()}
    assert modes["srv/app/run.sh"] == 0o755
    assert modes["srv/app/private.txt"] == 0o644
    assert modes["srv/app/setuid"] == 0o755
    assert modes["srv/app/empty"] == 0o755  # empty directories are kept, normalised
    assert modes["srv/app"] == 0o755
    assert {(e.uid, e.gid) for e in tree.entries()} == {(65532, 65532)}
    entry = tree.get("srv/app/run.sh")
    assert entry is not None and isinstance(entry.source, FileOnDisk) and entry.size == 2
    with pytest.raises(AppFilesError, match="working directory"):
        app_tree(root, dest="app")


def test_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "data/real.txt")
    write(root, "src/m.py")
    (root / "src" / "data").symlink_to("../data")  # to a directory inside: kept, not followed
    (root / "alias.txt").symlink_to("data/real.txt")
    tree = app_tree(root)
    link = tree.get("app/src/data")
    assert link is not None and link.kind is Kind.SYMLINK and link.target == "../data"
    assert "app/src/data/real.txt" not in tree
    alias = tree.get("app/alias.txt")
    assert alias is not None and alias.kind is Kind.SYMLINK and alias.target == "data/real.txt"

    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    (root / "escape.txt").symlink_to("../outside.txt")
    with pytest.raises(EscapingSymlink) as info:
        app_tree(root)
    assert info.value.path == "escape.txt" and "outside the project" in str(info.value)
    (root / "escape.txt").unlink()

    (root / "abs.txt").symlink_to(outside)
    with pytest.raises(EscapingSymlink, match=r"abs\.txt"):
        app_tree(root)
    assert "app/abs.txt" not in app_tree(root, exclude=["abs.txt"])  # excluded: no complaint
    (root / "abs.txt").unlink()

    # lexically inside, but it goes through an excluded link that leaves the project
    (root / "hop").symlink_to("..")
    (root / "via.txt").symlink_to("hop/outside.txt")
    (root / ".dockerignore").write_text("hop\n")
    with pytest.raises(EscapingSymlink, match=r"via\.txt"):
        app_tree(root)


def test_special_files_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "main.py")
    os.mkfifo(root / "pipe")
    with pytest.raises(AppFilesError, match="pipe"):
        app_tree(root)
    assert "app/pipe" not in app_tree(root, exclude=["pipe"])


def test_same_files_give_the_same_layer(project: Path, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    first = layers.write(app_tree(project), cache=cache)
    os.utime(project / "main.py", (1_000_000, 1_000_000))
    (project / "docs" / "guide.md").chmod(0o664)
    second = layers.write(app_tree(project), cache=cache)
    assert first.digest == second.digest
    (project / "main.py").write_text("changed\n")
    third = layers.write(app_tree(project), cache=cache)
    assert third.digest != first.digest
