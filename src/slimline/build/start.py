"""The first steps of a build, kept light so that they run before the rest of slimline loads.

Contract of :func:`start`: given the project as read, finds its lock file, resolves the
default index and its build environments, and starts building the project's own wheel (a
PEP 517 subprocess: the slowest step of a code-change rebuild) on a worker thread.  The
caller passes the :class:`Started` value to :func:`slimline.build.image.build` and must call
:meth:`Started.close` (``with start(...)``) so the worker is released on every path.
Importing this module costs a fraction of importing :mod:`slimline.build.image`, which the conductor
imports only after calling :func:`start`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from slimline.artifacts import build_backend, sources
from slimline.context import Context
from slimline.project import locks, pyproject

__all__ = ["Started", "start"]


@dataclass(frozen=True)
class Started:
    project: pyproject.Project
    lock_path: Path
    default_index: str
    envs: build_backend.BuildEnvs
    wheel: Future[Path] | None  # the project's wheel (package mode), being built
    _pool: ThreadPoolExecutor

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start(
    proj: pyproject.Project,
    *,
    index_setting: str | None,
    ctx: Context,
    lock: str | None = None,
    shared: build_backend.SharedWheels | None = None,
) -> Started:
    """Find ``proj``'s lock (``lock``: the lock setting), resolve its default index and start
    its wheel (see the module's contract)."""
    root = proj.root
    lock_path = locks.find(root, setting=lock)
    default_index = sources.default_index_url(setting=index_setting)
    envs = build_backend.BuildEnvs(
        cache=ctx.cache,
        index_url=default_index,
        index_auth=sources.credentials_for("", default_index, given=ctx.credentials),
        report=ctx.report,  # builds and their backends' warnings are part of the build's output
        shared=shared,  # built wheels shared through a registry (slimline.build.sharing)
    )
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slimline-project")
    wheel = (
        pool.submit(build_backend.build_project_wheel, root, envs=envs, cache=ctx.cache)
        if proj.package_mode
        else None
    )
    return Started(proj, lock_path, default_index, envs, wheel, pool)
