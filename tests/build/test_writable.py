"""Writable directories (``writable = [...]``): in the project's layer, owned by the image's
user, the same from a full build and from the memo's rebuild; paths checked by the settings."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from slimline import cli
from slimline.cache.store import Cache
from slimline.layers.read import members
from slimline.oci import layout, reference, validate
from slimline.oci.image import Platform
from slimline.project import settings
from tests.artifacts.helpers import LocalIndex
from tests.build.helpers import build_cli, make_base, write_project


def _top_layer_dirs(out: Path, cache_dir: Path) -> dict[str, tarfile.TarInfo]:
    image = layout.read(
        reference.OciRef(out, "t"), platform=Platform.parse("linux/amd64"), cache=Cache(cache_dir)
    )
    with members(image.layers[-1]) as tar:
        return {m.name: m for m in tar if m.isdir()}


@pytest.mark.parametrize("package", [True, False])
def test_writable_directories_are_the_users_in_the_project_layer(
    tmp_path: Path,
    index: LocalIndex,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    package: bool,
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    base = make_base(Cache(cache_dir), tmp_path / "base")
    root = write_project(tmp_path / "proj", index.url, package=package)
    plain = build_cli(root, base, tmp_path / "plain", cache_dir, capsys)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'writable = ["/app/data", "/var/cache/app"]\n')
    out = tmp_path / "out"

    first = build_cli(root, base, out, cache_dir, capsys)
    validate.validate(out)
    assert first != plain
    dirs = _top_layer_dirs(out, cache_dir)
    for path in ("app/data", "var/cache/app"):
        assert (dirs[path].uid, dirs[path].gid, dirs[path].mode) == (65532, 65532, 0o755)
    # the synthetic base has no /var: its parents are made, root's
    for path in ("var", "var/cache"):
        assert (dirs[path].uid, dirs[path].gid, dirs[path].mode) == (0, 0, 0o755)
    assert dirs["app"].uid == 0

    # an edit: the memo's rebuild and a full build agree, and keep the directories
    source = root / ("hello_app/__init__.py" if package else "main.py")
    source.write_text(source.read_text() + "# edited\n")
    edited = build_cli(root, base, out, cache_dir, capsys)
    assert "app/data" in _top_layer_dirs(out, cache_dir)
    monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
    assert build_cli(root, base, out, cache_dir, capsys) == edited
    assert build_cli(root, base, tmp_path / "again", tmp_path / "cache2", capsys) == edited


def test_a_named_user_is_owner_by_its_numbers(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    base = make_base(Cache(cache_dir), tmp_path / "base")
    root = write_project(tmp_path / "proj", index.url, package=False)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'writable = ["/app/data"]\nuser = "nonroot"\n')
    build_cli(root, base, tmp_path / "out", cache_dir, capsys)
    found = _top_layer_dirs(tmp_path / "out", cache_dir)["app/data"]
    assert (found.uid, found.gid) == (65532, 65532)

    pyproject.write_text(pyproject.read_text().replace('user = "nonroot"', 'user = "nobody"'))
    code = cli.main(
        [
            "build",
            str(root),
            "--base",
            base,
            "--to",
            f"oci:{tmp_path / 'o2'}:t",
            "--cache-dir",
            str(cache_dir),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "'nobody'" in err and "/etc/passwd" in err


@pytest.mark.parametrize(
    ("paths", "says"),
    [
        (["app/data"], "absolute"),
        (["/app/../etc"], "'..'"),
        (["/app//data"], "'//'"),
        (["/usr/local/data"], "/usr holds the system's own files"),
        (["/etc"], "/etc holds"),
        (["/var/run/app"], "/var/run holds"),
        (["/tmp"], "writable by everyone already"),
        (["/app/.venv/cache"], "virtual environment"),
        (["/app"], "virtual environment"),
    ],
)
def test_bad_writable_paths_are_refused(paths: list[str], says: str) -> None:
    with pytest.raises(settings.SettingsError) as err:
        settings.load({"writable": paths})
    assert says in str(err.value)
    assert err.value.key == "tool.slimline.writable"


def test_writable_paths_are_kept_in_order_once() -> None:
    chosen = settings.load(
        {"writable": ["/var/cache/app", "/app/data", "/var/cache/app"], "venv": "/opt/venv"}
    )
    assert chosen.writable == ("/var/cache/app", "/app/data")
    assert json.dumps(chosen.writable)
