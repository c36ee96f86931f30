"""Turn a plan into verified wheel files on the host.

Contract of :func:`fetch`: for every selected package it returns the path of a wheel file with
its real wheel name (``<cache>/wheels/<sha256>/<filename>``, see
:mod:`slimline.artifacts.wheelcache`).  Each wheel was either downloaded and its bytes matched the
lock's sha256, or built on this host from an sdist whose bytes matched the lock, from a local
path, from an archive URL, or from a git checkout of the locked commit.

Cached files are found by hash without touching the network and are re-hashed before use, so
a changed cache file fails the build (:class:`~slimline.errors.HashMismatch` names package,
file, expected and actual hash).  Downloads run in parallel; builds run a few at a time (one per core).
Every package that ends up without a wheel the target accepts is collected, and one
:class:`NoUsableWheels` lists them all.  What each origin kind does (index, directory, file,
url, git) is in :mod:`slimline.artifacts.origins`; this module orders the two phases.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from slimline.artifacts.build_backend import BuildFailed, unusable_reason
from slimline.artifacts.buildenv import BuildEnvs
from slimline.artifacts.compiled import native_names
from slimline.artifacts.origins import Build, FetchError, Origins, Ready, Unusable
from slimline.artifacts.targetbuild import TargetBuilds
from slimline.artifacts.unpack import archive_names
from slimline.context import Context
from slimline.errors import ExitStatus, SlimlineError
from slimline.plan.model import Plan, Selected
from slimline.report import Reporter
from slimline.target import Target

__all__ = ["FetchError", "NoUsableWheels", "Unusable", "fetch"]

JOBS = 8
# source builds at once: each compiler process is mostly single-threaded, so one per core (at most 4)
BUILD_JOBS = max(1, min(4, os.cpu_count() or 1))
T = TypeVar("T")


class NoUsableWheels(SlimlineError):
    exit_status = ExitStatus.INPUT

    def __init__(self, *, target: Target, packages: tuple[Unusable, ...]) -> None:
        lines = "\n".join(f"  - {p.name} {p.version}: {p.reason}" for p in packages)
        super().__init__(
            f"{len(packages)} package(s) have no wheel the target can use:\n{lines}",
            doing=f"preparing wheels for {target}",
            hint="for each one: pin a version that publishes a wheel for the target, or build the wheel "
            "on a machine like the target (same CPU architecture, Python version and libc) and serve it "
            "from an index the project uses, or choose a base image whose Python, architecture and libc "
            "match this host so slimline can build it here",
        )
        self.target = target
        self.packages = packages


def fetch(
    plan: Plan,
    *,
    ctx: Context,
    default_index: str,
    build_env: BuildEnvs,
    project_root: Path,
    target_builds: TargetBuilds | None = None,
    jobs: int = JOBS,
) -> dict[str, Path]:
    """Canonical package name -> verified wheel path, for every package in ``plan``.

    Raises :class:`~slimline.errors.HashMismatch` for changed bytes,
    :class:`NoUsableWheels` listing every package without a wheel for the target (including
    failed builds), :class:`FetchError`/:class:`~slimline.http.HttpError` when a source cannot
    be reached, and :class:`~slimline.artifacts.buildenv.BuildEnvError` when a backend
    cannot be installed.  With ``target_builds``, what holds code to compile is built for the
    target in its builder (:mod:`slimline.artifacts.targetbuild`); without, on this host.
    """
    origins = Origins(plan=plan, ctx=ctx, default_index=default_index, project_root=project_root)
    ctx.report.step(f"fetching {len(plan.packages)} packages")
    prepared = _prepare_all(plan, origins, jobs=jobs, report=ctx.report, target=target_builds)
    by_name = {sel.name: sel for sel in plan.packages}

    def wheel_for(name: str) -> Path | Unusable:
        return _wheel_for(by_name[name], prepared[name], origins, build_env, target_builds)

    builds = sum(isinstance(p, Build) for p in prepared.values())
    outcomes = _in_parallel(
        _longest_first(prepared), wheel_for, jobs=min(BUILD_JOBS, builds), report=ctx.report
    )
    outcomes = {name: outcomes[name] for name in prepared}  # the plan's order again
    wheels = {name: w for name, w in outcomes.items() if not isinstance(w, Unusable)}
    unusable = [w for w in outcomes.values() if isinstance(w, Unusable)]
    if unusable:
        raise NoUsableWheels(target=plan.target, packages=tuple(sorted(unusable, key=lambda u: u.name)))
    ctx.report.done(f"{len(wheels)} wheels ready")
    return wheels


def _longest_first(prepared: dict[str, Ready | Build | Unusable]) -> list[str]:
    """The names in the order phase 2 starts them: builds first, largest source first (the
    longest build should not start last, behind short ones), then the rest in the plan's order."""
    order = {name: i for i, name in enumerate(prepared)}

    def rank(name: str) -> tuple[int, int, int]:
        p = prepared[name]
        return (0, -p.size, order[name]) if isinstance(p, Build) else (1, 0, order[name])

    return sorted(prepared, key=rank)


