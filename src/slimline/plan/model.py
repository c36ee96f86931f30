"""The plan: which distributions go into the image and which artifact each comes from.

Pure data, made by :mod:`slimline.plan.select` from a project, its lock and a target; consumed
by :mod:`slimline.artifacts.fetch` (which turns each :class:`Selected` into a wheel file on disk)
and by :mod:`slimline.build.conductor` (which lays the wheels into layers).  Deciding is kept apart
from doing: nothing here touches the network or the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slimline.project.lockfile import Artifact
from slimline.target import Target

__all__ = ["Allowance", "Artifact", "Origin", "Plan", "Selected"]

OriginKind = Literal["index", "directory", "file", "url", "git"]
Allowance = Literal["unverified", "plain-http"]  # what [tool.slimline] lets one package skip


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a locked package comes from.

    ``index``: a PEP 503/691 simple index; ``url`` is its base (the project's primary
    source, PyPI's default resolved from configuration, or a ``legacy`` source's URL) and
    ``name`` the Poetry source name ("" for the default).  ``directory``/``file``: ``url``
    is an absolute path on the host.  ``url``: an archive URL.  ``git``: ``url`` is the
    repository, ``reference`` the requested ref, ``resolved`` the locked commit.
    """

    kind: OriginKind
    url: str
    name: str = ""
    reference: str = ""
    resolved: str = ""
    subdirectory: str = ""
    develop: bool = False


@dataclass(frozen=True, slots=True)
class Selected:
    """One distribution to install.

    ``artifact`` is the best wheel for the target, or the sdist to build when no wheel
    fits, or None for directory/git/url origins that are built from source.
    ``extras`` are the extras requested of it (recorded for information).
    ``files``: for file and url origins, every file the lock lists with its hash: the bytes
    fetched must match one of them (or ``artifact``'s, when there is one).
    ``allow``: the checks the user lifted for this package (``unverified``: no hash in the
    lock; ``plain-http``: an ``http://`` URL).
    """

    name: str  # canonical (PEP 503 normalised) name
    version: str
    origin: Origin
    artifact: Artifact | None
    extras: tuple[str, ...] = ()
    files: tuple[Artifact, ...] = ()
    allow: frozenset[Allowance] = frozenset()

    @property
    def needs_build(self) -> bool:
        return self.artifact is None or self.artifact.kind == "sdist"

    @property
    def is_local(self) -> bool:
        """Path and VCS dependencies: they get layers of their own above third-party ones."""
        return self.origin.kind in ("directory", "file", "git")


@dataclass(frozen=True, slots=True)
class Plan:
    target: Target
    packages: tuple[Selected, ...]  # sorted by name
    groups: tuple[str, ...]  # the dependency groups that were selected
    extras: tuple[str, ...]  # the root project's extras that were selected
