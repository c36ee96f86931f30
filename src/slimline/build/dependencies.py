"""The layers below the project: the venv skeleton, the third-party dependencies (grouped by
:mod:`slimline.plan.grouping`) and local path or VCS dependencies, as
:class:`~slimline.layers.job.Job` values.

Contract of :func:`jobs`: each job's key holds every input of its layer (the artifacts' hashes,
the venv prefix, the target interpreter and platform), so a layer found under its key is the
layer the job would make.  When every third-party layer is already cached (and there are no
local dependencies) no wheel is fetched or even looked at: sizes (for grouping) and the system
libraries wheels link (for :func:`slimline.build.conductor` to complete the base) are memoised per wheel
hash in the cache's ``wheel-info``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from slimline import layers
from slimline.artifacts import build_backend, fetch
from slimline.base import elf
from slimline.cache.store import Cache, sha256_file
from slimline.errors import SlimlineError
from slimline.http import Http
from slimline.layers.filetree import FileTree
from slimline.layers.job import Job
from slimline.plan import grouping
from slimline.plan.model import Plan, Selected
from slimline.project.settings import Settings
from slimline.report import Reporter
from slimline.trees import install

__all__ = ["direct_url", "jobs"]


def jobs(
    plan: Plan,
    *,
    settings: Settings,
    cache: Cache,
    http: Http,
    envs: build_backend.BuildEnvs,
    root: Path,
    report: Reporter,
    default_index: str,
    compression: layers.Compression,
) -> tuple[list[Job], dict[str, frozenset[str]]]:
    """The venv and dependency layer jobs for ``plan``, and the system sonames each
    distribution's native code needs (by distribution name)."""
    target = plan.target
    prefix = settings.venv
    base_key = f"{prefix}|{target.interpreter}|{target.python_version}|{target.platform}"
    jobs = [
        Job(f"venv|{base_key}", lambda: install.venv_tree(target, prefix=prefix), "slimline: python venv", 0)
    ]
    third = [p for p in plan.packages if not p.is_local]
    local = [p for p in plan.packages if p.is_local]

    infos = _known_infos(third, cache)
    sizes = {name: (info.size if info else None) for name, info in infos.items()}
    wheels: dict[str, Path] = {}
    if (
        local
        or any(info is None for info in infos.values())
        or not all(
            layers.lookup(
                k + _bytecode_suffix(bytecode=settings.bytecode), cache=cache, compression=compression
            )
            for k in _group_keys(third, sizes, base_key)
        )
    ):
        report.step(f"fetching {len(plan.packages)} distributions")
        wheels = fetch.fetch(
            plan,
            cache=cache,
            http=http,
            default_index=default_index,
            build_env=envs,
            project_root=root,
            report=report.detail,
        )
        for p in third:
            if infos.get(p.name) is None:
                infos[p.name] = info = _WheelInfo.of(wheels[p.name])
                sizes[p.name] = info.size
                if p.artifact is not None:
                    cache.write_meta("wheel-info", p.artifact.sha256, info.to_json())
    for p in local:
        infos[p.name] = _WheelInfo.of(wheels[p.name])

    for group_, key in zip(_groups(third, sizes), _group_keys(third, sizes, base_key), strict=True):
        names = ", ".join(f"{p.name} {p.version}" for p in group_)
        jobs.append(
            Job(
                key,
                _installer(group_, wheels, plan=plan, prefix=prefix, cache=cache),
                f"slimline: dependencies {names}",
                0,
            )
        )
    for p in local:
        digest = sha256_file(wheels[p.name])
        jobs.append(
            Job(
                f"local|{base_key}|{p.name}|{digest}|{json.dumps(direct_url(p), sort_keys=True)}",
                _installer([p], wheels, plan=plan, prefix=prefix, cache=cache),
                f"slimline: local dependency {p.name} {p.version}",
                0,
            )
        )
    needs = {name: frozenset(info.needs) for name, info in infos.items() if info is not None and info.needs}
    return jobs, needs


def _artifact_id(p: Selected) -> str:
    if p.artifact is not None:
        return f"{p.name}=={p.version}#{p.artifact.filename}:{p.artifact.sha256}"
    return f"{p.name}=={p.version}#{p.origin.kind}:{p.origin.url}@{p.origin.resolved}"


@dataclass(frozen=True, slots=True)
class _WheelInfo:
    """What layer grouping and base completion need to know of a wheel, memoised by its hash."""

    size: int
    needs: tuple[str, ...]  # system sonames its native code links (see slimline.base.elf)

    @classmethod
    def of(cls, wheel: Path) -> _WheelInfo:
        return cls(wheel.stat().st_size, tuple(sorted(elf.wheel_needs(wheel))))

    def to_json(self) -> bytes:
        return json.dumps({"size": self.size, "needs": list(self.needs)}).encode()


def _known_infos(third: Sequence[Selected], cache: Cache) -> dict[str, _WheelInfo | None]:
    out: dict[str, _WheelInfo | None] = {}
    for p in third:
        raw = cache.read_meta("wheel-info", p.artifact.sha256) if p.artifact is not None else None
        if raw:
            d = json.loads(raw)
            out[p.name] = _WheelInfo(int(d["size"]), tuple(d["needs"]))
        else:
            out[p.name] = None
    return out


def _groups(third: Sequence[Selected], sizes: dict[str, int | None]) -> list[list[Selected]]:
    items = [grouping.Item(name=p.name, size=sizes.get(p.name) or 0) for p in third]
    by_name = {p.name: p for p in third}
    return [[by_name[i.name] for i in g] for g in grouping.group(items)]


def _group_keys(third: Sequence[Selected], sizes: dict[str, int | None], base_key: str) -> list[str]:
    return [f"deps|{base_key}|" + ",".join(_artifact_id(p) for p in g) for g in _groups(third, sizes)]


def _installer(
    group_: Sequence[Selected], wheels: dict[str, Path], *, plan: Plan, prefix: str, cache: Cache
) -> Callable[[], FileTree]:
    def make() -> FileTree:
        tree = FileTree()
        for p in group_:
            if p.name not in wheels:
                raise SlimlineError(
                    f"no wheel was fetched for {p.name}", doing="laying out dependency layers"
                )
            tree = tree.merge(
                install.wheel_tree(
                    wheels[p.name], target=plan.target, prefix=prefix, direct_url=direct_url(p)
                )
            )
        return tree

    return make


def direct_url(p: Selected) -> dict[str, object] | None:
    """PEP 610 ``direct_url.json`` for a distribution not from an index, or None.

    Local directories and files get none: their URL would be a path on the build host, which
    means nothing inside the image and would make the image differ per checkout directory."""
    o = p.origin
    if o.kind in ("directory", "file"):
        return None
    if o.kind == "git":
        info: dict[str, object] = {"vcs": "git", "commit_id": o.resolved}
        if o.reference:
            info["requested_revision"] = o.reference
        d: dict[str, object] = {"url": o.url, "vcs_info": info}
        if o.subdirectory:
            d["subdirectory"] = o.subdirectory
        return d
    if o.kind == "url":
        return {"url": o.url, "archive_info": {}}
    return None


def _bytecode_suffix(*, bytecode: bool) -> str:
    """What ``bytecode = true`` adds to the keys dependency layers are looked up by before the
    compiler is chosen (:func:`jobs`): a suffix no layer is stored under, so such a
    build always fetches its wheels (the real keys carry the compiler's identity, see
    :func:`slimline.trees.bytecode.compiled`)."""
    return "|pyc:compiler-not-chosen" if bytecode else ""
