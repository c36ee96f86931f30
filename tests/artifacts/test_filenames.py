"""File names from locks, URLs and servers: only wheel and archive names pass, never a path."""

from __future__ import annotations

import pytest

from slimline.artifacts.filenames import BadFileName, archive_name, wheel_name


@pytest.mark.parametrize(
    "name",
    [
        "six-1.17.0-py2.py3-none-any.whl",
        "torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl",
        "a-1!2.0-1-py3-none-any.whl",
    ],
)
def test_wheel_names_pass(name: str) -> None:
    assert wheel_name(name, what="t") == name


@pytest.mark.parametrize(
    "name",
    [
        "../../x-1.0-py3-none-any.whl",
        "./../../../somewhere/evil.whl",
        "x-1.0-py3-none-../../../evil.whl",  # a tag part of the grammar is not checked by the parser
        "/abs/x-1.0-py3-none-any.whl",
        "x-1.0-py3-none-any.whl\x00",
        "evil.whl",
        "x-1.0-py3-none-any.zip",
    ],
)
def test_anything_else_is_refused_as_a_wheel_name(name: str) -> None:
    with pytest.raises(BadFileName, match="not a valid wheel file name"):
        wheel_name(name, what="t")


def test_archive_names_are_plain_names_with_a_known_suffix() -> None:
    for ok in ("demo-1.0.tar.gz", "v1.2.3.zip", "main.tar.bz2"):
        assert archive_name(ok, what="t") == ok
    for bad in ("../demo-1.0.tar.gz", "demo/1.0.tar.gz", "demo-1.0.exe", ".tar.gz"):
        with pytest.raises(BadFileName, match="not a valid source archive file name"):
            archive_name(bad, what="t")
