"""What the documents say, gathered once from what a full build knows: plain, JSON-able values.

:func:`gather` reads nothing but cache records the build already made (wheel infos, the Debian
pin's package list): it costs no download and no wheel read on a warm build.  Every URL in it
has its credentials removed (:func:`slimline.errors.redact` and ``user:password@`` dropped).
:func:`Facts.key` identifies the documents made from them (the image's digest and the git
revision are put in later: :mod:`slimline.attest.documents`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from slimline import __version__
from slimline.artifacts.wheelinfo import WheelInfo
from slimline.base.resolve import Base, DebPackage
from slimline.cache import keys
from slimline.errors import redact
from slimline.plan.model import Plan, Selected
from slimline.project.lockfile import Lock
from slimline.project.pyproject import Project

__all__ = ["Distribution", "Facts", "gather", "public_url"]

FORMAT = 1  # bump when what the documents say from the same facts changes


@dataclass(frozen=True, slots=True)
class Distribution:
    """One Python distribution in the image."""

    name: str  # canonical
    version: str
    sha256: str  # of the artifact as locked ("" for directory and git origins: nothing is locked)
    filename: str  # the locked artifact's file name ("" as above)
    kind: str  # the origin's kind: index, url, file, directory, git
    source: str  # the index URL (index), else the URL, path or repository (credentials removed)
    license: str  # License-Expression ("" when the metadata has none)
    classifiers: tuple[str, ...]  # License :: classifiers
    sboms: tuple[str, ...]  # PEP 770 SBOM files, as paths in the image
    depends: tuple[str, ...]  # canonical names of the image's distributions it requires (the lock)
    # slim mode: the files it left out (its SLIMLINE-DROPPED list), as paths in the image, sorted
    dropped: tuple[str, ...] = ()
    dropped_size: int = 0  # their bytes, as RECORD says


@dataclass(frozen=True, slots=True)
class Facts:
    name: str  # the project's name as written
    version: str  # "" when it has none (package-mode = false)
    package: bool  # installed as a distribution (its .dist-info is in the image)
    direct: tuple[str, ...]  # the distributions the project itself requires (selected groups)
    distributions: tuple[Distribution, ...]  # sorted by name
    debian: tuple[DebPackage, ...]  # a debian: base's packages (sorted), () for other bases
    platform: str
    python: str  # "3.11.2"
    interpreter: str  # "/usr/bin/python3.11"
    base: str  # the base reference as written
    base_digest: str
    releases: tuple[tuple[str, str], ...]  # the Debian InRelease files read: URL, sha256
    lock_sha256: str
    indexes: tuple[str, ...]  # the package indexes the distributions came from
    parameters: Mapping[str, Any]  # the settings the image was built with (provenance)
    builder_id: str
    epoch: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self, formats: tuple[str, ...], *, revision: bool) -> str:
        """The cache key of the documents in ``formats`` made from these facts (``revision``:
        with a slot for the project's git revision)."""
        return keys.key("attest", FORMAT, __version__, list(formats), revision, self.to_json())


def public_url(url: str) -> str:
    """``url`` without credentials."""
    return redact(url).replace("***@", "")


def gather(
    *,
    project: Project,
    lock: Lock,
    plan: Plan,
    infos: Mapping[str, WheelInfo],
    base: Base,
    default_index: str,
    venv: str,
    parameters: Mapping[str, Any],
    builder_id: str,
    epoch: int,
    dropped: Mapping[str, tuple[tuple[str, int], ...]] | None = None,
) -> Facts:
    """The facts of one platform's image (``infos``: each distribution's :class:`WheelInfo`;
    ``dropped``: by canonical name, the files slim mode left out, as (path in the image, bytes))."""
    names = {p.name for p in plan.packages}
    site = f"{venv.rstrip('/')}/lib/python{plan.target.python_xy}/site-packages"
    dists = tuple(
        _distribution(p, infos.get(p.name), lock, names, default_index, site) for p in plan.packages
    )
    if dropped:
        dists = tuple(_slimmed(d, dropped.get(d.name, ())) for d in dists)
    direct = {
        str(canonicalize_name(d.name))
        for g in plan.groups
        if g in project.groups
        for d in project.groups[g].dependencies
    }
    target = plan.target
    return Facts(
        name=project.name,
        version=project.version,
        package=project.package_mode,
        direct=tuple(sorted(direct & names)),
        distributions=tuple(sorted(dists, key=lambda d: d.name)),
        debian=tuple(sorted(base.packages, key=lambda p: (p.name, p.arch))),
        platform=str(target.platform),
        python=".".join(str(n) for n in target.python_version),
        interpreter=target.interpreter,
        base=public_url(base.name),
        base_digest=base.digest,
        releases=base.releases,
        lock_sha256=hashlib.sha256(Path(lock.path).read_bytes()).hexdigest(),
        indexes=tuple(sorted({d.source for d in dists if d.kind == "index"})),
        parameters=parameters,
        builder_id=builder_id,
        epoch=epoch,
    )


def _slimmed(d: Distribution, files: tuple[tuple[str, int], ...]) -> Distribution:
    paths = tuple(sorted(p for p, _ in files))
    return dataclasses.replace(d, dropped=paths, dropped_size=sum(n for _, n in files))


def _distribution(
    p: Selected, info: WheelInfo | None, lock: Lock, names: set[str], default_index: str, site: str
) -> Distribution:
    locked = [lp for lp in lock.named(p.name) if lp.version == p.version]
    depends = sorted({str(canonicalize_name(n)) for lp in locked for n in lp.dependencies} & names)
    source = p.origin.url or default_index if p.origin.kind == "index" else p.origin.url
    return Distribution(
        name=p.name,
        version=p.version,
        sha256=p.artifact.sha256 if p.artifact is not None else "",
        filename=p.artifact.filename if p.artifact is not None else "",
        kind=p.origin.kind,
        source=public_url(source.rstrip("/") if p.origin.kind == "index" else source),
        license=info.license if info is not None else "",
        classifiers=info.license_classifiers if info is not None else (),
        sboms=tuple(f"{site}/{m}" for m in info.sboms) if info is not None else (),
        depends=tuple(d for d in depends if d != p.name),
    )
