"""Slim mode on real installed wheels: what is dropped, what is kept, how RECORD and
SLIMLINE-DROPPED account for it; and a whole in-process build with ``--slim``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from slimline import cli
from slimline.cache.store import Cache
from slimline.layers.filetree import FileTree, Kind
from slimline.layers.read import members
from slimline.oci import layout, validate
from slimline.oci.image import Platform
from slimline.oci.reference import OciRef
from slimline.target import Target
from slimline.trees import install, slim
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.build.helpers import make_base, tinydep_lock, write_project

SITE = "app/.venv/lib/python3.11/site-packages"
TARGET = Target(Platform("amd64"), (3, 11, 2), "/usr/bin/python3.11", "glibc", (2, 36))

EXTRA = {
    "tinydep/core.py": b"X = 1\n",
    "tinydep/test.py": b"# a module named test: imported at run time (werkzeug.test)\n",
    "tinydep/testing/__init__.py": b"# imported by other libraries (numpy.testing)\n",
    "tinydep/tests/__init__.py": b"",
    "tinydep/tests/test_core.py": b"def test(): pass\n",
    "tinydep/tests/data/big.bin": b"\0" * 1000,
    "tinydep/conftest.py": b"import pytest\n",
    "tinydep/include/tinydep.h": b"int f(void);\n",
    "tinydep/_speed.pyx": b"def f(): pass\n",
    "tinydep/_speed.pxd": b"cdef int f()\n",
    "tinydep/_speed.c": b"int f(void) { return 1; }\n",
    "tinydep/_speed.cpython-311-x86_64-linux-gnu.so": b"\x7fELF",
    "tinydep/lib/libtiny.a": b"!<arch>\n",
    "tinydep/__init__.pyi": b"X: int\n",
    "tinydep/docs/index.rst": b"docs\n",
    "tinydep/examples/demo.py": b"print('demo')\n",
    "tinydep/doc/__init__.py": b"# a package named doc (boto3.docs): imported at run time\n",
    "tinydep/doc/render.py": b"X = 2\n",
    "tinydep/data/table.csv": b"a,b\n",
    # pages and assets a web framework serves (Django REST framework's API docs views)
    "tinydep/templates/tinydep/docs/index.html": b"<html></html>\n",
    "tinydep/static/tinydep/docs/js/api.js": b"var x;\n",
    "tinydep-0.3.0.dist-info/licenses/tests/LICENSE": b"licence text\n",
}
DROPPED = {
    "tinydep/tests/__init__.py",
    "tinydep/tests/test_core.py",
    "tinydep/tests/data/big.bin",
    "tinydep/conftest.py",
    "tinydep/include/tinydep.h",
    "tinydep/_speed.pyx",
    "tinydep/_speed.pxd",
    "tinydep/_speed.c",
    "tinydep/lib/libtiny.a",
    "tinydep/__init__.pyi",
    "tinydep/docs/index.rst",
    "tinydep/examples/demo.py",
}


def _installed(tmp_path: Path) -> tuple[FileTree, bytes]:
    wheel = tmp_path / "tinydep-0.3.0-py3-none-any.whl"
    wheel.write_bytes(make_wheel("tinydep", "0.3.0", extra=EXTRA))
    tree = install.wheel_tree(wheel, target=TARGET, prefix="/app/.venv")
    record = tree.get(f"{SITE}/tinydep-0.3.0.dist-info/RECORD")
    assert record is not None and record.source is not None
    return tree, record.source.open().read()


def _files(tree: FileTree) -> set[str]:
    return {p.removeprefix(SITE + "/") for p in tree.paths() if (e := tree.get(p)) and e.kind is not Kind.DIR}


def test_what_a_running_app_does_not_read_is_dropped_and_listed(tmp_path: Path) -> None:
    tree, record = _installed(tmp_path)
    out = slim.prune(tree, venv="app/.venv", site=SITE)
    assert _files(tree) - _files(out) == DROPPED
    assert _files(out) - _files(tree) == {f"tinydep-0.3.0.dist-info/{slim.DROPPED}"}
    for gone in (
        "tinydep/tests",
        "tinydep/tests/data",
        "tinydep/include",
        "tinydep/docs",
        "tinydep/examples",
    ):
        assert f"{SITE}/{gone}" not in out  # emptied directories go too
    assert f"{SITE}/tinydep/lib" not in out and f"{SITE}/tinydep/doc" in out
    kept = out.get(f"{SITE}/tinydep-0.3.0.dist-info/RECORD")
    assert kept is not None and kept.source is not None and kept.source.open().read() == record  # intact
    listed = out.get(f"{SITE}/tinydep-0.3.0.dist-info/{slim.DROPPED}")
    assert listed is not None and listed.source is not None
    rows = list(csv.reader(io.StringIO(listed.source.open().read().decode())))
    by_path = {r[0]: r for r in csv.reader(io.StringIO(record.decode()))}
    assert [r[0] for r in rows] == sorted(DROPPED)
    assert all(r == by_path[r[0]] and r[1].startswith("sha256=") for r in rows)  # RECORD's own rows


def test_slim_keep_patterns_keep_paths(tmp_path: Path) -> None:
    tree, _ = _installed(tmp_path)
    out = slim.prune(tree, venv="app/.venv", site=SITE, keep=["tinydep/tests/**", "*/*.pyi"], name="tinydep")
    kept = {p for p in DROPPED if p.startswith("tinydep/tests/")} | {"tinydep/__init__.pyi"}
    assert _files(tree) - _files(out) == DROPPED - kept


def test_a_distribution_with_nothing_to_drop_is_unchanged(tmp_path: Path) -> None:
    wheel = tmp_path / "plain-1.0-py3-none-any.whl"
    wheel.write_bytes(make_wheel("plain", "1.0"))
    tree = install.wheel_tree(wheel, target=TARGET, prefix="/app/.venv")
    assert slim.prune(tree, venv="app/.venv", site=SITE) is tree


@pytest.mark.parametrize(
    ("rel", "why"),
    [
        ("pkg/tests/x.py", "test suites"),
        ("tests/x.py", "test suites"),
        ("pkg/testing/x.py", None),
        ("pkg/test/x.py", None),
        ("pkg/sub/core.h", "C/C++ headers"),
        ("../../../include/site/python3.11/pkg/x.h", "headers and manuals installed outside site-packages"),
        ("../../../share/man/man1/x.1", "headers and manuals installed outside site-packages"),
        ("../../../bin/tool", None),
        ("pkg.dist-info/tests/LICENSE", None),
        ("pkg/core.so", None),
        ("pkg/templates/page.html", None),
        ("pkg/docs/index.rst", "documentation and examples"),
        ("rest_framework/templates/rest_framework/docs/index.html", None),
        ("rest_framework/static/rest_framework/docs/js/api.js", None),
        ("pkg/static/examples/demo.js", None),
    ],
)
def test_rules(rel: str, why: str | None) -> None:
    assert slim.rule(rel) == why


@pytest.fixture
def index() -> object:
    wheel = make_wheel("tinydep", "0.3.0", extra=EXTRA)
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        yield idx


def test_a_slim_build_drops_from_dependency_layers_only(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from slimline.project import pyproject as project_mod

    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    base = make_base(Cache(cache_dir), tmp_path / "base")
    root = write_project(tmp_path / "proj", index.url, package=False)
    (root / "tests").mkdir()
    (root / "tests" / "test_main.py").write_text("def test(): pass\n")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('include = ["*.py"', 'include = ["tests/**", "*.py"'))
    wheel = make_wheel("tinydep", "0.3.0", extra=EXTRA)
    lock = tinydep_lock(
        project_mod.load(root).content_hash(), index.url, "tinydep-0.3.0-py3-none-any.whl", sha256(wheel)
    )
    (root / "poetry.lock").write_text(lock)

    def build(*extra: str) -> dict[str, set[str]]:
        out = tmp_path / "out"
        argv = [
            "build",
            str(root),
            "--base",
            base,
            "--to",
            f"oci:{out}:t",
            "--cache-dir",
            str(cache_dir),
            *extra,
        ]
        code = cli.main(argv)
        assert code == 0, capsys.readouterr().err
        validate.validate(out)
        image = layout.read(OciRef(out, "t"), platform=Platform.parse("linux/amd64"), cache=Cache(cache_dir))
        found: dict[str, set[str]] = {}
        for layer in image.layers[2:]:
            with members(layer) as tar:
                found[layer.digest] = {m.name for m in tar if m.isfile()}
        return found

    plain, slimmed = build(), build("--slim")
    every = set().union(*plain.values())
    kept = set().union(*slimmed.values())
    assert {p.removeprefix(SITE + "/") for p in every - kept} == DROPPED
    assert "app/tests/test_main.py" in kept  # the app's own files are never slimmed
    order, slim_order = list(plain), list(slimmed)
    assert (order[0], order[-1]) == (slim_order[0], slim_order[-1])  # the venv and app layers
