"""A layer to produce: its cache key, how to make its tree, its history line and file times.

Also the job for the project's own layer, shared by a full build (:mod:`slimline.build.conductor`) and
a rebuild from the memo (:mod:`slimline.build.memo`), so both make the same layer from the same
files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slimline.artifacts.wheelcache import FileDigests
from slimline.cache.store import Cache, sha256_file
from slimline.layers.filetree import FileOnDisk, FileTree
from slimline.target import Target

__all__ = ["AppFiles", "Job", "project_job"]


@dataclass(frozen=True, slots=True)
class Job:
    """``key`` must capture every input of ``make`` (see :func:`slimline.layers.cached`)."""

    key: str
    make: Callable[[], FileTree]
    created_by: str
    mtime: int


@dataclass(frozen=True, slots=True)
class AppFiles:
    """Which of a non-package project's files go into the image, and where."""

    workdir: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    also_exclude: tuple[Path, ...]  # outputs written inside the project


def project_job(
    root: Path,
    *,
    name: str,
    version: str,
    wheel: Path | None,
    venv: str,
    target: Target,
    app: AppFiles,
    epoch: int,
    cache: Cache | None = None,
) -> Job:
    """The project's layer: its wheel installed into the venv (package mode, ``wheel`` given),
    else its files copied under ``app.workdir`` (with ``cache``, files unchanged since the last
    build are not read again to key the layer: :class:`slimline.artifacts.wheelcache.FileDigests`)."""
    if wheel is not None:
        digest = sha256_file(wheel)

        def install_wheel() -> FileTree:
            from slimline.trees import install

            return install.wheel_tree(wheel, target=target, prefix=venv, requested=True)

        return Job(
            f"project|{venv}|{target.interpreter}|{digest}",
            install_wheel,
            f"slimline: project {name} {version}",
            epoch,
        )
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
    return Job(f"app|{h.hexdigest()}", lambda: tree, f"slimline: app files {name}", epoch)
