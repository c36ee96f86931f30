"""What turns Python sources into ``.pyc`` bytes for a target: the image's own interpreter when
this host can run it, else this interpreter when it is the same CPython X.Y.

Contract of :meth:`Compiler.compile`: for ``path`` (the file's absolute path inside the image) and
its ``source`` bytes, the bytes of a PEP 552 checked-hash ``.pyc`` as the compiling interpreter
writes it (``compile(source, path, "exec", dont_inherit=True, optimize=0)``, then
``_code_to_hash_pyc(code, source_hash(source), checked=True)``, as ``py_compile`` does with
``--invalidation-mode checked-hash``), or None when the source does not compile.

:class:`ImageCompiler` unpacks the base (:mod:`slimline.trees.rootfs`), once per base into the cache
(else into a private temporary directory), and runs its interpreter through the image's own
dynamic loader (found from the interpreter's ``PT_INTERP``), under ``qemu-<arch>`` for another
architecture, with an empty environment but ``PYTHONHASHSEED=0``.  One process serves the
whole build, over its stdin and stdout (framing below), one request at a time.  Its output
depends on the base image and the sources only, so layers it compiles are keyed by the base's
digest (:attr:`Compiler.identity`).
:class:`HostCompiler` compiles in this process; its identity is this interpreter's
``sys.version``.

Framing: request ``>II`` (path length, source length) + UTF-8 path + source; reply one status
byte (``0`` pyc, ``1`` does not compile, ``2`` error) + ``>I`` length + payload (pyc bytes or the
error's text).  The server first sends one reply holding ``prefix NUL cache_tag NUL X.Y.Z``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import weakref
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO

from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.oci.image import Image
from slimline.target import Target
from slimline.trees import rootfs

__all__ = ["BytecodeError", "Compiler", "HostCompiler", "ImageCompiler", "choose", "qemu_for"]

_PROBE_FORMAT = "1"  # bump when what a successful probe promises changes
_EXIT_TIMEOUT = 10.0  # seconds a stopping interpreter gets before it is killed

# runs inside the image's interpreter: only the standard library, any CPython >= 3.7
_SERVER = r"""
import sys, importlib.util
from importlib._bootstrap_external import _code_to_hash_pyc
src, dst = sys.stdin.buffer, sys.stdout.buffer
def reply(status, data):
    dst.write(bytes([status]) + len(data).to_bytes(4, "big") + data)
    dst.flush()
def exactly(n):
    data = src.read(n)
    if len(data) != n:
        raise SystemExit(0)
    return data
v = sys.version_info
reply(0, ("%s\0%s\0%d.%d.%d" % (sys.prefix, sys.implementation.cache_tag, v[0], v[1], v[2])).encode())
while True:
    head = src.read(8)
    if not head:
        break
    if len(head) != 8:
        raise SystemExit(0)
    path = exactly(int.from_bytes(head[:4], "big")).decode("utf-8", "surrogateescape")
    source = exactly(int.from_bytes(head[4:], "big"))
    try:
        code = compile(source, path, "exec", dont_inherit=True, optimize=0)
    except (SyntaxError, ValueError):
        reply(1, b"")
        continue
    except Exception as err:
        reply(2, ("%s: %s" % (type(err).__name__, err)).encode("utf-8", "replace"))
        continue
    data = bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=True))
    del code
    reply(0, data)
