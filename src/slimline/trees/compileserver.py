"""The base image's interpreter as a compile server: how it is started here and how it is spoken to.

Contract of :class:`Server`: its constructor unpacks the base (:mod:`slimline.base.rootfs`),
once per base into the cache (else into a private temporary directory), and starts the base's
interpreter through the image's own dynamic loader (found from the interpreter's
``PT_INTERP``), after the given runner prefix (``qemu-<arch>`` for another architecture), with
an empty environment but ``PYTHONHASHSEED=0``; it checks that the interpreter found its
standard library inside the image and is the target's CPython X.Y, else raises
:class:`BytecodeError`.  :meth:`Server.compile` then sends one source at a time and returns the
``.pyc`` bytes, or None when the source does not compile.  The caller serialises calls.

Framing: request ``>II`` (path length, source length) + UTF-8 path + source; reply one status
byte (``0`` pyc, ``1`` does not compile, ``2`` error) + ``>I`` length + payload (pyc bytes or the
error's text).  The server first sends one reply holding ``prefix NUL cache_tag NUL X.Y.Z``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from slimline.base import rootfs
from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.oci.image import Image
from slimline.target import Target

__all__ = ["BytecodeError", "Server", "pyc_tag"]

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


class BytecodeError(SlimlineError):
    """Bytecode cannot be written for the target: no compiler, or the base's interpreter failed."""


def pyc_tag(target: Target) -> str:
    """``cpython-313``: the target's ``sys.implementation.cache_tag``, in its ``.pyc`` file names."""
    return f"cpython-{target.python_version[0]}{target.python_version[1]}"


class Server:
    """The unpacked base and its interpreter process (started by the constructor).  The base is
    unpacked once into ``cache`` (:func:`slimline.base.rootfs.cached`), or without a cache into the
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
        elif tag != pyc_tag(target) or version.rsplit(".", 1)[0] != target.python_xy:
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
