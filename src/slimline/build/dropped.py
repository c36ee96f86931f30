"""What slim mode left out of each distribution (its ``SLIMLINE-DROPPED`` lists), for the SBOM,
known without reading a layer on a warm build.

Contract: :meth:`Watch.jobs` wraps dependency layer jobs so that the lists in the trees they make
are kept as the trees are made; :meth:`Watch.lists`, given the jobs and their layers (in the same
order), returns every list those layers hold, by its path in the image.  A layer's lists come
from what was kept while making it, else from the cache's record for its blob (area
``slim-dropped``, keyed by the blob's digest: the lists are a fact of the blob, whichever build
or machine made it), else from the blob itself (a layer from the shared cache, or a cache that
lost the record), else, when the blob is not on this machine, from its tree made again.  What
is found is recorded for the next build.  Only jobs :meth:`Watch.jobs` wrapped are read.
:func:`by_distribution` turns the lists into what :mod:`slimline.attest.facts` takes.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from packaging.utils import canonicalize_name

from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.layers.filetree import FileTree
from slimline.layers.job import Job
from slimline.layers.read import members
from slimline.oci.image import Layer

__all__ = ["MAX_LIST", "Watch", "by_distribution"]

MAX_LIST = 16 << 20  # bytes of one SLIMLINE-DROPPED list read from a layer blob
_FORMAT = 1  # of the cache's records


class Watch:
    """The lists of the layers of one build's dependency jobs (see the module's contract)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # jobs are made in parallel
        self._watched: set[str] = set()
        self._made: dict[str, dict[str, str]] = {}  # job key -> its lists, when made in this build

    def jobs(self, jobs: Sequence[Job]) -> list[Job]:
        """``jobs``, each keeping the lists of the tree it makes."""
        self._watched.update(j.key for j in jobs)
        return [replace(j, make=self._keeping(j)) for j in jobs]

    def _keeping(self, job: Job) -> Callable[[], FileTree]:
        def make() -> FileTree:
            tree = job.make()
            with self._lock:
                self._made[job.key] = _of_tree(tree)
            return tree

        return make

    def lists(self, jobs: Sequence[Job], layers: Sequence[Layer], *, cache: Cache) -> dict[str, str]:
        """Every list the watched jobs' layers hold: its path in the image (no leading "/") ->
        its text."""
        out: dict[str, str] = {}
        for job, layer in zip(jobs, layers, strict=False):
            if job.key in self._watched:
                out.update(self._of(job, layer, cache=cache))
        return out

    def dropped(
        self, jobs: Sequence[Job], layers: Sequence[Layer], *, cache: Cache
    ) -> dict[str, tuple[tuple[str, int], ...]]:
        """:meth:`lists`, by distribution (:func:`by_distribution`)."""
        return by_distribution(self.lists(jobs, layers, cache=cache))

    def _of(self, job: Job, layer: Layer, *, cache: Cache) -> dict[str, str]:
        key = keys.key("slim-dropped", _FORMAT, layer.digest)
        with self._lock:
            found = self._made.get(job.key)
        if found is None:
            raw = cache.read_meta(keys.SLIM_DROPPED, key)
            if raw is not None:
                return {str(k): str(v) for k, v in json.loads(raw).items()}
            found = _of_blob(layer) if layer.path.is_file() else _of_tree(job.make())
        cache.write_meta(keys.SLIM_DROPPED, key, json.dumps(found, sort_keys=True).encode())
        return found


def _is_list(path: str, dropped: str) -> bool:
    head, _, name = path.rpartition("/")
    return name == dropped and head.endswith(".dist-info")


def _of_tree(tree: FileTree) -> dict[str, str]:
    from slimline.trees.slim import DROPPED  # slim mode's modules load only when it is on

    out: dict[str, str] = {}
    for path in tree.paths():
        if _is_list(path, DROPPED) and (entry := tree.get(path)) is not None and entry.source is not None:
            with entry.source.open() as f:
                out[path] = f.read().decode("utf-8", errors="replace")  # made by slim.prune
    return out


def _of_blob(layer: Layer) -> dict[str, str]:
    """The lists in ``layer``'s blob, streamed (only they are held)."""
    from slimline.trees.slim import DROPPED

    out: dict[str, str] = {}
    with members(layer) as tar:
        for m in tar:
            path = m.name.removeprefix("./").lstrip("/")
            if not (m.isreg() and _is_list(path, DROPPED)):
                continue
            if m.size > MAX_LIST:
                raise SlimlineError(
                    f"layer {layer.digest} holds a {DROPPED} list of {m.size} bytes",
                    doing="reading what slim mode left out, for the SBOM",
                    hint="slim mode writes no such list: empty the cache "
                    "(slimline cache prune --older-than 0) and build again",
                )
            f = tar.extractfile(m)
            out[path] = f.read().decode("utf-8", errors="replace") if f is not None else ""
    return out


def by_distribution(lists: Mapping[str, str]) -> dict[str, tuple[tuple[str, int], ...]]:
    """Canonical distribution name -> the files slim mode left out of it: (path in the image
    with a leading "/", bytes as RECORD says, 0 when it does not), sorted by path."""
    from slimline.trees.slim import read

    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for path, text in lists.items():
        folder = posixpath.dirname(path)
        site = posixpath.dirname(folder)
        name = str(canonicalize_name(posixpath.basename(folder).partition("-")[0]))
        rows = {posixpath.normpath(f"/{site}/{r.path}"): r.size or 0 for r in read(text.encode())}
        out[name] = tuple(sorted(rows.items()))
    return out
