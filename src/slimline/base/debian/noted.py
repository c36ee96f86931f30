"""What later steps read of an assembled base, noted while its trees are made.

:func:`slimline.base.native.sonames` and :func:`slimline.base.dpkg.installed` read a base's
layers back (decompressing every one) unless their answers are in the cache.  A base slimline
assembles only adds files, so its final file system is the union of its trees' paths.
Contract of :class:`Noted`: :meth:`~Noted.wrap` gives the jobs back, each noting the paths of
the tree it makes; :meth:`~Noted.remember` memoises both answers for the finished image when
every job's tree was made in this process, and does nothing when a layer came from the cache
(the answers are then read from the layers when first asked for, as for any base).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from slimline.base import dpkg, native
from slimline.cache.store import Cache
from slimline.layers.filetree import FileTree, Kind
from slimline.layers.job import Job
from slimline.oci.image import Image

__all__ = ["Noted"]


class Noted:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs = 0
        self._made = 0
        self._paths: list[str] = []
        self._files: list[str] = []

    def wrap(self, jobs: Sequence[Job]) -> list[Job]:
        self._jobs += len(jobs)
        return [replace(job, make=self._noting(job.make)) for job in jobs]

    def _noting(self, make: Callable[[], FileTree]) -> Callable[[], FileTree]:
        def made() -> FileTree:
            tree = make()
            entries = tree.entries()
            with self._lock:
                self._made += 1
                self._paths += (e.path for e in entries)
                self._files += (e.path for e in entries if e.kind is Kind.FILE)
            return tree

        return made

    def remember(self, image: Image, *, cache: Cache) -> None:
        with self._lock:
            if self._made != self._jobs:
                return
            native.remember(image, self._paths, cache=cache)
            dpkg.remember(image, self._files, cache=cache)
