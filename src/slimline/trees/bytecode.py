"""Ahead-of-time bytecode for the image (``bytecode = true``).

Contract: :func:`compile_tree` returns the tree plus one ``__pycache__/<name>.<tag>.pyc`` per
``.py`` file, written by a :class:`~slimline.trees.compiler.Compiler` for the target: the base image's
own interpreter when this host can run it, else this interpreter when it is the same CPython
X.Y (see :func:`compiler_for`).  The ``.pyc`` files use the ``CHECKED_HASH`` invalidation mode
(PEP 552): they hold the source's hash instead of its mtime, so they are reproducible and stay
valid whatever mtimes the layer has.  Code objects record the path the file has *inside the
image*, so tracebacks show real paths.  Files that do not compile (Python 2 leftovers in some
sdists) are skipped, as pip does.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace

from slimline.cache.store import Cache
from slimline.layers.filetree import Bytes, Entry, FileTree, Kind, TreeBuilder
from slimline.layers.job import Job
from slimline.layers.read import final_files
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

STDLIB_FORMAT = "3"  # bump when stdlib_tree picks other files (2: modules that are symlinks, 3: whiteouts)
_MAX_SOURCE = 64 << 20  # a bigger .py file of the base is not compiled


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
    0755, as in the base).
    """
    xy = target.python_xy
    roots = (f"usr/lib/python{xy}/", f"usr/local/lib/python{xy}/")
    tag = compiler.cache_tag
    files: dict[str, bytes] = {}  # every .py file of the base: a module's symlink may point anywhere
    links: dict[str, str] = {}  # every symlink of the base, to its target as a path in the image
    have: set[str] = set()
    view = final_files(image.layers, wanted=lambda path: path.endswith(".py"), max_size=_MAX_SOURCE)
    for name, entry in view.items():
        if entry.kind is Kind.SYMLINK:
            pointed = posixpath.join(posixpath.dirname(name), entry.target)
            links[name] = posixpath.normpath(pointed).lstrip("/")
        elif entry.kind is Kind.FILE and name.endswith(f".{tag}.pyc"):
            have.add(name)
        elif entry.kind is Kind.FILE and entry.data is not None:  # a .py file
            files[name] = entry.data
    wanted = [
        n for n in (*files, *links) if n.startswith(roots) and n.endswith(".py") and "-packages/" not in n
    ]
    builder = TreeBuilder()
    for path in sorted(wanted):
        source = files.get(_follow(path, links))
        if source is not None:
            builder.data(path, source)
    compiled = compile_tree(builder.freeze(), compiler=compiler)
    return compiled.without([*wanted, *have])


def _follow(path: str, links: dict[str, str]) -> str:
    """``path`` with the symlink at its end followed (a few hops), as far as ``links`` know."""
    for _ in range(8):
        if path not in links:
            break
        path = links[path]
    return path
