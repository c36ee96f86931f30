"""What turns Python sources into ``.pyc`` bytes for a target: the image's own interpreter when
this host can run it, else this interpreter when it is the same CPython X.Y.

Contract of :meth:`Compiler.compile`: for ``path`` (the file's absolute path inside the image) and
its ``source`` bytes, the bytes of a PEP 552 checked-hash ``.pyc`` as the compiling interpreter
writes it (``compile(source, path, "exec", dont_inherit=True, optimize=0)``, then
``_code_to_hash_pyc(code, source_hash(source), checked=True)``, as ``py_compile`` does with
``--invalidation-mode checked-hash``), or None when the source does not compile.

:class:`ImageCompiler` runs the base's interpreter here, under ``qemu-<arch>`` for another
architecture, as one :class:`~slimline.trees.compileserver.Server` process that serves the whole
build, one request at a time (how it is started and spoken to is in
:mod:`slimline.trees.compileserver`).  Its output depends on the base image and the sources only,
so layers it compiles are keyed by the base's digest (:attr:`Compiler.identity`).
:class:`HostCompiler` compiles in this process; its identity is this interpreter's
``sys.version``.  :func:`choose` picks one of them for a target.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import platform
import shutil
import sys
import threading
import weakref
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path

from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.oci.image import Image
from slimline.target import Target
from slimline.trees.compileserver import BytecodeError, Server, pyc_tag

__all__ = ["BytecodeError", "Compiler", "HostCompiler", "ImageCompiler", "choose", "qemu_for"]

_PROBE_FORMAT = "1"  # bump when what a successful probe promises changes

# qemu-user's names for the machines of slimline.target
_QEMU = {"x86_64": "x86_64", "aarch64": "aarch64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "i686": "i386"}  # fmt: skip


class Compiler:
    """Turns sources into ``.pyc`` bytes for one target; safe to call from several threads."""

    identity: str  # everything the bytes depend on besides the sources (part of layer cache keys)
    cache_tag: str  # "cpython-313": the pyc file names' tag
    description: str  # for reports

    def compile(self, path: str, source: bytes) -> bytes | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the compiler holds (idempotent)."""


class HostCompiler(Compiler):
    """This interpreter, in this process: only for a target with the same CPython X.Y."""

    def __init__(self, target: Target) -> None:
        if not host_matches(target):
            raise ValueError(f"this interpreter cannot compile for {target}")
        self.identity = f"host:{sys.implementation.cache_tag}:{sys.version}"
        self.cache_tag = sys.implementation.cache_tag
        self.description = f"this interpreter, CPython {sys.version.split()[0]}"

    def compile(self, path: str, source: bytes) -> bytes | None:
        try:
            code = compile(source, path, "exec", dont_inherit=True, optimize=0)
        except (SyntaxError, ValueError):
            return None
        return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=True))


def host_matches(target: Target) -> bool:
    return sys.implementation.name == "cpython" and sys.version_info[:2] == target.python_version[:2]


def qemu_for(target: Target) -> str | None:
    """The qemu-user emulator on PATH that runs the target's machine code, if any."""
    name = _QEMU.get(target.machine)
    if name is None:
        return None
    return shutil.which(f"qemu-{name}-static") or shutil.which(f"qemu-{name}")


def _runner(target: Target) -> tuple[str, ...] | None:
    """The command prefix that runs a target program here: () natively, qemu, or None.

    qemu's default arm64 CPU emulates pointer authentication with QARMA, which makes code built
    with branch protection (Debian's, from trixie on) about 8x slower: it is switched off (the
    PAC instructions such code uses are hints, which then do nothing; the output is the same)."""
    if platform.machine() == target.machine:
        return ()
    qemu = qemu_for(target)
    if qemu is None:
        return None
    return (qemu, "-cpu", "max,pauth=off") if target.machine == "aarch64" else (qemu,)


