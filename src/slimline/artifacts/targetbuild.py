"""PEP 517 builds for the image, inside the builder (:mod:`slimline.base.builder`).

Contract of :meth:`TargetBuilds.build`: the wheel of a source tree, built by its own backend run
by the image's interpreter inside the builder's root file system (:mod:`.sandbox`: no network
unless the project allows it; the tree copied to the fixed path ``/build/src`` so that paths
compiled into the wheel do not depend on the host); kept in the wheel cache under a key of the
caller's inputs and the builder's identity, so a second build builds nothing.  Its zip entries
are dated 1980-01-01 (``SOURCE_DATE_EPOCH``) whatever the build's epoch, so the same source in
the same builder gives the same bytes.  The backend's build requirements come from the
configured index, as with pip: wheels for the *target* (its Python, ABI and platform),
installed by this host's pip into a directory the sandbox reads (``<cache>/target-envs/<key>``),
made once per requirement set.

A failed build raises :class:`~slimline.artifacts.build_backend.BuildFailed` naming the package,
with the compiler's last lines and, when they show a missing header, library or tool and a small
table knows the package (:data:`HINTS`), the ``-dev`` packages that usually fix it (a setup.py
older than Cython 3 is told as such).  The table only feeds hints: nothing is installed by it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from pyproject_hooks import BuildBackendHookCaller

from slimline.artifacts import backend_hints, sandbox, targetenv
from slimline.artifacts.build_backend import BuildFailed
from slimline.artifacts.buildenv import SharedWheels, with_auth
from slimline.artifacts.wheelcache import built_wheel, keep_built
from slimline.base.builder import Builder
from slimline.cache import keys
from slimline.cache.store import atomic_write, touch
from slimline.context import Context
from slimline.http import BasicAuth
from slimline.once import Once
from slimline.project.ignore import is_virtualenv, skip_when_hashing
from slimline.report import progress
from slimline.target import Target

__all__ = ["HINTS", "TargetBuilds"]

FORMAT = 3  # bump when what a target build depends on changes (3: CPPFLAGS=-g0)
SRC, OUT, REQS, HOOKS, CONTROL = "/build/src", "/build/out", "/build/reqs", "/build/hooks", "/build/control"
PYCACHE = "/tmp/.pycache"  # in the sandbox's private /tmp; see _Runner
_DEFAULT_REQUIRES = ["setuptools>=40.8.0"]  # PEP 517's fallback for a project without [build-system]

# package -> the Debian -dev packages its build usually needs (hints only; see the module's contract)
HINTS: Mapping[str, tuple[str, ...]] = {
    "psycopg2": ("libpq-dev",),
    "mysqlclient": ("default-libmysqlclient-dev", "pkg-config"),
    "python-ldap": ("libldap2-dev", "libsasl2-dev"),
    "lxml": ("libxml2-dev", "libxslt1-dev"),
    "pillow": ("libjpeg-dev", "zlib1g-dev"),
    "cffi": ("libffi-dev",),
    "cryptography": ("libssl-dev", "libffi-dev"),
    "pycairo": ("libcairo2-dev",),
    "pygobject": ("libgirepository1.0-dev", "libcairo2-dev"),
    "psycopg": ("libpq-dev",),
    "pyodbc": ("unixodbc-dev",),
    "gssapi": ("libkrb5-dev",),
    "python-magic": ("libmagic1",),
    "pyyaml": ("libyaml-dev",),
    "uwsgi": ("libpcre2-dev",),
}


class TargetBuilds:
    """Builds in one builder, made when the first build needs it (``builder()`` is called once).
    Several builds may run at once, on threads."""

    def __init__(
        self,
        builder: Callable[[], Builder],
        *,
        ctx: Context,
        index_url: str,
        index_auth: BasicAuth | None,
        shared: SharedWheels | None = None,
    ) -> None:
        self._ctx = ctx
        self._index_url, self._index_auth = index_url, index_auth
        self._shared = shared  # built wheels shared through a registry, under the same keys
        self._builder = Once(builder, name="slimline-builder-resolve")
        self._found: dict[str, Once[Path | None]] = {}  # shared-cache lookups, by key
        self._found_lock = threading.Lock()

    @property
    def builder(self) -> Builder:
        return self._builder.get()

    def begin(self, *, source: str, package: str) -> None:
        """Start writing the builder's files on a thread once its packages are resolved (see
        :meth:`prepare`), unless the wheel of ``source`` (its inputs, as :meth:`key` takes them)
        was built before, here or in the shared cache: a source found to hold code to compile
        before it is unpacked (:func:`~slimline.artifacts.compiled.native_names`) is built in it.
        Errors are not raised here: the builds that ask meet them."""

        def run() -> None:
            with contextlib.suppress(Exception):
                key = self.key(source=source)
                built = built_wheel(self._ctx.cache, key, package=package)
                if built is None and self._from_shared(key, package) is None:
                    self.builder.begin()

        threading.Thread(target=run, name="slimline-builder-begin", daemon=True).start()

    def _from_shared(self, key: str, package: str) -> Path | None:
        """The wheel the shared cache holds under ``key``, looked up once per key (an early
        :meth:`begin` and the build itself ask)."""
        if self._shared is None:
            return None
        shared = self._shared
        with self._found_lock:
            once = self._found.setdefault(
                key, Once(lambda: shared.find(key, package=package), name="slimline-shared-wheel")
            )
        return once.get()

    def prepare(self) -> None:
        """Resolve the builder's packages now, on a thread, while the sources to build are still
        downloading; its files are written only when a build needs them (a source may turn out
        to be pure Python, built on this host).  A failure there is raised to every build that
        asks for :attr:`builder`."""
        self._builder.begin()

    @property
    def made(self) -> Builder | None:
        """The builder, if a build has needed it (or :meth:`prepare` resolved it)."""
        return self._builder.made

    def key(self, **parts: str) -> str:
        """The wheel cache key of a target build of ``parts`` (its inputs) in this builder."""
        b = self.builder
        data = {"format": FORMAT, "builder": b.identity, "python": b.python, **parts}
        return keys.key("target-wheel", data)

    def build(self, source: Path, *, key: str, what: str, package: str, released: bool = False) -> Path:
        """The wheel of ``source`` for the target (see the module's contract); ``released``: a
        release from an index (a failure's hint then suggests a newer one)."""
        hit = built_wheel(self._ctx.cache, key, package=package)
        if hit is not None:
            return hit
        if (found := self._from_shared(key, package)) is not None:
            self._ctx.report.detail(f"{what}: wheel for {self.builder.target.platform} from the shared cache")
            return keep_built(self._ctx.cache, found, key=key)
        wheel = self._build(source, key=key, what=what, package=package, released=released)
        if self._shared is not None:
            self._shared.keep(key, wheel)
        return wheel

    def _build(self, source: Path, *, key: str, what: str, package: str, released: bool) -> Path:
        b = self.builder
        b.begin()  # its files are written while this build copies its source, installs its requirements
        task = f"building {what} for {b.target.platform}"
        with tempfile.TemporaryDirectory(prefix="slimline-target-") as tmp:
            src, out = Path(tmp, "src"), Path(tmp, "out")
            shutil.copytree(source, src, symlinks=True, ignore=_ignore(source))
            out.mkdir()
            system = _build_system(src)
            reqs = self._requirements(b, system[0])
            _ = b.root  # written once, by the first build to ask: this build starts when it is there
            self._ctx.report.step(f"building {what} for {b.target.platform} in the builder")
            with progress(self._ctx.report, task):
                name = self._run_backend(
                    b, src, out, system, reqs, what=what, package=package, released=released
                )
            return keep_built(self._ctx.cache, out / name, key=key)

    def _run_backend(
        self,
        b: Builder,
        src: Path,
        out: Path,
        system: tuple[list[str], str, list[str] | None],
        reqs: Path,
        *,
        what: str,
        package: str,
        released: bool,
    ) -> str:
        """Build the wheel of ``src`` with its ``[build-system]`` (``system``: :func:`_build_system`),
        its requirements installed in ``reqs``; the wheel's file name in ``out``."""
        requires, backend, backend_path = system
        runner = _Runner(b, src=src, out=out, reqs=reqs, what=what, package=package)
        runner.released = released
        caller = BuildBackendHookCaller(
            str(src), backend, backend_path, runner=runner, python_executable=b.python
        )
        with backend_hints.relayed() as caught:  # the backend's: verbose output only
            extra = caller.get_requires_for_build_wheel()
            if set(extra) - set(requires):
                runner.reqs = self._requirements(b, [*requires, *extra])
            name = caller.build_wheel(OUT)
        for message in caught:
            self._ctx.report.detail(f"{what}: {message.strip().splitlines()[0]}")
        return name

    def _requirements(self, b: Builder, requires: Sequence[str]) -> Path:
        """A directory holding ``requires`` (and what they need) as wheels for the target."""
        reqs = sorted(set(requires))
        path = (
            self._ctx.cache.root / keys.TARGET_ENVS / keys.key("target-env", FORMAT, reqs, _target_id(b))[:32]
        )
        if (path / targetenv.COMPLETE).is_file():
            touch(path / targetenv.COMPLETE)  # used now (slimline cache prune)
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        family = keys.key("target-env-names", FORMAT, targetenv.names(reqs), _target_id(b))[:32]
        # one environment made at a time for a target and set of names: a build that asks for
        # the same names waits, then may be served by it (targetenv's contract)
        with _file_lock(path.parent / f"{family}.lock"):
            if (path / targetenv.COMPLETE).is_file():
                return path
            served = targetenv.reusable(path.parent, reqs, _target_id(b))
            if served is not None:
                touch(served / targetenv.COMPLETE)
                self._ctx.report.detail(
                    f"build requirements for {b.target.platform}: {', '.join(reqs)}: installed already"
                )
                return served
            self._install(b, reqs, path)
        return path

    def _install(self, b: Builder, reqs: list[str], dest: Path) -> None:
        self._ctx.report.detail(f"build requirements for {b.target.platform}: {', '.join(reqs) or 'nothing'}")
        shutil.rmtree(dest, ignore_errors=True)
        if reqs:
            self._pip(b.target, reqs, dest)
        else:  # requires = [] (an in-tree backend): pip refuses to install nothing
            dest.mkdir(parents=True)
        # .pth files (setuptools' distutils shim) are read for a site directory only: make it one
        (dest / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({REQS!r})\n")
        with atomic_write(dest / targetenv.COMPLETE) as f:
            f.write(targetenv.record(reqs, _target_id(b)))

    def _pip(self, t: Target, reqs: list[str], dest: Path) -> None:
        """``reqs`` (and what they need) installed by pip into ``dest``, as wheels for ``t``."""
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input", "--disable-pip-version-check"]
        cmd += ["--target", str(dest), "--only-binary=:all:", "--implementation", "cp"]
        # --no-compile: the hooks read bytecode from their own cache only (PYTHONPYCACHEPREFIX,
        # see _Runner), never from the environment's __pycache__
        cmd += ["--python-version", t.python_xy, "--no-compile"]
        for abi in (f"cp{t.python_xy.replace('.', '')}", "abi3", "none"):
            cmd += ["--abi", abi]
        for plat in sorted({tag.platform for tag in t.tags() if tag.platform != "any"}):
            cmd += ["--platform", plat]
        env = {**os.environ, "PIP_INDEX_URL": with_auth(self._index_url, self._index_auth)}
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            [*cmd, *reqs], env=env, capture_output=True, text=True, errors="replace", check=False
        )
        if proc.returncode != 0:
            shutil.rmtree(dest, ignore_errors=True)
            raise BuildFailed(
                what=f"the build requirements {', '.join(reqs)}",
                problem=f"pip could not install them as wheels for {t.platform} Python {t.python_xy}",
                output=proc.stdout + proc.stderr,
            )


class _Runner:
    """pyproject_hooks' subprocess runner: the hook runs in the sandbox, paths mapped inside.

    The hooks of one build share a bytecode cache (``pycache`` beside ``out``): the second
    imports the standard library and the backend without compiling them again (the builder's
    root is read-only, and Debian ships no ``.pyc``).  It is never shared between builds: a build
    runs its package's code, which must not reach another package's wheel."""

    def __init__(self, b: Builder, *, src: Path, out: Path, reqs: Path, what: str, package: str) -> None:
        self.b, self.src, self.out, self.reqs = b, src, out, reqs
        self.pycache = out.parent / "pycache"
        self.pycache.mkdir(exist_ok=True)
        self.what, self.package = what, package
        self.released = False  # a release from an index (see TargetBuilds.build)

    def __call__(
        self, cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        _, script, hook, control = cmd
        env = {**_ENVIRONMENT, **_inside(extra_environ or {}, self.src)}
        proc = sandbox.run(
            self.b.root,
            [self.b.python, f"{HOOKS}/{Path(script).name}", hook, CONTROL],
            arch=self.b.target.platform.architecture,
            binds={SRC: self.src, OUT: self.out, CONTROL: Path(control), PYCACHE: self.pycache},
            ro_binds={REQS: self.reqs, HOOKS: Path(script).parent},
            cwd=SRC,
            env=env,
            network=self.b.network,
        )
        if proc.returncode != 0:
            raise BuildFailed(
                what=self.what,
                problem=_problem(self.package, hook, proc.stdout),
                output=proc.stdout,
                hint=_hint(self.package if self.released else "", self.b.target.python_xy),
            )


def _hint(package: str, python_xy: str) -> str:
    """What to do when a build in the builder failed (the builder is no copy of this host: what
    a build needs there is named in ``[tool.slimline.debian] build-packages``); ``package`` is
    "" for a source tree that is no release (the project, a path or git dependency)."""
    text = (
        "the backend's output is above. A build that needs C libraries or tools gets them with "
        '[tool.slimline.debian] build-packages = ["libfoo-dev", ...]'
    )
    if not package:
        return text
    return (
        f"{text}; a release older than Python {python_xy} often does not compile for it: update "
        f"it (poetry update {package}) to one that does, or that has a wheel for it"
    )


def _problem(package: str, hook: str, output: str) -> str:
    """What failed, and the cause when the output shows a known one: a setup.py older than the
    Cython 3 its unpinned build requirement installs, or (with :data:`HINTS`) a missing header,
    library or tool that the table's ``-dev`` packages provide."""
    text = f"its build backend failed ({hook}) in the builder"
    if _CYTHON3.search(output):
        return f"{text}: its setup.py predates Cython 3, which its build requirements now install"
    fix = HINTS.get(package.lower())
    if fix and _MISSING.search(output):
        text += f"; it usually needs [tool.slimline.debian] build-packages = {json.dumps(list(fix))}"
    return text


_CYTHON3 = re.compile(r"has no attribute 'cython_sources'")  # PyYAML 6.0 and others of its time
_MISSING = re.compile(r"No such file or directory|cannot find -l|not found|command not found")


# Built wheels do not depend on the build's time: every wheel built here carries 1980-01-01 (the
# first time a zip can hold), so dependency layers keep their digests across commits.  They hold
# no debug information (smaller, faster to compile): Debian's Python asks for ``-g`` in the
# CFLAGS it gives setuptools, which puts CPPFLAGS after them (the last -g wins).  Not CFLAGS:
# recent setuptools lets it replace Python's flags (-O2, -DNDEBUG, -fwrapv ...), not add to them.
_ENVIRONMENT = {
    "CPPFLAGS": "-g0",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONPATH": REQS,
    "PYTHONPYCACHEPREFIX": PYCACHE,
    "PYTHONHASHSEED": "0",
    "SOURCE_DATE_EPOCH": "315532800",
    "CC": "gcc",
    "CXX": "g++",
    "QEMU_CPU": "max,pauth=off",  # read by qemu-user only: its default pointer authentication is slow
}


def _inside(environ: Mapping[str, str], src: Path) -> dict[str, str]:
    """pyproject_hooks' variables with the host's source path replaced by the sandbox's."""
    return {k: v.replace(str(src), SRC) for k, v in environ.items()}


def _build_system(src: Path) -> tuple[list[str], str, list[str] | None]:
    """``[build-system]``: requirements, backend and backend path, with PEP 517's defaults."""
    try:
        data = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except tomllib.TOMLDecodeError as err:
        raise BuildFailed(what=str(src.name), problem=f"pyproject.toml is not valid TOML: {err}") from err
    system = data.get("build-system", {})
    requires = system.get("requires", _DEFAULT_REQUIRES)
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    path = system.get("backend-path")
    return [str(r) for r in requires], str(backend), [str(p) for p in path] if path else None


def _target_id(b: Builder) -> list[str]:
    t = b.target
    return [str(t.platform), t.python_xy, t.libc, ".".join(map(str, t.libc_version))]


def _ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    """What of a source tree is not copied into the builder: what its hash leaves out too."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        top = Path(directory) == root
        dirs = [n for n in names if Path(directory, n).is_dir()]
        return {n for n in dirs if skip_when_hashing(n, top=top) or is_virtualenv(Path(directory, n))}

    return ignore


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
