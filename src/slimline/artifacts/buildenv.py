"""Build environments for PEP 517 backends, made once per requirement set and reused.

Making an isolated environment costs seconds, so :class:`BuildEnvs` keeps one per distinct
requirement set on disk under the cache (``<cache>/build-envs/<key>``, key = requirements +
host interpreter) and reuses it across builds and runs.  Contract: an environment is complete
only once its marker file is written; creation and top-ups happen under a file lock, so
parallel slimline processes share them safely.  An environment that could not be made raises
:class:`BuildEnvError` and is not tried again within one :class:`BuildEnvs`.  Backend
requirements are installed by pip (this host's, or the environment's own), from the index
named at construction or else the default one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import build.env
from packaging.requirements import InvalidRequirement, Requirement

from slimline.artifacts.wheelcache import host_identity
from slimline.cache import keys
from slimline.cache.store import Cache, atomic_write, touch
from slimline.errors import ExitStatus, SlimlineError, redact
from slimline.http import BasicAuth
from slimline.report import Quiet, Reporter

__all__ = ["ENV_FORMAT", "BuildEnv", "BuildEnvError", "BuildEnvs", "SharedWheels", "output_tail"]


class SharedWheels(Protocol):
    """Built wheels shared beyond this machine (a registry: see ``slimline.build.sharing``).

    ``key`` is the key a build's inputs give (without local paths); :meth:`find` returns the
    wheel recorded under it, verified and stored in the local cache, or None (never raises for
    a record it cannot use); :meth:`keep` records a wheel just built (nothing when read-only)."""

    def find(self, key: str, *, package: str) -> Path | None: ...
    def keep(self, key: str, wheel: Path) -> None: ...


ENV_FORMAT = 1
_MARKER = ".slimline-env.json"
_TAIL = 3000


class BuildEnvError(SlimlineError):
    """Installing a backend's requirements into a build environment failed."""

    exit_status = ExitStatus.BUILD

    def __init__(self, *, requires: Sequence[str], output: str) -> None:
        super().__init__(
            f"installing the build requirements failed:\n{output_tail(output)}",
            doing=f"preparing a build environment for {', '.join(sorted(requires)) or '(nothing)'}",
            hint="check that the index is reachable and has these packages; the pip output is above",
        )
        self.requires = tuple(requires)


def output_tail(text: str) -> str:
    """The end of a tool's output, with credentials redacted: what an error message shows."""
    text = redact(text.strip())
    return text if len(text) <= _TAIL else "...\n" + text[-_TAIL:]


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
    (find-links, constraints, certificates) applies as usual; pip does its own downloads.
    """

    def __init__(
        self,
        *,
        cache: Cache,
        index_url: str | None = None,
        index_auth: BasicAuth | None = None,
        report: Reporter | None = None,
        shared: SharedWheels | None = None,
    ) -> None:
        self.cache = cache
        self.shared = shared  # built wheels are looked up there before a build, and kept there after
        self.root = cache.root / keys.BUILD_ENVS
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
        # --no-compile: the environment stays writable, so Python compiles what a backend
        # imports when it first does: a fraction of what pip would compile (0.6 s of a cold build)
        cmd += ["install", "--no-input", "--no-warn-script-location", "--disable-pip-version-check"]
        cmd += ["--no-compile", *reqs]
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
        return with_auth(self._index_url, self._index_auth)


def _purelib(python: str) -> str:
    out = subprocess.run(
        [python, "-Ic", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def with_auth(url: str, auth: BasicAuth | None) -> str:
    """``url`` with ``auth`` as its user info (pip reads credentials from there); unchanged if it has some."""
    parts = urlsplit(url)
    if auth is None or parts.username is not None:
        return url
    netloc = f"{quote(auth.username, safe='')}:{quote(auth.password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
