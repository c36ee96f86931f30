"""PEP 517 builds on the host: sdists, path and git dependencies, and the project itself.

Builds run with the project's own backend (``build.ProjectBuilder``) in an isolated
environment that holds only the backend's requirements.  Making such an environment costs
seconds, so :class:`BuildEnvs` keeps one per distinct requirement set on disk under the cache
(``<cache>/build-envs/<key>``, key = requirements + host interpreter) and reuses it across
builds and runs.  An environment is complete only once its marker file is written; creation
and top-ups happen under a file lock, so parallel slimline processes share them safely.

Finished wheels are kept by content in :mod:`slimline.artifacts.wheelcache`, recorded under a key of
their inputs plus the host that built them (:func:`slimline.artifacts.wheelcache.build_key`).  A wheel
built from a source tree (a path dependency or the project) is keyed by a hash of the tree's
files (:func:`~slimline.artifacts.wheelcache.tree_hash`), so an unchanged tree is not rebuilt, and is
derived from the last one when only modules changed (:mod:`slimline.artifacts.derive`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import build
import build.env
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from slimline.artifacts import derive
from slimline.artifacts.wheelcache import built_wheel, host_identity, keep_built
from slimline.cache.store import Cache, atomic_write, touch
from slimline.errors import SlimlineError, redact
from slimline.http import BasicAuth, Http
from slimline.report import Quiet, Reporter
from slimline.target import Target

__all__ = [
    "BuildEnv",
    "BuildEnvError",
    "BuildEnvs",
    "BuildFailed",
    "build_cached",
    "build_project_wheel",
    "build_tree_wheel",
    "build_wheel",
    "unusable_reason",
]

ENV_FORMAT = 1
_MARKER = ".slimline-env.json"
_BACKEND_CONFIG = ("pyproject.toml", "setup.py", "setup.cfg")
_TAIL = 3000


class BuildEnvError(SlimlineError):
    """Installing a backend's requirements into a build environment failed."""

    def __init__(self, *, requires: Sequence[str], output: str) -> None:
        super().__init__(
            f"installing the build requirements failed:\n{_tail(output)}",
            doing=f"preparing a build environment for {', '.join(sorted(requires)) or '(nothing)'}",
            hint="check that the index is reachable and has these packages; the pip output is above",
        )
        self.requires = tuple(requires)


class BuildFailed(SlimlineError):
    """The PEP 517 backend failed to build a wheel."""

    def __init__(self, *, what: str, problem: str, output: str = "") -> None:
        text = f"{problem}\n{_tail(output)}" if output.strip() else problem
        super().__init__(
            text,
            doing=f"building a wheel of {what}",
            hint="the backend's output is above; a package that needs compilers or system libraries "
            "needs them on this host, or a wheel published for the target",
        )
        self.what = what
        self.output = _tail(output)


def _tail(text: str) -> str:
    text = redact(text.strip())
    return text if len(text) <= _TAIL else "...\n" + text[-_TAIL:]


# -- build environments ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildEnv:
    """A ready build environment (satisfies ``build.env.IsolatedEnv``)."""

    path: Path
    python_executable: str
    scripts_dir: str
    purelib: str

    def make_extra_environ(self) -> dict[str, str]:
        return {"PATH": os.pathsep.join([self.scripts_dir, os.environ.get("PATH", "")]), "PYTHONPATH": ""}

    def missing(self, requires: Iterable[str]) -> list[str]:
        """The requirements (evaluated for the host) that no installed distribution satisfies."""
        installed = {
            _canon(d.metadata["Name"] or ""): d.version for d in metadata.distributions(path=[self.purelib])
        }
        out: list[str] = []
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                out.append(text)
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            version = installed.get(_canon(req.name))
            if version is None or not req.specifier.contains(version, prereleases=True):
                out.append(text)
        return out


