"""Project wheels derived from the previous build (slimline.derive) against the real backend.

The property under test: whatever build_tree_wheel returns for a tree is byte-for-byte the
wheel the project's own backend writes for that tree, whether it ran the backend or derived
the wheel; and it derives only when that is safe.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path

import pytest

from slimline import derive
from slimline.build_backend import BuildEnvs, build_tree_wheel, build_wheel
from slimline.cache import Cache
from slimline.errors import HashMismatch
from slimline.sources import default_index_url
from slimline.wheelcache import build_key, tree_files, tree_hash
from tests.support import cache_dir

pytestmark = pytest.mark.network  # build environments come from the index once per machine


class _Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, text: str) -> None:
        self.lines.append(text)

    def detail(self, text: str) -> None:
        self.lines.append(text)

    def done(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def envs() -> BuildEnvs:
    return BuildEnvs(cache=Cache(cache_dir()), index_url=default_index_url(), report=_Notes())


def _poetry_app(root: Path) -> Path:
    """A src-layout poetry-core app with a readme, a script and a data file."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "1.0.0"\ndescription = "t"\nreadme = "README.md"\n'
        'requires-python = ">=3.8"\n\n[project.scripts]\napp = "app.main:run"\n\n'
        '[tool.poetry]\npackages = [{ include = "app", from = "src" }]\n\n'
        '[build-system]\nrequires = ["poetry-core>=2.0,<3.0"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    (root / "README.md").write_text("# app\n\nfirst words\n")
    pkg = root / "src" / "app"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""app"""\n')
    (pkg / "main.py").write_text("def run() -> None:\n    print('hello')\n")
    (pkg / "data.json").write_text('{"a": 1}\n')
    (root / "tests").mkdir()
    (root / "tests" / "test_app.py").write_text("def test() -> None:\n    pass\n")
    return root


def _backend(root: Path, envs: BuildEnvs) -> bytes:
    """What the backend itself writes for the tree as it is now."""
    with tempfile.TemporaryDirectory() as out:
        return build_wheel(root, envs=envs, out_dir=Path(out)).read_bytes()


def _derived(envs: BuildEnvs) -> bool:
    notes = envs.report
    assert isinstance(notes, _Notes)
    found = any("derived from the previous build" in line for line in notes.lines)
    notes.lines.clear()
    return found


def test_module_edits_are_derived_byte_for_byte(tmp_path: Path, envs: BuildEnvs) -> None:
    cache = Cache(tmp_path / "cache")
    root = _poetry_app(tmp_path / "app")
    first = build_tree_wheel(root, envs=envs, cache=cache)
    assert not _derived(envs)

    (root / "src" / "app" / "main.py").write_text("def run() -> None:\n    print('hello, world')\n")
    (root / "src" / "app" / "data.json").write_text('{"a": 2, "b": [1, 2, 3]}\n')
    second = build_tree_wheel(root, envs=envs, cache=cache)
    assert _derived(envs)
    assert second.read_bytes() == _backend(root, envs)
    assert second.read_bytes() != first.read_bytes()
    with zipfile.ZipFile(second) as zf:
        assert b"hello, world" in zf.read("app/main.py")
        record = zf.read("app-1.0.0.dist-info/RECORD").decode()
    assert "app/main.py,sha256=" in record

    # a second edit derives from the derived wheel; an edit back finds the first wheel again
    (root / "src" / "app" / "__init__.py").write_text('"""app, edited"""\nVERSION = 2\n')
    third = build_tree_wheel(root, envs=envs, cache=cache)
    assert _derived(envs)
    assert third.read_bytes() == _backend(root, envs)


@pytest.mark.parametrize(
    "change",
    ["readme", "pyproject", "new module", "removed module", "test file", "mode"],
)
def test_other_changes_run_the_backend(tmp_path: Path, envs: BuildEnvs, change: str) -> None:
    cache = Cache(tmp_path / "cache")
    root = _poetry_app(tmp_path / "app")
    build_tree_wheel(root, envs=envs, cache=cache)
    _derived(envs)
    pkg = root / "src" / "app"
    if change == "readme":
        (root / "README.md").write_text("# app\n\nnew words\n")
    elif change == "pyproject":
        text = (root / "pyproject.toml").read_text().replace('version = "1.0.0"', 'version = "1.0.1"')
        (root / "pyproject.toml").write_text(text)
    elif change == "new module":
        (pkg / "extra.py").write_text("X = 1\n")
    elif change == "removed module":
        (pkg / "data.json").unlink()
    elif change == "test file":
        (root / "tests" / "test_app.py").write_text("def test() -> None:\n    assert True\n")
    else:
        (pkg / "main.py").chmod(0o755)
    wheel = build_tree_wheel(root, envs=envs, cache=cache)
    assert not _derived(envs)
    assert wheel.read_bytes() == _backend(root, envs)
    if change == "readme":
        with zipfile.ZipFile(wheel) as zf:
            assert b"new words" in zf.read("app-1.0.0.dist-info/METADATA")


def test_backends_that_read_module_contents_are_never_derived(tmp_path: Path, envs: BuildEnvs) -> None:
    # flit takes the version and the summary from the module itself
    cache = Cache(tmp_path / "cache")
    root = tmp_path / "flitapp"
    (root / "flitapp").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "flitapp"\ndynamic = ["version", "description"]\n\n'
        '[build-system]\nrequires = ["flit_core>=3.4,<4"]\nbuild-backend = "flit_core.buildapi"\n'
    )
    (root / "flitapp" / "__init__.py").write_text('"""First words."""\n__version__ = "1.0.0"\n')
    build_tree_wheel(root, envs=envs, cache=cache)
    (root / "flitapp" / "__init__.py").write_text('"""Second words."""\n__version__ = "1.0.1"\n')
    files = tree_files(root)
    slot = build_key(kind="tree-slot", path=str(root.resolve()))
    key = build_key(kind="tree", tree=tree_hash(files), path=str(root.resolve()))
    assert derive.derive(root, files, cache=cache, slot=slot, key=key) is None
    wheel = build_tree_wheel(root, envs=envs, cache=cache)
    assert not _derived(envs)
    assert wheel.name.startswith("flitapp-1.0.1-")
    with zipfile.ZipFile(wheel) as zf:
        assert b"Second words." in zf.read("flitapp-1.0.1.dist-info/METADATA")


def test_a_tampered_base_wheel_is_refused(tmp_path: Path, envs: BuildEnvs) -> None:
    cache = Cache(tmp_path / "cache")
    root = _poetry_app(tmp_path / "app")
    first = build_tree_wheel(root, envs=envs, cache=cache)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    first.chmod(0o644)
    first.write_bytes(first.read_bytes() + b"\0")  # the named copy changes under its hash
    (cache.root / "blobs" / "sha256" / digest).unlink(missing_ok=True)
    (root / "src" / "app" / "main.py").write_text("def run() -> None:\n    print('x')\n")

    with pytest.raises(HashMismatch):
        build_tree_wheel(root, envs=envs, cache=cache)
