"""What holds code to compile: a source tree, a source archive's entries, a wheel.

Contract: :func:`native_sources` says whether a source tree holds code that is compiled (C, C++,
Objective-C, Cython, Fortran, Rust, Go sources, or a Cargo, Meson or CMake project), outside
version-control and cache folders; :func:`native_names` gives the same answer for the tree a
source archive with those entry names unpacks to, before it is unpacked; :func:`pure` says
whether a wheel runs on any platform (every tag's platform is ``any``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

__all__ = ["native_names", "native_sources", "pure"]

_NATIVE_SUFFIXES = frozenset({".c", ".cc", ".cpp", ".cxx", ".c++", ".m", ".pyx", ".f", ".f90", ".rs", ".go"})
_NATIVE_FILES = frozenset({"Cargo.toml", "meson.build", "CMakeLists.txt"})
_NOT_SOURCES = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv"})


def pure(filename: str) -> bool:
    """Whether the wheel ``filename`` runs on any platform (all its tags say ``any``)."""
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return all(t.platform == "any" for t in tags)


def native_sources(tree: Path) -> bool:
    """Whether the source tree holds code that is compiled (see the module's contract)."""
    for _, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in _NOT_SOURCES]
        if any(_native(f) for f in filenames):
            return True
    return False


def native_names(names: Iterable[str]) -> bool:
    """:func:`native_sources` of the tree a source archive with entries ``names`` unpacks to."""
    for name in names:
        *folders, leaf = name.split("/")
        if leaf and _native(leaf) and not _NOT_SOURCES.intersection(folders):
            return True
    return False


def _native(filename: str) -> bool:
    return filename in _NATIVE_FILES or os.path.splitext(filename)[1] in _NATIVE_SUFFIXES