class ImageCompiler(Compiler):
    """The base image's interpreter, run here (see :mod:`slimline.trees.compileserver`).  The base is unpacked
    and the interpreter started on the first :meth:`compile` (or by :meth:`start`)."""

    def __init__(
        self, image: Image, target: Target, *, runner: tuple[str, ...], cache: Cache | None = None
    ) -> None:
        self.identity = f"image:{image.digest}:{pyc_tag(target)}"
        self.cache_tag = pyc_tag(target)
        how = f" under {Path(runner[0]).name}" if runner else ""
        self.description = f"the base's CPython {target.python_xy} ({target.interpreter}){how}"
        self._image, self._target, self._runner, self._cache = image, target, runner, cache
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._failed: SlimlineError | None = None  # why it did not start: not tried again
        self._closed = False

    def start(self) -> None:
        with self._lock:
            self._ensure()

    def compile(self, path: str, source: bytes) -> bytes | None:
        with self._lock:
            return self._ensure().compile(path, source)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._server is not None:
                self._server.close()
                self._server = None

    def _ensure(self) -> Server:
        if self._closed:
            raise BytecodeError("the compiler was closed", doing="compiling bytecode")
        if self._failed is not None:
            raise self._failed
        if self._server is None:
            try:
                self._server = Server(self._image, self._target, self._runner, cache=self._cache)
            except OSError as err:
                self._failed = BytecodeError(
                    f"it could not be started: {err}", doing=f"starting the base's {self._target.interpreter}"
                )
                raise self._failed from err
            except SlimlineError as err:  # the base's files, or the interpreter, are not usable
                self._failed = err
                raise
            weakref.finalize(self, self._server.close)
        return self._server


def choose(image: Image, target: Target, *, cache: Cache | None = None, run_image: bool = True) -> Compiler:
    """The compiler for ``target``: the base's interpreter if it runs here, else this one if it is
    the same CPython X.Y, else :class:`BytecodeError` saying both ways.

    ``run_image`` False: never run the base's interpreter on this host (it is code from the
    base image, unsandboxed; the caller allows it only for bases assembled from signed Debian
    packages).

    Whether the base's interpreter runs here is found by starting it (the started compiler is
    returned); a success is remembered in ``cache`` per base digest, host machine and runner, so
    later builds start it only if they have something to compile.
    """
    runner = _runner(target)
    emulator = f"qemu-{_QEMU.get(target.machine, target.machine)}"
    if not run_image:
        reason = "slimline runs only the Python of a debian: base it assembled from signed packages"
    elif runner is None:
        reason = f"it is {target.platform.architecture} code and {emulator} is not installed"
    else:
        compiler = ImageCompiler(image, target, runner=runner, cache=cache)
        key = _probe_key(image, runner)
        if cache is not None and cache.read_meta(keys.BYTECODE_PROBE, key) is not None:
            return compiler
        try:
            compiler.start()
        except (SlimlineError, OSError) as err:
            reason = str(err).replace("\n", " ")
        else:
            if cache is not None:
                cache.write_meta(keys.BYTECODE_PROBE, key, compiler.identity.encode())
            return compiler
    if host_matches(target):
        return HostCompiler(target)
    xy = target.python_xy
    host = f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]}"
    emulate = (
        f"install qemu-user-static ({emulator}) so the base's Python can run here, "
        if runner is None and run_image
        else "use a debian: base, "
        if not run_image
        else ""
    )
    raise BytecodeError(
        f"the base's CPython {xy} cannot run on this host ({reason}), and slimline itself runs on {host}, "
        f"which cannot write bytecode for {xy}",
        doing="choosing how to compile bytecode for the image",
        hint=f"{emulate}run slimline with python{xy}, or set bytecode = false "
        "(the image then sets PYTHONDONTWRITEBYTECODE=1)",
    )


def _probe_key(image: Image, runner: tuple[str, ...]) -> str:
    """What a successful start of the base's interpreter depends on: the base, this machine, how
    it is run."""
    how = [Path(runner[0]).name, *runner[1:]] if runner else []
    return hashlib.sha256(
        json.dumps([_PROBE_FORMAT, image.digest, platform.machine(), how]).encode()
    ).hexdigest()
