"""What in a project's directory is not its source: one definition for the two walks over it.

- :func:`slimline.artifacts.wheelcache.tree_files` hashes a source tree to key the wheel built
  from it (:func:`skip_when_hashing`).  The stake is a stale wheel: a folder may be left out
  only if it cannot change the wheel the backend builds (which runs in the tree itself), and
  is left out because it changes while the source does not (caches, VCS data) or is large.
- :func:`slimline.trees.appfiles.app_tree` copies a ``package-mode = false`` project into the
  image (:func:`skip_when_copying`).  The stake is what ends up in the image: VCS data,
  caches, virtual environments and compiled files never do, and no pattern re-includes them.

Both leave out :data:`NOT_SOURCE` at any depth, ``*.egg-info`` directories and virtual
environments (:func:`is_virtualenv`, whatever their name), and :data:`BUILD_OUTPUTS` at the top.
The differences are on purpose; each is named where it is defined below.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BUILD_OUTPUTS",
    "NOT_SOURCE",
    "is_virtualenv",
    "skip_when_copying",
    "skip_when_hashing",
]

# Version-control data and tool caches, at any depth: backends do not package them (poetry-core
# leaves out __pycache__ and VCS-ignored files).  One effect the hash cannot see: a version read
# from VCS tags (setuptools-scm, poetry-dynamic-versioning) changes with .git, not with the files.
NOT_SOURCE = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox"}
)
# Build outputs, at the top only (below it ``build`` is an ordinary name: src/app/build/).
# slimline's own default output, dist/image, is among them.
BUILD_OUTPUTS = frozenset({"dist", "build"})
_EGG_INFO = ".egg-info"

# Hashing only, at the top: folders outside any package, so no backend packages them unless
# told to, and big (a venv without pyvenv.cfg, node_modules).  Below the top a folder of these
# names could sit inside a package and be packaged, so it is hashed; and an image keeps them
# (a package-mode = false app may ship its node_modules; .dockerignore can drop it).
_HASH_SKIPS_AT_TOP = BUILD_OUTPUTS | {".venv", "venv", "node_modules"}

# Copying only, at any depth: ``.venv`` (a virtualenv by name, even without pyvenv.cfg) and
# ``.slimline`` (slimline's working folder), never wanted in an image; and compiled files
# (``.pyc``, ``.pyo``: bytecode for the image is made for its own interpreter).  The hash keeps
# them: a .venv or stray .pyc inside a package directory is packaged by most backends.
_COPY_SKIPS = NOT_SOURCE | {".venv", ".slimline"}
_COPY_SKIP_SUFFIXES = (".pyc", ".pyo", _EGG_INFO)


def is_virtualenv(directory: Path) -> bool:
    """Whether ``directory`` is a virtual environment (holds ``pyvenv.cfg``), whatever its name."""
    return (directory / "pyvenv.cfg").is_file()


def skip_when_hashing(name: str, *, top: bool) -> bool:
    """Whether the directory ``name`` (directly in the root when ``top``) is left out of a source
    tree's hash, besides virtual environments.  Files are always hashed."""
    return name in NOT_SOURCE or name.endswith(_EGG_INFO) or (top and name in _HASH_SKIPS_AT_TOP)


def skip_when_copying(name: str, *, top: bool) -> bool:
    """Whether the file or directory ``name`` (directly in the root when ``top``) is never copied
    into an image, besides virtual environments."""
    return name in _COPY_SKIPS or name.endswith(_COPY_SKIP_SUFFIXES) or (top and name in BUILD_OUTPUTS)