def _canon(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _normalise(requires: Iterable[str]) -> list[str]:
    out = set()
    for text in requires:
        try:
            out.add(str(Requirement(text)))
        except InvalidRequirement:
            out.add(text.strip())
    return sorted(out)


class BuildEnvs:
    """Build environments on disk, one per requirement set; thread-safe, share one per build.

    ``index_url`` (and ``index_auth``) is where backend requirements are installed from; when
    None it is found with :func:`slimline.artifacts.sources.default_index_url` (and its credentials with
    :func:`~slimline.artifacts.sources.credentials_for`) the first time an environment must be made, so
    a build whose environments exist never looks.  The rest of pip's configuration
    (find-links, constraints, certificates) applies as usual.  ``http`` is accepted for
    symmetry with the other stages and not used: pip does its own downloads.
    """

    def __init__(
        self,
        *,
        cache: Cache,
        index_url: str | None = None,
        index_auth: BasicAuth | None = None,
        http: Http | None = None,
        report: Reporter | None = None,
    ) -> None:
        del http
        self.cache = cache
        self.root = cache.root / "build-envs"
        self._index_url = index_url
        self._index_auth = index_auth
        self.report = report or Quiet()
        self._ready: dict[str, BuildEnv] = {}
        self._failed: dict[str, BuildEnvError] = {}  # not retried within one build
        self._lock = threading.Lock()

    @staticmethod
    def key(requires: Iterable[str]) -> str:
        data = {"format": ENV_FORMAT, "requires": _normalise(requires), "host": host_identity()}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]

    def get(self, requires: Iterable[str]) -> BuildEnv:
        """The environment for ``requires``, made (once, then reused) if it does not exist yet."""
        reqs = _normalise(requires)
        key = self.key(reqs)
        with self._lock:
            if key in self._ready:
                return self._ready[key]
            if key in self._failed:
                raise self._failed[key]
            try:
                with self._file_lock(key):
                    env = self._load(key) or self._create(key, reqs)
            except BuildEnvError as err:
                self._failed[key] = err
                raise
            self._ready[key] = env
            return env

    def ensure(self, env: BuildEnv, requires: Iterable[str]) -> None:
        """Install the requirements a backend asked for at build time, if they are missing."""
        wanted = _normalise(requires)
        if not env.missing(wanted):
            return
        with self._lock, self._file_lock(env.path.name):
            missing = env.missing(wanted)
            if missing:
                self.report.detail(f"adding {', '.join(missing)} to the build environment")
                self._pip_install(env, missing)

    @contextlib.contextmanager
    def _file_lock(self, key: str) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{key}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self, key: str) -> BuildEnv | None:
        path = self.root / key
        try:
            data = json.loads((path / _MARKER).read_text())
            env = BuildEnv(path, data["python_executable"], data["scripts_dir"], data["purelib"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not Path(env.python_executable).exists():
            return None
        touch(path / _MARKER)  # used now: `slimline cache prune` keeps it
        return env

    def _create(self, key: str, reqs: list[str]) -> BuildEnv:
        path = self.root / key
        if path.exists():
            shutil.rmtree(path)  # an earlier attempt that never finished: start again
        self.report.step(f"creating a build environment with {', '.join(reqs) or 'nothing'}")
        try:
            # Enter only: on __exit__ the library would delete the environment we mean to keep.
            isolated = build.env.DefaultIsolatedEnv(path=str(path)).__enter__()
            env = BuildEnv(
                path,
                isolated.python_executable,
                str(Path(isolated.python_executable).parent),
                _purelib(isolated.python_executable),
            )
            self._pip_install(env, reqs)
            data = {
                "python_executable": env.python_executable,
                "scripts_dir": env.scripts_dir,
                "purelib": env.purelib,
                "requires": reqs,
            }
            with atomic_write(path / _MARKER) as out:
                out.write(json.dumps(data, indent=1).encode())
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return env

    def _pip_install(self, env: BuildEnv, reqs: Sequence[str]) -> None:
        if not reqs:
            return
        if (Path(env.purelib) / "pip").is_dir():
            cmd = [env.python_executable, "-Im", "pip"]
        else:
            cmd = [sys.executable, "-m", "pip", "--python", env.python_executable]
        cmd += ["install", "--no-input", "--no-warn-script-location", "--disable-pip-version-check", *reqs]
        environ = {**os.environ, "PIP_INDEX_URL": self._index()}
        environ.pop("PYTHONPATH", None)
        if "SSL_CERT_FILE" in environ and "PIP_CERT" not in environ:
            environ["PIP_CERT"] = environ["SSL_CERT_FILE"]  # pip < 24.2 trusts only certifi otherwise
        proc = subprocess.run(cmd, env=environ, capture_output=True, text=True, errors="replace", check=False)
        if proc.returncode != 0:
            raise BuildEnvError(requires=reqs, output=proc.stdout + proc.stderr)

    def _index(self) -> str:
        if self._index_url is None:
            from slimline.artifacts.sources import credentials_for, default_index_url

            self._index_url = default_index_url()
            self._index_auth = self._index_auth or credentials_for("", self._index_url)
        return _with_auth(self._index_url, self._index_auth)


def _purelib(python: str) -> str:
    out = subprocess.run(
        [python, "-Ic", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def _with_auth(url: str, auth: BasicAuth | None) -> str:
    """``url`` with ``auth`` as its user info (pip reads credentials from there); unchanged if it has some."""
    parts = urlsplit(url)
    if auth is None or parts.username is not None:
        return url
    netloc = f"{quote(auth.username, safe='')}:{quote(auth.password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


# -- running a backend -------------------------------------------------------------------------


def _runner(
    cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
) -> None:
    env = {**os.environ, **(extra_environ or {})}
    env.setdefault("SOURCE_DATE_EPOCH", "315532800")  # 1980-01-01: reproducible wheel archives
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=env, capture_output=True, text=True, errors="replace", check=False
    )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd), proc.stdout, proc.stderr)


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
    known = cache.read_meta("build-requires", key)
    if known is not None:
        return list(json.loads(known))
    found = sorted(builder.get_requires_for_build("wheel"))
    cache.write_meta("build-requires", key, json.dumps(found).encode())
    return found


def build_wheel(source_dir: Path, *, envs: BuildEnvs, out_dir: Path, what: str = "") -> Path:
    """Build a wheel of ``source_dir`` with its own PEP 517 backend; return the wheel's path.

    Raises :class:`BuildFailed` (backend errors, with the tail of its output) or
    :class:`BuildEnvError`.  ``develop`` flags do not matter here: an image gets a real wheel.
    """
    label = what or str(source_dir)
    try:
        backend = build.ProjectBuilder(source_dir)
        env = envs.get(backend.build_system_requires)
        builder = build.ProjectBuilder.from_isolated_env(env, source_dir, runner=_runner)
        with warnings.catch_warnings(record=True) as caught:  # backend warnings: verbose output only
            warnings.simplefilter("always")
            envs.ensure(env, _dynamic_requires(builder, env, source_dir, envs.cache))
            wheel = Path(builder.build("wheel", out_dir))
        for warning in caught:
            envs.report.detail(f"{label}: {str(warning.message).strip().splitlines()[0]}")
        return wheel
    except build.BuildBackendException as err:
        raise BuildFailed(what=label, problem=str(err), output=_backend_output(err)) from err
    except build.BuildException as err:
        raise BuildFailed(what=label, problem=str(err)) from err


# -- built wheels, kept by content ---------------------------------------------------------------


def build_cached(
    source_dir: Path, *, key: str, envs: BuildEnvs, cache: Cache, what: str, package: str = ""
) -> Path:
    """The wheel recorded under ``key``, or build ``source_dir`` now and record it."""
    hit = built_wheel(cache, key, package=package or what)
    if hit is not None:
        return hit
    envs.report.step(f"building {what}")
    with tempfile.TemporaryDirectory(prefix="slimline-wheel-") as out:
        wheel = build_wheel(source_dir, envs=envs, out_dir=Path(out), what=what)
        return keep_built(cache, wheel, key=key)


def build_tree_wheel(source_dir: Path, *, envs: BuildEnvs, cache: Cache, what: str = "") -> Path:
    """Wheel of a local source tree, rebuilt only when the tree's files changed, and derived
    from the previous build without the backend when only copied modules changed
    (:mod:`slimline.artifacts.derive`)."""
    known = derive.known(source_dir, cache=cache)
    if known.wheel is not None:
        if known.derived:
            envs.report.detail(
                f"{what or source_dir}: wheel derived from the previous build (only modules changed)"
            )
        return known.wheel
    wheel = build_cached(source_dir, key=known.key, envs=envs, cache=cache, what=what or str(source_dir))
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
