"""The standard library's bytecode layer of a ``debian:`` base (fast start by default), begun as
soon as the build's base is known, so it is compiled while the build downloads and compiles.

Contract: :func:`begin` picks the compiler for the base the build starts with and starts making
that base's layer (:func:`slimline.build.jobs.stdlib_job`) on a thread of the lowest priority
(:mod:`slimline.build.background`: it takes what the build's own steps leave idle), after
reading what the build's end reads of the base (its libraries and Debian packages).  It starts
nothing for a base that is not a ``debian:`` one, with ``stdlib-bytecode = false``, or with
``bytecode = true`` (then the compiler of every layer compiles this one too, for the final base).
:meth:`Early.job_for` gives the job for the final base: the build's wheels may have made it
extend the base with the libraries they link.  When the layers that differ between the two bases
hold no file of the standard library or of the interpreter, that is the started job itself (the
compiled files are the same).  Otherwise it is a new job for the final base.  It waits for the
thread first, so the caller finds the layer in the cache.  A failure on the thread is not
reported there: the caller makes the layer again in its own order and fails there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from slimline import layers
from slimline.base import dpkg, native
from slimline.base import resolve as bases
from slimline.build import background
from slimline.build.jobs import Placement, stdlib_job
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.layers.job import Job
from slimline.layers.read import walk
from slimline.oci.image import Image, Layer
from slimline.target import Target
from slimline.trees.compiler import Compiler

__all__ = ["Early", "begin", "compiler_for"]

_FORMAT = "1"  # bump when what counts as a layer touching the standard library changes


def compiler_for(base: bases.Base, target: Target, *, ctx: Context) -> Compiler | None:
    """What compiles the standard library of a ``debian:`` base: None when no compiler runs here
    (a warning says so: the image works, and compiles what it imports at every start)."""
    from slimline.trees import bytecode

    try:
        compiler = bytecode.compiler_for(base.image, target, cache=ctx.cache, run_image=True)
    except bytecode.BytecodeError as err:
        ctx.report.step(f"warning: the standard library is not compiled ahead of time: {err.problem}")
        return None
    ctx.report.detail(f"standard library bytecode ({target.platform}): compiled by {compiler.description}")
    return compiler


@dataclass
class Early:
    """The layer of the build's first base, being made (see the module's contract): its compiler
    is chosen on the thread too, since choosing may start the base's interpreter."""

    base: bases.Base
    place: Placement
    ctx: Context
    compression: layers.Compression
    job: Job | None = None  # set on the thread; None when no compiler runs here
    _thread: threading.Thread | None = None
    _error: Exception | None = None  # choosing the compiler failed: raised by job_for
    _compilers: list[Compiler] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def start(self) -> None:
        self._thread = background.begin(self._make, name="slimline-stdlib")

    def _make(self) -> None:
        self._read_base()
        try:
            compiler = self._compiler(self.base)
        except Exception as err:  # raised where the build waits for the layer
            self._error = err
            return
        if compiler is None:
            return
        p = self.place
        self.job = stdlib_job(self.base.image, Placement(p.venv, p.target, compiler, p.slim))
        try:
            layers.realise([self.job], cache=self.ctx.cache, compression=self.compression, base_like=True)
        except Exception:  # made again, and reported, by the caller
            return

    def _read_base(self) -> None:
        """Read what the build's end reads of the base when its wheels are there (the libraries
        it holds, its Debian packages: :func:`slimline.base.native.missing`), memoised in the
        cache; a failure is met again, and reported, there."""
        try:
            native.sonames(self.base.image, cache=self.ctx.cache)
            dpkg.installed(self.base.image, cache=self.ctx.cache)
        except Exception:
            return

    def _compiler(self, base: bases.Base) -> Compiler | None:
        compiler = compiler_for(base, self.place.target, ctx=self.ctx)
        if compiler is not None:
            with self._lock:
                self._compilers.append(compiler)
                if self._closed:
                    compiler.close()
        return compiler

    def job_for(self, final: bases.Base, place: Placement) -> Job | None:
        """The job of the final base's layer (None when its compiler cannot run here)."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if self.job is None:
            return None
        if final.image.digest == self.base.image.digest or _same_stdlib(
            self.base.image, final.image, target=place.target, cache=self.ctx.cache
        ):
            return self.job
        compiler = self._compiler(final)
        if compiler is None:
            return None
        return stdlib_job(final.image, Placement(place.venv, place.target, compiler, place.slim))

    def close(self) -> None:
        """Stop the compilers' processes (a running thread then fails, unreported)."""
        with self._lock:
            self._closed = True
            compilers = list(self._compilers)
        for compiler in compilers:
            compiler.close()


def begin(base: bases.Base, place: Placement, *, compression: layers.Compression, ctx: Context) -> Early:
    """Start making the layer of ``base`` (``place.compiler`` must be None: ``bytecode = false``)."""
    early = Early(base, place, ctx, compression)
    early.start()
    return early


def _same_stdlib(a: Image, b: Image, *, target: Target, cache: Cache) -> bool:
    """Whether the layers in which ``a`` and ``b`` differ (after the ones they share, in order)
    hold no file of the standard library, of the interpreter or its library, and no whiteout:
    then both hold the same standard library and interpreter."""
    shared = 0
    for x, y in zip(a.layers, b.layers, strict=False):
        if x.digest != y.digest:
            break
        shared += 1
    return not any(_touches(layer, target, cache) for layer in (*a.layers[shared:], *b.layers[shared:]))


def _touches(layer: Layer, target: Target, cache: Cache) -> bool:
    """Whether ``layer`` holds a path of the standard library or interpreter, or a whiteout
    (remembered by its digest: a layer's files never change)."""
    key = keys.key("stdlib-touch", _FORMAT, layer.digest, target.python_xy, target.interpreter)
    known = cache.read_meta(keys.STDLIB_TOUCH, key)
    if known is not None:
        return known == b"1"
    xy = target.python_xy
    roots = (f"usr/lib/python{xy}/", f"usr/local/lib/python{xy}/")
    interpreter = target.interpreter.lstrip("/")
    touches = False
    for path, _member, _tar in walk([layer]):
        name = path.rsplit("/", 1)[-1]
        if (
            path.startswith(roots)
            or path.rstrip("/") == interpreter
            or name.startswith((".wh.", f"libpython{xy}"))
        ):
            touches = True
            break
    cache.write_meta(keys.STDLIB_TOUCH, key, b"1" if touches else b"0")
    return touches
