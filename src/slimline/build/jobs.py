"""Jobs for the layers every build makes itself: the project's layer and, with bytecode, the
base's standard library; and :func:`job`, which every layer job of a build is made with.

The project's job is shared by a full build (:mod:`slimline.build.image`) and a rebuild from
the memo (:mod:`slimline.build.memo`), so both make the same layer from the same files.  This
module is on the memo's path: what it needs only to make a layer is imported when it is made.

Contract of :func:`job`: the key is :func:`slimline.cache.keys.key` of the job's kind, its parts
and the bytecode compiler's identity, so a layer found under it is the layer ``make`` would
give; with a compiler, ``make`` also adds the ``.pyc`` files it compiles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from slimline.artifacts.wheelcache import FileDigests
from slimline.build.writable import Writable
from slimline.build.writable import add as add_writable
from slimline.cache import keys
from slimline.cache.store import Cache, sha256_file
from slimline.layers.filetree import FileOnDisk, FileTree
from slimline.layers.job import Job
from slimline.target import Target

if TYPE_CHECKING:
    from slimline.oci.image import Image
    from slimline.trees.compiler import Compiler

__all__ = ["AppFiles", "Placement", "job", "project_job", "stdlib_job"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a build's Python layers go and what they are for: the same for all its jobs."""

    venv: str  # the virtualenv's prefix in the image ("/app/.venv")
    target: Target
    compiler: Compiler | None = None  # bytecode = true: compiles every .py the layers hold
    # slim = true: the slim-keep patterns by distribution (dependency layers are slimmed); None: off
    slim: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True, slots=True)
class AppFiles:
    """Which of a non-package project's files go into the image, and where."""

    workdir: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    also_exclude: tuple[Path, ...]  # outputs written inside the project


def job(
    kind: str,
    parts: tuple[object, ...],
    make: Callable[[], FileTree],
    *,
    created_by: str,
    mtime: int = 0,
    compiler: Compiler | None,
) -> Job:
    """A layer job keyed by ``kind`` and ``parts`` (every input of ``make``) and, with bytecode,
    compiled by ``compiler``."""
    if compiler is None:
        return Job(keys.key(kind, *parts, None), make, created_by, mtime)

    def compiled() -> FileTree:
        from slimline.trees import bytecode

        return bytecode.compile_tree(make(), compiler=compiler)

    return Job(keys.key(kind, *parts, compiler.identity), compiled, created_by, mtime)


def project_job(
    root: Path,
    *,
    name: str,
    version: str,
    wheel: Path | None,
    place: Placement,
    app: AppFiles,
    epoch: int,
    cache: Cache | None = None,
    writable: Writable | None = None,
) -> Job:
    """The project's layer: its wheel installed into the venv (package mode, ``wheel`` given),
    else its files copied under ``app.workdir`` (with ``cache``, files unchanged since the last
    build are not read again to key the layer: :class:`slimline.artifacts.wheelcache.FileDigests`);
    with ``writable``, its directories too (:func:`slimline.build.writable.add`)."""
    target = place.target
    # without writable directories the key's parts are what they were before the setting existed
    more: tuple[object, ...] = () if writable is None else (writable.to_json(),)
    if wheel is not None:
        digest = sha256_file(wheel)

        def install_wheel() -> FileTree:
            from slimline.trees import install

            tree = install.wheel_tree(wheel, target=target, prefix=place.venv, requested=True)
            return tree if writable is None else add_writable(tree, writable)

        parts: tuple[object, ...] = (place.venv, target.interpreter, digest, *more)
        return job(
            "project", parts, install_wheel, created_by=f"slimline: project {name} {version}",
            mtime=epoch, compiler=place.compiler,
        )  # fmt: skip
    tree, digest = _app_tree(root, app, cache=cache)
    if writable is not None:
        tree = add_writable(tree, writable)
    return job(
        "app", (digest, *more), lambda: tree, created_by=f"slimline: app files {name}", mtime=epoch,
        compiler=place.compiler,
    )  # fmt: skip


def _app_tree(root: Path, app: AppFiles, *, cache: Cache | None) -> tuple[FileTree, str]:
    """The app's files under ``app.workdir``, and a digest of the tree (paths, modes, contents)."""
    from slimline.trees import appfiles

    tree = appfiles.app_tree(
        root, dest=app.workdir, include=app.include, exclude=app.exclude, also_exclude=app.also_exclude
    )
    digests = FileDigests(root, cache=cache, purpose="app")
    h = hashlib.sha256(app.workdir.encode())
    for entry in tree.entries():
        h.update(repr((entry.path, entry.kind, entry.mode, entry.size, entry.target)).encode())
        source = entry.source
        if isinstance(source, FileOnDisk) and source.path.is_relative_to(root):
            h.update(bytes.fromhex(digests.of(source.path)))
        elif source is not None:
            with source.open() as f:
                h.update(hashlib.sha256(f.read()).digest())
    digests.save()
    return tree, h.hexdigest()


def stdlib_job(base: Image, place: Placement) -> Job:
    """``.pyc`` files for the base's standard library (bytecode = true), in a layer of their own."""
    from slimline.trees import bytecode

    compiler = place.compiler
    assert compiler is not None, "the standard library is compiled only with bytecode = true"
    return Job(
        # the compiler decides the bytes: the base's digest and tag, or this interpreter's sys.version
        keys.key("stdlib-pyc", bytecode.STDLIB_FORMAT, base.digest, compiler.identity),
        lambda: bytecode.stdlib_tree(base, target=place.target, compiler=compiler),
        "slimline: bytecode for the base's standard library",
        0,
    )
