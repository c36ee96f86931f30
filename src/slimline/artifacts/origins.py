"""Each origin's way to a wheel: what :func:`slimline.artifacts.fetch.fetch` does per package.

Contract of :meth:`Origins.prepare` (safe to run for several packages at once): for one
selected package it returns a :class:`Ready` wheel (found in the cache by hash, or downloaded
and matched against the lock's sha256), a :class:`Build` (a source to build on this host, with
the key its wheel is kept under), or :class:`Unusable` (the lock offers nothing to build).  It
raises :class:`FetchError` when a source cannot be obtained.  By origin kind:

* ``index``: the locked wheel, or the locked sdist to build;
* ``directory``: the local tree, built and cached by a hash of its files;
* ``file`` and ``url``: the file (a wheel, or an archive to build from), used only when its
  bytes match a hash the lock lists for it: without one it is refused unless the package is
  allowed ``unverified`` (a warning is reported), and an ``http://`` URL is refused unless it
  is allowed ``plain-http`` (:attr:`~slimline.plan.model.Selected.allow`); its name (the
  lock's, else the URL's) passes :mod:`slimline.artifacts.filenames` before any use;
* ``git``: a checkout of exactly the locked commit (:func:`checkout_git`).

:meth:`Origins.build` (one at a time) builds a :class:`Build` into a cached wheel.  Archives
are unpacked by :func:`slimline.artifacts.unpack.unpack_archive`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from slimline.artifacts.build_backend import build_cached, build_tree_wheel, unusable_reason
from slimline.artifacts.buildenv import BuildEnvs
from slimline.artifacts.compiled import native_sources, pure
from slimline.artifacts.filenames import archive_name, wheel_name
from slimline.artifacts.gitcheckout import FetchError, checkout_git
from slimline.artifacts.index import Index
from slimline.artifacts.sources import credentials_for
from slimline.artifacts.targetbuild import TargetBuilds
from slimline.artifacts.unpack import unpack_archive
from slimline.artifacts.wheelcache import (
    build_key,
    built_wheel,
    named_wheel,
    store_wheel,
    tree_files,
    tree_hash,
)
from slimline.context import Context
from slimline.errors import HashMismatch, UnsafePath, redact
from slimline.plan.model import Artifact, Plan, Selected

__all__ = ["Build", "FetchError", "Origins", "Ready", "Unusable", "checkout_git"]


@dataclass(frozen=True, slots=True)
class Unusable:
    """A package the target cannot get a wheel for, and why."""

    name: str
    version: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ready:
    """A verified wheel in the cache."""

    path: Path
    built_here: bool  # built on this host (now or earlier): its libc must suit the target too


@dataclass(frozen=True, slots=True)
class Build:
    """Source to build on this host.

    ``tree``: a local directory, cached by its files.  Otherwise ``prepare`` makes the source
    tree inside the temp dir it is given, and the wheel is cached under ``key``.  ``size``: the
    source archive's bytes when known (0 otherwise), a guess at how long the build takes: the
    builds start largest first, so the longest is not left to start last.
    """

    key: str = ""
    prepare: Callable[[Path], Path] | None = None
    tree: Path | None = None
    size: int = 0
    archive: tuple[Path, str] | None = None  # the source archive and its file name, when it is one


class Origins:
    """Prepares and builds the packages of one plan (see the module's contract)."""

    def __init__(
        self,
        *,
        plan: Plan,
        ctx: Context,
        default_index: str,
        project_root: Path,
    ) -> None:
        self.plan = plan
        self.cache = ctx.cache
        self.http = ctx.http
        self.default_index = default_index
        self.project_root = project_root
        self.report = ctx.report
        self.credentials = ctx.credentials
        self.index = Index(http=ctx.http)
        self.accepted = frozenset(plan.target.tags())

    # -- phase 1, in parallel: cache hits, downloads ------------------------------------------

    def prepare(self, sel: Selected) -> Ready | Build | Unusable:
        """What ``sel``'s origin gives: a wheel, a source to build, or why there is none."""
        kind = sel.origin.kind
        if kind == "index":
            return self._from_index(sel)
        if kind == "directory":
            return Build(tree=self._local_path(sel))
        if kind == "file":
            return self._from_file(sel)
        if kind == "url":
            return self._from_url(sel)
        return self._from_git(sel)

    def _from_index(self, sel: Selected) -> Ready | Build | Unusable:
        art = sel.artifact
        if art is None:
            return Unusable(
                sel.name, sel.version, "the lock has no wheel for the target and no sdist to build"
            )
        if art.kind == "wheel":
            reason = unusable_reason(art.filename, self.plan.target, built_here=False, accepted=self.accepted)
            if reason:
                return Unusable(
                    sel.name, sel.version, f"the selected wheel does not fit: {reason}, and no sdist"
                )
            hit = named_wheel(self.cache, art.sha256, art.filename, package=sel.name)
            if hit is None:
                hit = store_wheel(self.cache, self._blob(sel), art.sha256, art.filename)
            return Ready(hit, built_here=False)
        archive_name(art.filename, what=f"preparing {sel.name} {sel.version}")
        key = build_key(kind="sdist", sha256=art.sha256)
        built = self._host_built(key, sel)
        if built is not None:
            return built
        blob = self._blob(sel)
        return Build(
            key=key,
            prepare=lambda tmp: unpack_archive(blob, tmp, filename=art.filename),
            size=blob.stat().st_size,
            archive=(blob, art.filename),
        )

    def _host_built(self, key: str, sel: Selected) -> Ready | None:
        """The wheel this host built earlier under ``key``, if it is pure Python (it runs on any
        target); a platform wheel is left to :meth:`build`, which decides where it is built."""
        hit = built_wheel(self.cache, key, package=sel.name)
        return Ready(hit, built_here=True) if hit is not None and pure(hit.name) else None

    def _blob(self, sel: Selected) -> Path:
        """The locked file of an index package: from the cache, else downloaded and verified."""
        art = sel.artifact
        assert art is not None
        hit = self.cache.verified_blob(art.sha256, what=art.filename, package=sel.name)
        if hit is not None:
            return hit
        index_url = sel.origin.url or self.default_index
        auth = credentials_for(sel.origin.name, index_url, given=self.credentials)
        entry = self.index.find(sel.name, art.filename, index_url=index_url, auth=auth)
        if entry is None:
            raise FetchError(
                f"the index does not list {art.filename}",
                doing=f"downloading {sel.name} {sel.version} from {redact(index_url)}",
                hint="the file was removed or the lock was made against another index; re-lock (poetry lock)",
            )
        if entry.yanked:
            self.report.detail(f"{art.filename} is yanked on the index; using it because the lock pins it")
        same_host = (
            urlsplit(entry.url).netloc.rpartition("@")[2] == urlsplit(index_url).netloc.rpartition("@")[2]
        )
        file_auth = auth if same_host else credentials_for("", entry.url, given=self.credentials)
        self.report.detail(f"downloading {art.filename}")
        return self.http.download(
            entry.url,
            cache=self.cache,
            sha256=art.sha256,
            what=art.filename,
            package=sel.name,
            auth=file_auth,
        )

    def _local_path(self, sel: Selected) -> Path:
        path = Path(sel.origin.url).expanduser()
        if not path.is_absolute():
            path = self.project_root / path
        if not path.exists():
            raise FetchError(
                f"{path} does not exist",
                doing=f"reading the path dependency {sel.name}",
                hint="fix the path in pyproject.toml and re-lock",
            )
        return path

    def _from_file(self, sel: Selected) -> Ready | Build:
        path = self._local_path(sel)
        doing = f"reading {sel.name} {sel.version} from {path}"
        expected = self._expected(sel, doing=doing, source=str(path))
        with path.open("rb") as stream:
            digest, _ = self.cache.put_stream(
                stream, expected=_one(expected), what=_what(expected, path.name), package=sel.name
            )
        filename = _matched(sel, expected, digest, doing=doing, fallback=path.name)
        return self._wheel_or_build(sel, self.cache.blob_path(digest), digest, filename)

    def _from_url(self, sel: Selected) -> Ready | Build:
        url = sel.origin.url
        doing = f"fetching {sel.name} {sel.version} from {redact(url)}"
        if urlsplit(url).scheme.lower() == "http" and "plain-http" not in sel.allow:
            raise FetchError(
                "its URL uses plain HTTP, whose bytes and credentials anyone on the way can read or change",
                doing=doing,
                hint=f"use an https:// URL, or if the network is yours, allow it for this package: "
                f'[tool.slimline] plain-http = ["{sel.name}"]',
            )
        expected = self._expected(sel, doing=doing, source=redact(url))
        fallback = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        blob = self.http.download(
            url,
            cache=self.cache,
            sha256=_one(expected),
            what=_what(expected, fallback),
            package=sel.name,
            auth=credentials_for(sel.origin.name, url, given=self.credentials),
        )
        filename = _matched(sel, expected, blob.name, doing=doing, fallback=fallback)
        return self._wheel_or_build(sel, blob, blob.name, filename)

    def _expected(self, sel: Selected, *, doing: str, source: str) -> tuple[Artifact, ...]:
        """The lock's files whose hash the bytes of a file or url dependency must have; empty
        only when the user allowed this package to go unchecked (with a warning)."""
        expected = (sel.artifact,) if sel.artifact is not None else sel.files
        if expected:
            return expected
        if "unverified" not in sel.allow:
            raise FetchError(
                "the lock records no hash for it, so slimline cannot check its bytes",
                doing=doing,
                hint="re-lock with a Poetry that records file hashes (poetry lock), or accept its bytes "
                f'unchecked: [tool.slimline] unverified = ["{sel.name}"]',
            )
        self.report.step(
            f"warning: installing {sel.name} {sel.version} from {source} without checking its bytes: "
            "the lock has no hash for it (tool.slimline.unverified)"
        )
        return ()

    def _wheel_or_build(self, sel: Selected, blob: Path, digest: str, filename: str) -> Ready | Build:
        if filename.endswith(".whl"):
            return Ready(store_wheel(self.cache, blob, digest, filename), built_here=False)
        sub = sel.origin.subdirectory
        key = build_key(kind="archive", sha256=digest, subdirectory=sub)
        hit = self._host_built(key, sel)
        if hit is not None:
            return hit

        def prepare(tmp: Path) -> Path:
            return _inside(unpack_archive(blob, tmp, filename=filename), sub, what=filename)

        return Build(key=key, prepare=prepare, archive=None if sub else (blob, filename))

    def _from_git(self, sel: Selected) -> Ready | Build:
        origin = sel.origin
        if not origin.resolved:
            raise FetchError(
                "the lock records no resolved commit for it",
                doing=f"preparing the git dependency {sel.name}",
                hint="re-lock (poetry lock) so that the lock pins the commit",
            )
        url = _git_url(origin.url, self.project_root)
        key = build_key(kind="git", url=redact(url), commit=origin.resolved, subdirectory=origin.subdirectory)
        hit = self._host_built(key, sel)
        if hit is not None:
            return hit

        def prepare(tmp: Path) -> Path:
            root = checkout_git(url, commit=origin.resolved, dest=tmp / "checkout")
            return _inside(root, origin.subdirectory, what=f"the git dependency {sel.name}")

        return Build(key=key, prepare=prepare)

    # -- phase 2, one at a time: builds -----------------------------------------------------------

    def build(self, sel: Selected, todo: Build, envs: BuildEnvs, target: TargetBuilds | None) -> Ready:
        """Build ``todo`` into a cached wheel (raises ``BuildFailed``, ``BuildEnvError``), where
        :meth:`_placed` decides."""
        what = f"{sel.name} {sel.version}"
        if todo.tree is not None:
            tree = todo.tree
            key = "tree:" + tree_hash(tree_files(tree, cache=self.cache))
            return self._placed(
                sel, tree, key, target, lambda: build_tree_wheel(tree, envs=envs, cache=self.cache, what=what)
            )
        assert todo.prepare is not None
        with tempfile.TemporaryDirectory(prefix="slimline-src-") as tmp:
            source = todo.prepare(Path(tmp))
            on_host = partial(build_cached, source, key=todo.key, envs=envs, cache=self.cache, what=what)
            return self._placed(sel, source, todo.key, target, partial(on_host, package=sel.name))

    def _placed(
        self, sel: Selected, source: Path, key: str, target: TargetBuilds | None, on_host: Callable[[], Path]
    ) -> Ready:
        """The wheel of ``source``: built in the builder for the target (``target``) when the source
        holds code to compile, or when this host made a wheel that is not pure Python; else the
        one this host builds (``on_host``), as without a builder."""
        if target is None:
            return Ready(on_host(), built_here=True)
        if not native_sources(source):
            wheel = on_host()
            if pure(wheel.name):
                return Ready(wheel, built_here=True)
        built = target.build(
            source,
            key=target.key(source=key),
            what=f"{sel.name} {sel.version}",
            package=sel.name,
            released=sel.origin.kind in ("index", "url"),
        )
        return Ready(built, built_here=False)  # built for the target: its tags say where it runs


def _one(expected: tuple[Artifact, ...]) -> str | None:
    """The hash to check while streaming: the only one there is (several are checked after)."""
    return expected[0].sha256 if len(expected) == 1 else None


def _what(expected: tuple[Artifact, ...], fallback: str) -> str:
    return expected[0].filename if len(expected) == 1 else fallback


def _matched(sel: Selected, expected: tuple[Artifact, ...], digest: str, *, doing: str, fallback: str) -> str:
    """The checked file name of the bytes with ``digest``: the lock's name for the file whose
    hash they match (:class:`HashMismatch` when none does), or ``fallback`` when nothing was
    expected.  Raises :class:`BadFileName` when the name is neither a wheel's nor an archive's."""
    names = [a.filename for a in expected if a.sha256 == digest]
    if expected and not names:
        raise HashMismatch(
            package=sel.name,
            what=fallback,
            expected=" or ".join(f"sha256:{a.sha256}" for a in expected),
            actual=f"sha256:{digest}",
            doing=doing,
        )
    name = names[0] if names else fallback
    if name.endswith(".whl"):
        return wheel_name(name, what=doing)
    return archive_name(name, what=doing)


def _git_url(url: str, project_root: Path) -> str:
    if "://" in url or url.startswith("git@") or Path(url).is_absolute():
        return url
    return str((project_root / url).resolve())


def _inside(root: Path, sub: str, *, what: str) -> Path:
    if not sub:
        return root
    rel = PurePosixPath(sub)
    if rel.is_absolute() or ".." in rel.parts:
        raise UnsafePath(
            path=sub, archive=what, reason="the subdirectory the lock names climbs out of the source"
        )
    path = root / rel
    if not path.is_dir():
        raise FetchError(
            f"it has no subdirectory {sub!r}", doing=f"preparing {what}", hint="fix it and re-lock"
        )
    return path