"""

# qemu-user's names for the machines of slimline.target
_QEMU = {"x86_64": "x86_64", "aarch64": "aarch64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "i686": "i386"}  # fmt: skip


class BytecodeError(SlimlineError):
    pass


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
    """The base image's interpreter, run here (see the module's contract).  The base is unpacked
    and the interpreter started on the first :meth:`compile` (or by :meth:`start`)."""

    def __init__(
        self, image: Image, target: Target, *, runner: tuple[str, ...], cache: Cache | None = None
    ) -> None:
        self.identity = f"image:{image.digest}:{_tag(target)}"
        self.cache_tag = _tag(target)
        how = f" under {Path(runner[0]).name}" if runner else ""
        self.description = f"the base's CPython {target.python_xy} ({target.interpreter}){how}"
        self._image, self._target, self._runner, self._cache = image, target, runner, cache
        self._lock = threading.Lock()
        self._server: _Server | None = None
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

    def _ensure(self) -> _Server:
        if self._closed:
            raise BytecodeError("the compiler was closed", doing="compiling bytecode")
        if self._failed is not None:
            raise self._failed
        if self._server is None:
            try:
                self._server = _Server(self._image, self._target, self._runner, cache=self._cache)
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


def _tag(target: Target) -> str:
    return f"cpython-{target.python_version[0]}{target.python_version[1]}"


class _Server:
    """The unpacked base and its interpreter process (started by the constructor).  The base is
    unpacked once into ``cache`` (:func:`slimline.trees.rootfs.cached`), or without a cache into the
    server's private directory, which :meth:`close` deletes."""

    def __init__(self, image: Image, target: Target, runner: tuple[str, ...], *, cache: Cache | None) -> None:
        self._doing = f"compiling bytecode with the base's {target.interpreter}"
        self._dir = Path(tempfile.mkdtemp(prefix="slimline-pyc-"))
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            if cache is not None:
                root = rootfs.cached(image, cache=cache)
            else:
                root = self._dir / "root"
                root.mkdir()
                rootfs.unpack(image, root)
            argv = [*runner, *_launcher(root, target), "-s", "-S", "-B", "-c", _SERVER]
            self._stderr = open(self._dir / "stderr", "w+b")  # noqa: SIM115 (closed by close())
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=self._dir,
                env={"PYTHONHASHSEED": "0"},
            )
            status, hello = self._reply()
            prefix, tag, version = hello.decode("utf-8", "surrogateescape").split("\0")
        except BaseException:
            self.close()
            raise
        want = ".".join(map(str, target.python_version))
        problem = ""
        if not os.path.realpath(prefix).startswith(str(root.resolve()) + os.sep):
            problem = f"it found its standard library outside the image, at {prefix}"
        elif tag != _tag(target) or version.rsplit(".", 1)[0] != target.python_xy:
            problem = f"it is CPython {version} ({tag}), not the target's {want}"
        if status != 0 or problem:
            self.close()
            raise BytecodeError(problem or "it did not start", doing=self._doing)

    def compile(self, path: str, source: bytes) -> bytes | None:
        raw = path.encode("utf-8", "surrogateescape")
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise BytecodeError("the interpreter has stopped", doing=self._doing)
        try:
            proc.stdin.write(struct.pack(">II", len(raw), len(source)) + raw)
            proc.stdin.write(source)
            proc.stdin.flush()
        except OSError as err:
            raise self._died(f"writing {path}") from err
        status, data = self._reply()
        if status == 1:
            return None
        if status == 2:
            raise BytecodeError(
                f"{path}: {data.decode('utf-8', 'replace')}",
                doing=self._doing,
                hint="the file does not compile with the image's Python; fix or exclude it, "
                "or set bytecode = false",
            )
        return data

    def _reply(self) -> tuple[int, bytes]:
        assert self._proc is not None and self._proc.stdout is not None
        out = self._proc.stdout
        head = _read(out, 5)
        data = _read(out, int.from_bytes(head[1:], "big")) if head is not None else None
        if head is None or data is None or head[0] > 2:
            raise self._died("reading its reply")
        return head[0], data

    def _died(self, when: str) -> BytecodeError:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        return BytecodeError(
            f"the interpreter stopped (exit status {code}) while {when}" + (f": {tail}" if tail else ""),
            doing=self._doing,
            hint="set bytecode = false, or run slimline with the image's Python X.Y",
        )

    def close(self) -> None:
        """Stop the process and delete the unpacked base (idempotent; also run by a finaliser)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _read(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def _launcher(root: Path, target: Target) -> list[str]:
    """The command (before the interpreter's own options) that runs the target's interpreter
    from ``root``: its dynamic loader with the image's library directories, or the interpreter
    alone when it is static."""
    interpreter = rootfs.resolve(root, target.interpreter)
    if interpreter is None or not interpreter.is_file():
        raise BytecodeError(f"the base has no file {target.interpreter}", doing="starting the base's Python")
    with open(interpreter, "rb") as f:
        loader_path = _pt_interp(f)
    if loader_path is None:
        return [str(interpreter)]
    loader = rootfs.resolve(root, loader_path)
    if loader is None or not loader.is_file():
        raise BytecodeError(
            f"the base has no dynamic loader {loader_path} (named by {target.interpreter})",
            doing="starting the base's Python",
        )
    dirs = [str(d) for d in (rootfs.resolve(root, d) for d in _library_dirs(root, target)) if d is not None]
    libpath = ":".join(dict.fromkeys(dirs))
    glibc = ["--inhibit-cache"] if target.libc == "glibc" else []  # not the host's ld.so.cache
    return [str(loader), *glibc, "--library-path", libpath, str(interpreter)]


def _library_dirs(root: Path, target: Target) -> list[str]:
    """Where the image's loader looks for libraries: its configuration, then the defaults."""
    if target.libc == "musl":
        paths = [p for p in (root / "etc").glob("ld-musl-*.path") if p.is_file()]
        listed = [line for p in paths for line in p.read_text().replace(":", "\n").split()]
        return [*listed, "/lib", "/usr/local/lib", "/usr/lib"]
    listed = []
    confd = rootfs.resolve(root, "/etc/ld.so.conf.d")
    for conf in sorted(confd.glob("*.conf")) if confd is not None and confd.is_dir() else []:
        for line in conf.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("/"):
                listed.append(line)
    return [*listed, "/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"]


def _pt_interp(f: IO[bytes]) -> str | None:
    """The ``PT_INTERP`` path of an ELF executable, or None for a static one."""
    head = f.read(64)
    if len(head) < 52 or head[:4] != b"\x7fELF":
        raise BytecodeError("the interpreter is not an ELF file", doing="starting the base's Python")
    end = "<" if head[5] == 1 else ">"
    if head[4] == 2:
        (phoff,) = struct.unpack_from(end + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 0x36)
        fmt = end + "IIQQQQ"  # type, flags, offset, vaddr, paddr, filesz
        offset_at, size_at = 2, 5
    else:
        (phoff,) = struct.unpack_from(end + "I", head, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 0x2A)
        fmt = end + "IIIIII"  # type, offset, vaddr, paddr, filesz, memsz
        offset_at, size_at = 1, 4
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        entry = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
        if entry[0] == 3:  # PT_INTERP
            f.seek(entry[offset_at])
            return f.read(entry[size_at]).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return None


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
        if cache is not None and cache.read_meta("bytecode-probe", key) is not None:
            return compiler
        try:
            compiler.start()
        except (SlimlineError, OSError) as err:
            reason = str(err).replace("\n", " ")
        else:
            if cache is not None:
                cache.write_meta("bytecode-probe", key, compiler.identity.encode())
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
