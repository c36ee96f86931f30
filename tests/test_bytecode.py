"""Ahead-of-time bytecode: real compilation, checked by importing from the compiled files."""

from __future__ import annotations

import importlib.util
import marshal
import sys

import pytest

from slimline.bytecode import BytecodeError, compile_tree
from slimline.filetree import TreeBuilder
from slimline.oci.image import Platform
from slimline.target import Target


def _target(minor: int) -> Target:
    return Target(
        platform=Platform("amd64"),
        python_version=(3, minor, 0),
        interpreter=f"/usr/bin/python3.{minor}",
        libc="glibc",
        libc_version=(2, 36),
    )


def test_pyc_files_are_hash_based_and_name_the_image_path() -> None:
    b = TreeBuilder()
    b.data("app/.venv/lib/python3.11/site-packages/pkg/mod.py", b"def f():\n    return 42\n")
    b.data("app/.venv/lib/python3.11/site-packages/pkg/broken.py", b"print 'python 2'\n")
    b.data("app/.venv/lib/python3.11/site-packages/pkg/data.txt", b"not python\n")
    host = sys.version_info.minor
    out = compile_tree(b.freeze(), target=_target(host))
    tag = sys.implementation.cache_tag
    pyc = out.get(f"app/.venv/lib/python3.11/site-packages/pkg/__pycache__/mod.{tag}.pyc")
    assert pyc is not None and pyc.source is not None
    data = pyc.source.open().read()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked (PEP 552)
    assert data[8:16] == importlib.util.source_hash(b"def f():\n    return 42\n")
    code = marshal.loads(data[16:])
    assert code.co_filename == "/app/.venv/lib/python3.11/site-packages/pkg/mod.py"
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["f"]() == 42  # type: ignore[operator]
    assert out.get(f"app/.venv/lib/python3.11/site-packages/pkg/__pycache__/broken.{tag}.pyc") is None
    assert len(out) == len(b.freeze()) + 2  # __pycache__ and one .pyc


def test_a_different_target_python_is_refused() -> None:
    other = sys.version_info.minor + 2
    with pytest.raises(BytecodeError, match=f"needs CPython 3.{other}") as err:
        compile_tree(TreeBuilder().freeze(), target=_target(other))
    assert "bytecode = false" in str(err.value)