def _prepare_all(
    plan: Plan, origins: Origins, *, jobs: int, report: Reporter, target: TargetBuilds | None
) -> dict[str, Ready | Build | Unusable]:
    """Phase 1, in parallel: every package's cache hit, download or source to build, in the
    plan's order.  When some fail, the first failure is raised and the others reported.  With a
    builder (``target``), the first source archive whose entries show code to compile begins
    writing its files (:meth:`TargetBuilds.begin`), while the other downloads finish."""
    by_name = {sel.name: sel for sel in plan.packages}

    def prepare(name: str) -> Ready | Build | Unusable:
        prepared = origins.prepare(by_name[name])
        if target is not None and isinstance(prepared, Build) and prepared.archive is not None:
            archive, filename = prepared.archive
            if native_names(archive_names(archive, filename=filename)):
                target.begin(source=prepared.key, package=name)
        return prepared

    return _in_parallel(list(by_name), prepare, jobs=jobs, report=report)


_WAKE = 0.25  # seconds between looks at a download: the main thread then runs a Ctrl-C handler


def _in_parallel(names: list[str], work: Callable[[str], T], *, jobs: int, report: Reporter) -> dict[str, T]:
    """``work(name)`` for each of ``names`` on ``jobs`` threads, results in ``names``' order.
    Every started piece of work finishes; when some fail, the first failure (in that order) is
    raised and the others are reported."""
    results: dict[str, T] = {}
    errors: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="slimline-fetch") as pool:
        futures = {name: pool.submit(work, name) for name in names}
        for name, future in futures.items():
            while not future.done():  # wakes up: Ctrl-C may reach a worker thread, not this one
                wait([future], timeout=_WAKE)
            try:
                results[name] = future.result()
            except Exception as err:
                errors.append((name, err))
    if errors:
        for name, other in errors[1:]:
            report.detail(f"also failed: {name}: {other}")
        raise errors[0][1]
    return results


def _wheel_for(
    sel: Selected,
    prepared: Ready | Build | Unusable,
    origins: Origins,
    envs: BuildEnvs,
    target: TargetBuilds | None,
) -> Path | Unusable:
    """Phase 2, a few packages at a time (:data:`BUILD_JOBS`): build what must be built, then
    check that the target accepts the wheel; return the wheel, or why the package has none the
    target can use."""
    if isinstance(prepared, Unusable):
        return prepared
    if isinstance(prepared, Build):
        try:
            prepared = origins.build(sel, prepared, envs, target)
        except BuildFailed as err:  # a BuildEnvError (index trouble) is not the package's fault: raised
            if target is not None:
                raise  # the builder's own message says what failed and what usually fixes it
            return Unusable(sel.name, sel.version, f"building it on this host failed: {err.problem}")
    reason = unusable_reason(
        prepared.path.name, origins.plan.target, built_here=prepared.built_here, accepted=origins.accepted
    )
    if reason:
        return Unusable(sel.name, sel.version, reason)
    return prepared.path
