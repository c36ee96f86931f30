"""PEP 517 builds on the host: sdists, path and git dependencies, and the project itself.

Builds run with the project's own backend (``build.ProjectBuilder``) in an isolated
environment that holds only the backend's requirements, one reused per requirement set
(:class:`~slimline.artifacts.buildenv.BuildEnvs`; the names of :mod:`slimline.artifacts.buildenv`
are importable from here too).  A backend failure raises :class:`BuildFailed` with the tail of
its output; a wheel the target cannot use is told by :func:`unusable_reason`.

Finished wheels are kept by content in :mod:`slimline.artifacts.wheelcache`, recorded under a key of
their inputs plus the host that built them (:func:`slimline.artifacts.wheelcache.build_key`).  A wheel
built from a source tree (a path dependency or the project) is keyed by a hash of the tree's
files (:func:`~slimline.artifacts.wheelcache.tree_hash`), so an unchanged tree is not rebuilt, and is
derived from the last one when only modules changed (:mod:`slimline.artifacts.derive`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import build
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from slimline.artifacts import backend_hints, derive
from slimline.artifacts.buildenv import BuildEnv, BuildEnvError, BuildEnvs, SharedWheels, output_tail
from slimline.artifacts.wheelcache import build_key, built_wheel, keep_built, tree_hash
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import ExitStatus, SlimlineError, redact
from slimline.report import progress
from slimline.target import Target

__all__ = [
    "BuildEnv",
    "BuildEnvError",
    "BuildEnvs",
    "BuildFailed",
    "SharedWheels",
    "build_cached",
    "build_project_wheel",
    "build_tree_wheel",
    "build_wheel",
    "unusable_reason",
]

_BACKEND_CONFIG = ("pyproject.toml", "setup.py", "setup.cfg")


class BuildFailed(SlimlineError):
    """The PEP 517 backend failed to build a wheel."""

    exit_status = ExitStatus.BUILD

    def __init__(self, *, what: str, problem: str, output: str = "", hint: str = "") -> None:
        text = f"{problem}\n{output_tail(output)}" if output.strip() else problem
        super().__init__(
            text,
            doing=f"building a wheel of {what}",
            hint=hint
            or "the backend's output is above; a package that needs compilers or system libraries "
            "needs them on this host, or a wheel published for the target",
        )
        self.what = what
        self.output = output_tail(output)


# -- running a backend -------------------------------------------------------------------------


def _runner(
    cmd: Sequence[str],
    cwd: str | None = None,
    extra_environ: Mapping[str, str] | None = None,
    *,
    seen: list[str] | None = None,  # gets the output of each hook that succeeds
) -> None:
    env = {**os.environ, **(extra_environ or {})}
    env.setdefault("SOURCE_DATE_EPOCH", "315532800")  # 1980-01-01: reproducible wheel archives
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=env, capture_output=True, text=True, errors="replace", check=False
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd), proc.stdout, proc.stderr)
    if seen is not None:
        seen.extend((proc.stderr, proc.stdout))


def _backend_output(err: BaseException) -> str:
    inner = getattr(err, "exception", None)
    if isinstance(inner, subprocess.CalledProcessError):
        return f"{inner.stdout or ''}{inner.stderr or ''}"
    return ""


def _dynamic_requires(
    builder: build.ProjectBuilder, env: BuildEnv, source_dir: Path, cache: Cache
) -> list[str]:
    """``get_requires_for_build_wheel``, remembered per environment and backend configuration.

    The answer depends only on the backend and its configuration files, so a rebuild after a
    code change skips one backend subprocess.
    """
    h = hashlib.sha256(env.path.name.encode())
    for name in _BACKEND_CONFIG:
        with contextlib.suppress(FileNotFoundError):
            h.update(name.encode() + b"\0" + (source_dir / name).read_bytes() + b"\0")
    key = h.hexdigest()
    known = cache.read_meta(keys.BUILD_REQUIRES, key)
    if known is not None:
        return list(json.loads(known))
    found = sorted(builder.get_requires_for_build("wheel"))
    cache.write_meta(keys.BUILD_REQUIRES, key, json.dumps(found).encode())
    return found


def build_wheel(source_dir: Path, *, envs: BuildEnvs, out_dir: Path, what: str = "") -> Path:
    """Build a wheel of ``source_dir`` with its own PEP 517 backend; return the wheel's path.

    Raises :class:`BuildFailed` (backend errors, with the tail of its output) or
    :class:`BuildEnvError`.  ``develop`` flags do not matter here: an image gets a real wheel.
    """
    label = what or str(source_dir)
    outputs: list[str] = []
    try:
        backend = build.ProjectBuilder(source_dir)
        env = envs.get(backend.build_system_requires)
        builder = build.ProjectBuilder.from_isolated_env(
            env, source_dir, runner=functools.partial(_runner, seen=outputs)
        )
        with backend_hints.relayed() as caught:  # the backend's, as pyproject_hooks relays them
            envs.ensure(env, _dynamic_requires(builder, env, source_dir, envs.cache))
            wheel = Path(builder.build("wheel", out_dir))
        _report_warnings(label, caught, outputs, envs)
        return wheel
    except build.BuildBackendException as err:
        output = _backend_output(err)
        hint = backend_hints.hint_for(source_dir, output)
        raise BuildFailed(what=label, problem=str(err), output=output, hint=hint) from err
    except build.BuildException as err:
        raise BuildFailed(what=label, problem=str(err)) from err


def _report_warnings(label: str, caught: list[str], outputs: list[str], envs: BuildEnvs) -> None:
    """The backend's warnings (Python warnings relayed, then those in its output): a summary
    step, and with -v each in full."""
    found = backend_hints.warnings_in(outputs, caught=caught)
    if not found:
        return
    envs.report.step(f"{label}: {backend_hints.summary(found)}")
    for block in found:
        for line in block:
            envs.report.detail(f"{label}: {redact(line)}")


# -- built wheels, kept by content ---------------------------------------------------------------


def build_cached(
    source_dir: Path,
    *,
    key: str,
    envs: BuildEnvs,
    cache: Cache,
    what: str,
    package: str = "",
    shared_key: str | None = None,
) -> Path:
    """The wheel recorded under ``key``, else the one ``envs.shared`` has under ``shared_key``
    (default ``key``; one without local paths), else build ``source_dir`` now and record it in
    both."""
    hit = built_wheel(cache, key, package=package or what)
    if hit is not None:
        return hit
    shared_key = shared_key or key
    if envs.shared is not None and (found := envs.shared.find(shared_key, package=package or what)):
        envs.report.detail(f"{what}: wheel from the shared cache")
        return keep_built(cache, found, key=key)
    envs.report.step(f"building {what}")
    with (
        progress(envs.report, f"building {what}"),
        tempfile.TemporaryDirectory(prefix="slimline-wheel-") as out,
    ):
        wheel = build_wheel(source_dir, envs=envs, out_dir=Path(out), what=what)
        kept = keep_built(cache, wheel, key=key)
    if envs.shared is not None:
        envs.shared.keep(shared_key, kept)
    return kept


def build_tree_wheel(source_dir: Path, *, envs: BuildEnvs, cache: Cache, what: str = "") -> Path:
    """Wheel of a local source tree, rebuilt only when the tree's files changed, and derived
    from the previous build without the backend when only copied modules changed
    (:mod:`slimline.artifacts.derive`).  A shared cache knows it by its files alone."""
    known = derive.known(source_dir, cache=cache)
    if known.wheel is not None:
        if known.derived:
            envs.report.detail(
                f"{what or source_dir}: wheel derived from the previous build (only modules changed)"
            )
        return known.wheel
    shared_key = build_key(kind="tree", tree=tree_hash(known.files))
    wheel = build_cached(
        source_dir, key=known.key, envs=envs, cache=cache, what=what or str(source_dir), shared_key=shared_key
    )
    derive.remember(source_dir, known.files, wheel, cache=cache, slot=known.slot)
    return wheel


def build_project_wheel(
    project_root: Path, *, envs: BuildEnvs, cache: Cache, target: Target | None = None
) -> Path:
    """The project's own wheel (package mode), cached by a hash of its source files.

    With ``target``, a wheel the target cannot use raises :class:`BuildFailed`.
    """
    wheel = build_tree_wheel(project_root, envs=envs, cache=cache, what=f"the project in {project_root}")
    if target is not None:
        reason = unusable_reason(wheel.name, target, built_here=True)
        if reason:
            raise BuildFailed(what=f"the project in {project_root}", problem=reason)
    return wheel


# -- target compatibility ------------------------------------------------------------------------


def unusable_reason(
    filename: str, target: Target, *, built_here: bool, accepted: frozenset[Tag] | None = None
) -> str | None:
    """Why the target cannot use the wheel ``filename``, or None when it can.

    ``built_here``: the wheel was built on this host, so a platform wheel also links against
    the host's libc, which must be the target's family and no newer.
    """
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as err:
        return f"{filename} is not a valid wheel file name ({err})"
    ok = accepted if accepted is not None else frozenset(target.tags())
    if not tags & ok:
        shown = ", ".join(sorted(map(str, tags)))
        return f"{filename} has tags {shown}, none of which the target accepts"
    if built_here and any(t.platform != "any" for t in tags):
        libc, version = platform.libc_ver()
        family = "glibc" if libc == "glibc" else "musl"
        if family != target.libc:
            return f"{filename} was built on this host against {family}; the target uses {target.libc}"
        if family == "glibc" and version:
            host = tuple(int(p) for p in version.split(".")[:2])
            if host > target.libc_version:
                return (
                    f"{filename} was built against this host's glibc {version}, newer than the "
                    f"target's {target.libc_version[0]}.{target.libc_version[1]}"
                )
    return None
