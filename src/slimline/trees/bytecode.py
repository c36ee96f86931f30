"""Ahead-of-time bytecode for the image (``bytecode = true``).

Contract: :func:`compile_tree` returns the tree plus one ``__pycache__/<name>.<tag>.pyc`` per
``.py`` file, written by a :class:`~slimline.trees.compiler.Compiler` for the target: the base image's
own interpreter when this host can run it, else this interpreter when it is the same CPython
X.Y (see :func:`compiler_for`).  The ``.pyc`` files use the ``CHECKED_HASH`` invalidation mode
(PEP 552): they hold the source's hash instead of its mtime, so they are reproducible and stay
valid whatever mtimes the layer has.  Code objects record the path the file has *inside the
image*, so tracebacks show real paths.  Files that do not compile (Python 2 leftovers in some
sdists) are skipped, as pip does.

Caps on what a base makes slimline read (:func:`stdlib_tree`): only the standard library's
``.py`` files (and the files its symlinked modules point at) are read; one over
:data:`MAX_SOURCE` bytes is not compiled, and more than :data:`MAX_SOURCES` bytes of them all
together stop the build with :class:`BytecodeError`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import replace

from slimline.cache.store import Cache
from slimline.layers.filetree import Bytes, Entry, FileTree, Kind, TreeBuilder
from slimline.layers.job import Job
from slimline.layers.read import TooLarge, final_files
from slimline.oci.image import Image
from slimline.target import Target
from slimline.trees.compiler import BytecodeError, Compiler, choose

__all__ = [
    "STDLIB_FORMAT",
    "BytecodeError",
    "Compiler",
    "compile_tree",
    "compiled",
    "compiler_for",
    "stdlib_tree",
]

STDLIB_FORMAT = (
    "4"  # bump when stdlib_tree picks other files (2: symlinked modules, 3: whiteouts, 4: NOT_AHEAD)
)

# Standard-library modules (top-level names) a running service does not import, so they are not
# compiled ahead of time (they still work: imported, they are compiled in memory, as before):
# development and packaging tools, pure-Python fallbacks of C modules, modules deprecated by
# PEP 594, interactive helpers.  Of ``encodings``, only the codecs in COMMON_CODECS are compiled.
NOT_AHEAD = frozenset({
    "__phello__", "_pydecimal", "_pyio", "_pylong", "_pydatetime", "aifc", "antigravity", "asynchat",
    "asyncore", "bdb", "cgi", "cgitb", "chunk", "cmd", "code", "codeop", "compileall", "crypt",
    "curses", "dbm", "distutils", "doctest", "ensurepip", "filecmp", "fileinput", "ftplib", "getopt",
    "graphlib", "idlelib", "imaplib", "imghdr", "lib2to3", "mailbox", "mailcap", "modulefinder",
    "msilib", "netrc", "nis", "nntplib", "optparse", "ossaudiodev", "pdb", "pickletools", "pipes",
    "plistlib", "poplib", "profile", "cProfile", "pstats", "pty", "py_compile", "pyclbr", "pydoc",
    "pydoc_data", "rlcompleter", "sched", "shelve", "smtpd", "sndhdr", "spwd", "sunau", "symtable",
    "tabnanny", "telnetlib", "this", "timeit", "tkinter", "trace", "tty", "turtle", "turtledemo",
    "unittest", "uu", "venv", "wave", "xdrlib", "xmlrpc", "zipapp",
})  # fmt: skip
COMMON_CODECS = frozenset({
    "__init__", "aliases", "ascii", "base64_codec", "charmap", "cp437", "hex_codec", "idna",
    "latin_1", "punycode", "raw_unicode_escape", "unicode_escape", "utf_16", "utf_16_be",
    "utf_16_le", "utf_32", "utf_8", "utf_8_sig",
})  # fmt: skip
MAX_SOURCE = 16 << 20  # a bigger .py file of the base's standard library is not compiled (as pip skips)
MAX_SOURCES = 128 << 20  # the standard library's sources read, all together; more stops the build


def compiler_for(
    base: Image, target: Target, *, cache: Cache | None = None, run_image: bool = True
) -> Compiler:
    """The compiler a build uses for ``target`` (raises :class:`BytecodeError` when there is none);
    see :func:`slimline.trees.compiler.choose`."""
    return choose(base, target, cache=cache, run_image=run_image)


def compiled(job: Job, *, compiler: Compiler) -> Job:
    """The same layer plus ``.pyc`` files compiled for the target (:func:`compile_tree`), keyed
    by the compiler's identity too."""
    return replace(
        job,
        key=f"{job.key}|pyc:{compiler.identity}",
        make=lambda: compile_tree(job.make(), compiler=compiler),
    )


