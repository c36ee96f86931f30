"""The image's distributions checked against a project's lock (``poetry.lock``, ``uv.lock`` or
``pylock.toml``: the one a build of it reads), and its app files against the project's files.

Contract of :func:`check_lock`: each distribution in the venv must be the project itself, or a
package the lock holds at that version; one that carries an artifact record
(:mod:`slimline.trees.artifactrecord`) must name a file the lock lists for it with the same
sha256; one without a record is accepted only when the lock gives it no hashed file (path and
VCS dependencies), and its RECORD must agree with the locked wheel's when the cache holds it
(:mod:`slimline.verify.wheels`).  Distributions the lock holds but the image lacks are not problems (groups,
extras and markers leave packages out).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from slimline.cache.store import Cache
from slimline.project import locks, pyproject, settings
from slimline.project.lockfile import LockedPackage
from slimline.verify import wheels
from slimline.verify.findings import Findings
from slimline.verify.python import Dist
from slimline.verify.scan import Scan

__all__ = ["check_app_files", "check_lock"]


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def check_lock(root: Path, dists: Iterable[Dist], found: Findings, *, cache: Cache | None = None) -> None:
    """See the module contract; with ``cache``, also :func:`slimline.verify.wheels.check_wheel`."""
    project = pyproject.load(root)
    chosen = settings.load(project.slimline).lock  # the lock a build of ``root`` reads
    lock = locks.load(locks.find(root, setting=chosen), project_root=root)
    by_name: dict[str, list[LockedPackage]] = {}
    for package in lock.packages:
        by_name.setdefault(package.name, []).append(package)
    own = canonicalize_name(project.name) if project.name else ""
    for dist in dists:
        name = canonicalize_name(dist.name)
        record = f"{dist.dist_info}/RECORD"
        locked = [p for p in by_name.get(name, []) if _same_version(p.version, dist.version)]
        if not locked:
            if name == own and dist.artifact is None:
                found.dists["the project's own distribution"] += 1
                continue
            found.problem(record, f"{dist.label} is not in {lock.path.name}", dist.label)
            continue
        files = [f for p in locked for f in p.files]
        if dist.artifact is None:
            if files:
                found.problem(record, "has no record of the artifact it was installed from", dist.label)
            else:
                found.dists["distributions locked without a hash (path or VCS)"] += 1
            continue
        if not any(f.sha256 == dist.artifact.sha256 for f in files):
            found.problem(
                record,
                f"was installed from {dist.artifact.filename} (sha256 {dist.artifact.sha256}), "
                f"which {lock.path.name} does not list for {dist.label}",
                dist.label,
            )
        else:
            found.dists[f"distributions matching {lock.path.name}"] += 1
            if cache is not None:
                wheels.check_wheel(dist, cache, found)


def check_app_files(s: Scan, paths: Iterable[str], root: Path | None, found: Findings) -> None:
    """App files (``package-mode = false``), against the file at the same place under ``root``
    (below the image's working directory); without ``root`` they are counted, unchecked."""
    workdir = s.image.config.working_dir.strip("/")
    for path in paths:
        digest = s.digest(path)
        rel = path[len(workdir) + 1 :] if workdir and path.startswith(workdir + "/") else ""
        if root is None or digest is None:
            found.account(path, "app files (unchecked: give --project)")
            continue
        local = root / rel if rel else None
        if local is None or not local.is_file():
            found.problem(path, f"an app file that the project at {root} does not have")
            continue
        h = hashlib.sha256()
        with local.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != digest.sha256:
            found.problem(path, f"differs from {local}")
        else:
            found.account(path, "app files matching the project")
