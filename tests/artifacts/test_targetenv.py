"""One build-requirements environment serves the builds it satisfies as pip would have."""

from __future__ import annotations

from pathlib import Path

from slimline.artifacts import targetenv

TARGET = ["linux/amd64", "3.11", "glibc", "2.36"]


def _env(
    root: Path, name: str, requires: list[str], installed: dict[str, str], target: list[str] = TARGET
) -> Path:
    env = root / name
    for dist, version in installed.items():
        info = env / f"{dist}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (env / targetenv.COMPLETE).write_bytes(targetenv.record(requires, target))
    return env


def test_an_environment_of_the_newest_release_serves_every_lower_bound_it_meets(tmp_path: Path) -> None:
    made = _env(tmp_path, "a", ["setuptools>=70.1"], {"setuptools": "80.9.0"})
    assert targetenv.reusable(tmp_path, ["setuptools>=61"], TARGET) == made
    assert targetenv.reusable(tmp_path, ["Setuptools>=77"], TARGET) == made
    assert targetenv.reusable(tmp_path, ["setuptools"], TARGET) == made
    assert targetenv.reusable(tmp_path, ["setuptools>=81"], TARGET) is None  # pip would install a newer one
    assert targetenv.reusable(tmp_path, ["setuptools<80"], TARGET) is None
    assert targetenv.reusable(tmp_path, ["setuptools>=61", "wheel"], TARGET) is None  # other names
    assert targetenv.reusable(tmp_path, ["setuptools>=61"], ["linux/arm64", *TARGET[1:]]) is None
    assert targetenv.reusable(tmp_path, ["setuptools[core]>=61"], TARGET) is None  # extras: not compared


def test_an_environment_made_under_an_upper_bound_serves_no_other_request(tmp_path: Path) -> None:
    # pip chose 69.5 because of "<70"; asked for ">=61" alone it would choose the newest release
    _env(tmp_path, "a", ["setuptools<70,>=40"], {"setuptools": "69.5.1"})
    _env(tmp_path, "b", ["setuptools!=80.0"], {"setuptools": "80.9.0"})
    _env(tmp_path, "c", ["cython>=3"], {"cython": "3.1.2"})
    (tmp_path / "d").mkdir()  # an environment being made: no record yet
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / targetenv.COMPLETE).write_text('["setuptools>=61"]')  # an older record's form
    assert targetenv.reusable(tmp_path, ["setuptools>=61"], TARGET) is None
    assert targetenv.reusable(tmp_path, ["Cython>=3.0"], TARGET) == tmp_path / "c"


def test_names_are_canonical_and_sorted() -> None:
    assert targetenv.names(["wheel", "Setuptools>=61", "setuptools_scm[toml]>=8"]) == [
        "setuptools",
        "setuptools-scm",
        "wheel",
    ]