def compile_tree(tree: FileTree, *, compiler: Compiler) -> FileTree:
    tag = compiler.cache_tag  # "cpython-313"
    added: dict[str, Entry] = {}
    for entry in tree.entries():
        if entry.kind is not Kind.FILE or not entry.path.endswith(".py") or entry.source is None:
            continue
        with entry.source.open() as f:
            source = f.read()
        data = compiler.compile("/" + entry.path, source)
        if data is None:
            continue
        folder, name = posixpath.split(entry.path)
        pyc = posixpath.join(folder, "__pycache__", f"{name[:-3]}.{tag}.pyc")
        if pyc not in tree:
            cache_dir = posixpath.join(folder, "__pycache__")
            if cache_dir not in tree and cache_dir not in added:
                added[cache_dir] = Entry(cache_dir, Kind.DIR, 0o755, entry.uid, entry.gid)
            added[pyc] = Entry(pyc, Kind.FILE, 0o644, entry.uid, entry.gid, len(data), Bytes(data))
    return tree.merge(FileTree(added))


def stdlib_tree(image: Image, *, target: Target, compiler: Compiler) -> FileTree:
    """``.pyc`` files for the base image's standard library, for a layer of their own.

    Bases assembled from packages (slimline's Debian base, distroless) ship the standard
    library without bytecode, so every start compiles what it imports.  The sources are read
    from the base's final file system (``usr/lib/pythonX.Y`` or ``usr/local/lib/pythonX.Y``, not
    site-packages; whiteouts applied, so a removed module is not compiled); modules that already
    have a ``.pyc`` are left alone.  A module that is a symlink (Debian's ``sitecustomize.py``
    -> ``/etc/pythonX.Y/``) is compiled from its target, under its own path, as the import
    system does.  The tree also holds the directories leading to each ``__pycache__`` (root,
    0755, as in the base).  Modules a running service does not import (:data:`NOT_AHEAD`, and
    the rarer codecs) are left out.
    """
    xy = target.python_xy
    roots = (f"usr/lib/python{xy}/", f"usr/local/lib/python{xy}/")
    tag = compiler.cache_tag

    def in_stdlib(path: str) -> bool:
        return path.startswith(roots) and path.endswith(".py") and "-packages/" not in path

    def ahead(path: str) -> bool:
        """Compiled ahead of time: not in :data:`NOT_AHEAD`; of ``encodings``, :data:`COMMON_CODECS`."""
        root = next(r for r in roots if path.startswith(r))
        parts = path.removeprefix(root).split("/")
        top = parts[0].removesuffix(".py") if parts else ""
        if top == "encodings":
            return len(parts) == 2 and parts[1].removesuffix(".py") in COMMON_CODECS
        return top not in NOT_AHEAD

    files, links, have = _sources(image, in_stdlib, tag=tag)
    wanted = [n for n in (*files, *links) if in_stdlib(n) and ahead(n)]
    builder = TreeBuilder()
    for path in sorted(wanted):
        source = files.get(_follow(path, links))
        if source is not None:
            builder.data(path, source)
    compiled = compile_tree(builder.freeze(), compiler=compiler)
    return compiled.without([*wanted, *have])


def _sources(
    image: Image, in_stdlib: Callable[[str], bool], *, tag: str
) -> tuple[dict[str, bytes], dict[str, str], set[str]]:
    """(the standard library's ``.py`` files and the files its symlinked modules point at, by path;
    every symlink of the base, to its target as a path in the image; the ``.pyc`` files it has).

    Only those files are read: the standard library in one pass over the layers, then (when a
    module is a symlink out of it) the targets in a second.  At most :data:`MAX_SOURCES` bytes
    all together, else :class:`BytecodeError`; a file over :data:`MAX_SOURCE` is left out."""
    try:
        view = final_files(image.layers, wanted=in_stdlib, max_size=MAX_SOURCE, max_total=MAX_SOURCES)
        files = {n: e.data for n, e in view.items() if e.kind is Kind.FILE and e.data is not None}
        links = {
            n: posixpath.normpath(posixpath.join(posixpath.dirname(n), e.target)).lstrip("/")
            for n, e in view.items()
            if e.kind is Kind.SYMLINK
        }
        have = {n for n, e in view.items() if e.kind is Kind.FILE and n.endswith(f".{tag}.pyc")}
        out = {_follow(n, links) for n in links if in_stdlib(n)} - files.keys()
        out = {t for t in out if (e := view.get(t)) is not None and e.kind is Kind.FILE}
        if out:
            left = MAX_SOURCES - sum(len(d) for d in files.values())
            more = final_files(image.layers, wanted=out.__contains__, max_size=MAX_SOURCE, max_total=left)
            files.update({n: e.data for n, e in more.items() if n in out and e.data is not None})
    except TooLarge as err:
        raise BytecodeError(
            f"the base's standard library holds more than {MAX_SOURCES} bytes of sources ({err.path})",
            doing="compiling the base's standard library (bytecode = true)",
            hint="no real Python's does; build without bytecode (bytecode = false) or use another base",
        ) from err
    return files, links, have


def _follow(path: str, links: dict[str, str]) -> str:
    """``path`` with the symlink at its end followed (a few hops), as far as ``links`` know."""
    for _ in range(8):
        if path not in links:
            break
        path = links[path]
    return path
