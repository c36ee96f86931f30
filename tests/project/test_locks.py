"""Which lock file a build reads; the memo key follows the chosen lock's bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimline.build import memo
from slimline.project import locks, settings
from slimline.project.locks import LockChoiceError
from slimline.project.settings import SettingsError


def files(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    for n in names:
        (root / n).write_text(f"# {n}\n")
    return root


def test_the_one_lock_present_is_chosen(tmp_path: Path) -> None:
    for name, kind in (("poetry.lock", "poetry"), ("uv.lock", "uv"), ("pylock.prod.toml", "pylock")):
        root = files(tmp_path / kind, name, "README.md", "pylock.a.b.toml")  # not a pylock name
        assert locks.find(root) == root / name
        assert locks.format_of(root / name) == kind


def test_none_or_several_say_what_was_found_and_how_to_choose(tmp_path: Path) -> None:
    with pytest.raises(LockChoiceError, match="has no lock file") as got:
        locks.find(files(tmp_path / "none"))
    assert "poetry lock" in got.value.hint
    root = files(tmp_path / "many", "poetry.lock", "pylock.toml", "uv.lock")
    with pytest.raises(
        LockChoiceError, match=r"several lock files: poetry\.lock, pylock\.toml, uv\.lock"
    ) as got:
        locks.find(root)
    assert "--lock PATH" in got.value.hint and "[tool.slimline]" in got.value.hint
    assert locks.find(root, setting="uv.lock") == root / "uv.lock"
    elsewhere = files(tmp_path / "other", "pylock.toml") / "pylock.toml"
    assert locks.find(root, setting=str(elsewhere)) == elsewhere  # --lock: absolute
    with pytest.raises(LockChoiceError, match=r"requirements\.txt is not a lock file"):
        locks.find(root, setting="requirements.txt")
    with pytest.raises(LockChoiceError, match="does not exist"):
        locks.find(root, setting="pylock.dev.toml")


def test_the_lock_setting_is_a_file_name_beside_pyproject() -> None:
    assert settings.load({"lock": "uv.lock"}).lock == "uv.lock"
    assert settings.load({}, overrides={"lock": Path("/x/pylock.toml")}).lock == "/x/pylock.toml"
    for bad in ("locks/pylock.toml", "/abs/uv.lock", ".."):
        with pytest.raises(SettingsError) as got:
            settings.load({"lock": bad})
        assert got.value.key == "tool.slimline.lock"


def test_memo_key_follows_every_candidate_lock(tmp_path: Path) -> None:
    root = files(tmp_path, "uv.lock")
    command = {"project": str(root)}
    first = memo.key(root, command=command, env={})
    assert first is not None and memo.key(root, command=command, env={}) == first
    (root / "uv.lock").write_text("# changed\n")
    second = memo.key(root, command=command, env={})
    assert second not in (None, first)
    (root / "pylock.toml").write_text("# another\n")  # the choice may change: so does the key
    assert memo.key(root, command=command, env={}) not in (None, first, second)
    other = files(tmp_path / "o", "pylock.toml") / "pylock.toml"
    chosen = memo.key(root, command={**command, "lock": other}, env={})
    other.write_text("# changed\n")
    assert memo.key(root, command={**command, "lock": other}, env={}) not in (None, chosen)
    (root / "uv.lock").unlink()
    (root / "pylock.toml").unlink()
    assert memo.key(root, command=command, env={}) is None
