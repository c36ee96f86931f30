"""The project stage's one TOML reader (slimline.project.toml) and pyproject.head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slimline.project import pyproject, settings, toml
from slimline.project.toml import FieldError, each, get, get_list, get_list_of, get_table, within


def _field(fn: Any) -> str:
    with pytest.raises(FieldError) as info:
        fn()
    return info.value.field


def test_getters_check_types_and_defaults() -> None:
    d = {"s": "x", "b": True, "i": 3, "l": ["a", "b"], "t": {"k": "v"}}
    assert get(d, "s", str) == "x"
    assert get(d, "missing", str) is None
    assert get(d, "missing", str, default="") == ""
    assert get(d, "i", int, required=True) == 3
    assert get_list(d, "l", str) == ("a", "b")
    assert get_list(d, "missing", str) == ()
    assert get_table(d, "t") == {"k": "v"}
    assert get_table(d, "missing") == {}
    with pytest.raises(FieldError, match=r"expected an integer, got True"):
        get(d, "b", int)  # TOML's true is not an integer
    with pytest.raises(FieldError, match="missing"):
        get(d, "missing", str, required=True)


def test_nested_errors_get_their_parents_keys() -> None:
    def package(value: Any) -> str:
        t = toml.check_table(value)
        get_list_of(t, "files", lambda f: get(toml.check_table(f), "hash", str, required=True))
        return get(t, "name", str, default="")

    data: dict[str, Any] = {"package": [{"name": "a"}, {"files": [{"hash": "h"}, {"hash": 1}]}]}
    assert _field(lambda: get_list_of(data, "package", package)) == "package[1].files[1].hash"
    assert _field(lambda: get_list({"l": ["a", 2]}, "l", str)) == "l[1]"
    assert _field(lambda: get_table({"t": []}, "t")) == "t"
    with within("tool.slimline"):
        pass  # no error: nothing to prefix

    def nested() -> None:
        with within("tool.slimline.debian"), within("packages"):
            each(["ok", 2], lambda v: toml.check(v, str))

    assert _field(nested) == "tool.slimline.debian.packages[1]"


def test_load_names_the_file_and_where(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'a = "ok"\nb = "\xff"\n')
    with pytest.raises(toml.TomlError, match=r"not UTF-8 text: byte 0xff at line 2, column 6") as info:
        toml.load(bad)
    assert info.value.file == bad and str(bad) in str(info.value)
    bad.write_text("a = 1\nb = = 2\n")
    with pytest.raises(toml.TomlError, match=r"not valid TOML: .*\(at line 2, column 5\)"):
        toml.load(bad)
    with pytest.raises(toml.TomlError, match="does not exist"):
        toml.load(tmp_path / "missing.toml")
    (tmp_path / "crlf.toml").write_bytes(b"# Poetry 1.8.3\r\na = 1\r\n")
    text, data = toml.read(tmp_path / "crlf.toml")
    assert data == {"a": 1} and text.startswith("# Poetry 1.8.3\r\n")


def test_head_reads_name_version_and_settings(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "My_App"\nversion = "1.2"\n[tool.slimline]\nbase = "debian:bookworm"\n'
    )
    h = pyproject.head(tmp_path)
    assert (h.name, h.version, h.package_mode) == ("My_App", "1.2", True)
    assert h.slimline == {"base": "debian:bookworm"}
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\npackage-mode = false\nversion = "3"\n')
    h = pyproject.head(tmp_path)
    assert (h.name, h.version, h.package_mode, h.slimline) == ("", "3", False, {})
    (tmp_path / "pyproject.toml").write_text("[tool]\nslimline = 2\n")
    with pytest.raises(pyproject.ProjectError) as info:
        pyproject.head(tmp_path)
    assert info.value.field == "tool.slimline"


def test_missing_pyproject_message(tmp_path: Path) -> None:
    with pytest.raises(pyproject.ProjectError) as info:
        pyproject.head(tmp_path)
    text = str(info.value)
    assert "pyproject.toml does not exist" in text and "no pyproject.toml" in text
    assert "run slimline in a Poetry project" in text


def test_settings_name_the_list_item() -> None:
    with pytest.raises(settings.SettingsError) as info:
        settings.load({"debian": {"packages": ["curl", 2]}})
    assert info.value.key == "tool.slimline.debian.packages[1]"
