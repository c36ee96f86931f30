"""What later steps read of an assembled base, taken from its trees while they are at hand.

:func:`slimline.base.native.sonames` and :func:`slimline.base.dpkg.installed` read a base's
layers back (decompressing every one) unless their answers are in the cache, and the bytecode
compiler runs the base's interpreter from its file system unpacked from those layers
(:func:`slimline.base.rootfs.cached`).  A base slimline assembles only adds files: its final file
system is its trees, applied in order.

Contract of :class:`Noted`: :meth:`~Noted.wrap` gives the jobs back, each keeping the tree it
makes; when every job's tree was made in this process, :meth:`~Noted.finish` memoises both
answers for the finished image and writes its file system where :func:`~slimline.base.rootfs.cached`
finds it (:func:`~slimline.base.rootfs.from_trees`), then lets the trees go.  When a layer came
from the cache it does nothing: the layers are read when first needed, as for any base.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from slimline.base import dpkg, native, rootfs
from slimline.cache.store import Cache
from slimline.layers.filetree import FileTree, Kind
from slimline.layers.job import Job
from slimline.oci.image import Image

__all__ = ["Noted"]


class Noted:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs = 0
        self._trees: dict[int, FileTree] = {}

    def wrap(self, jobs: Sequence[Job]) -> list[Job]:
        first = self._jobs
        self._jobs += len(jobs)
        return [replace(job, make=self._keeping(first + i, job.make)) for i, job in enumerate(jobs)]

    def _keeping(self, index: int, make: Callable[[], FileTree]) -> Callable[[], FileTree]:
        def made() -> FileTree:
            tree = make()
            with self._lock:
                self._trees[index] = tree
            return tree

        return made

    def finish(self, image: Image, *, cache: Cache) -> None:
        with self._lock:
            trees, self._trees = self._trees, {}
        if len(trees) != self._jobs:
            return
        ordered = [trees[i] for i in range(self._jobs)]
        entries = [e for tree in ordered for e in tree.entries()]  # sorted once per tree
        paths = [e.path for e in entries]
        files = [e.path for e in entries if e.kind is Kind.FILE]
        native.remember(image, paths, cache=cache)
        dpkg.remember(image, files, cache=cache)
        rootfs.from_trees(image, ordered, cache=cache)
