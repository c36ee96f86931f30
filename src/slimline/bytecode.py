"""Ahead-of-time bytecode for the image (``bytecode = true``).

Contract: :func:`compile_tree` returns the tree plus one
``__pycache__/<name>.cpython-XY.pyc`` per ``.py`` file, compiled by *this* interpreter, which
must be the same CPython minor version as the target (bytecode is version-specific; the
magic number would make the target ignore anything else).  The ``.pyc`` files use the
``CHECKED_HASH`` invalidation mode (PEP 552): they hold the source's hash instead of its
mtime, so they are reproducible and stay valid whatever mtimes the layer has.  Code
objects record the path the file has *inside the image*, so tracebacks show real paths.
Files that do not compile (Python 2 leftovers in some sdists) are skipped, as pip does.
"""

from __future__ import annotations

import importlib.util
import posixpath
import sys
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]

from slimline import layers
from slimline.errors import SlimlineError
from slimline.filetree import Bytes, Entry, FileTree, Kind, TreeBuilder
from slimline.oci.image import Image
from slimline.target import Target

__all__ = ["BytecodeError", "check_host", "compile_tree", "stdlib_tree"]


class BytecodeError(SlimlineError):
    pass


def check_host(target: Target) -> None:
    """Raise unless this interpreter can write bytecode the target's Python will use."""
    host = sys.version_info[:2]
    want = target.python_version[:2]
    if sys.implementation.name != "cpython" or host != want:
        raise BytecodeError(
            f"bytecode = true needs CPython {want[0]}.{want[1]} to run slimline (the image's Python); "
            f"this is {sys.implementation.name} {host[0]}.{host[1]}",
            doing="compiling bytecode for the image",
            hint=f"run slimline with python{want[0]}.{want[1]}, or set bytecode = false "
            "(the image then sets PYTHONDONTWRITEBYTECODE=1)",
        )


def compile_tree(tree: FileTree, *, target: Target) -> FileTree:
    check_host(target)
    tag = sys.implementation.cache_tag  # "cpython-313"
    added: dict[str, Entry] = {}
    for entry in tree.entries():
        if entry.kind is not Kind.FILE or not entry.path.endswith(".py") or entry.source is None:
            continue
        with entry.source.open() as f:
            source = f.read()
        try:
            code = compile(source, "/" + entry.path, "exec", dont_inherit=True, optimize=0)
        except (SyntaxError, ValueError):
            continue
        data = bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=True))
        folder, name = posixpath.split(entry.path)
        pyc = posixpath.join(folder, "__pycache__", f"{name[:-3]}.{tag}.pyc")
        if pyc not in tree:
            cache_dir = posixpath.join(folder, "__pycache__")
            if cache_dir not in tree and cache_dir not in added:
                added[cache_dir] = Entry(cache_dir, Kind.DIR, 0o755, entry.uid, entry.gid)
            added[pyc] = Entry(pyc, Kind.FILE, 0o644, entry.uid, entry.gid, len(data), Bytes(data))
    return tree.merge(FileTree(added))


def stdlib_tree(image: Image, *, target: Target) -> FileTree:
    """``.pyc`` files for the base image's standard library, for a layer of their own.

    Bases assembled from packages (slimline's Debian base, distroless) ship the standard
    library without bytecode, so every start compiles what it imports.  The sources are read
    from the base's layers (``usr/lib/pythonX.Y`` or ``usr/local/lib/pythonX.Y``, not
    site-packages); modules that already have a ``.pyc`` are left alone.  The tree also holds
    the directories leading to each ``__pycache__`` (root, 0755, as in the base).
    """
    check_host(target)
    xy = target.python_xy
    roots = (f"usr/lib/python{xy}/", f"usr/local/lib/python{xy}/")
    tag = sys.implementation.cache_tag
    sources: dict[str, bytes] = {}
    have: set[str] = set()
    for name, member, tar in layers.walk(image.layers):
        if not member.isfile() or not name.startswith(roots) or "-packages/" in name:
            continue
        if name.endswith(f".{tag}.pyc"):
            have.add(name)
        elif name.endswith(".py"):
            stream = tar.extractfile(member)
            if stream is not None:
                sources[name] = stream.read()
    builder = TreeBuilder()
    for path, data in sources.items():
        builder.data(path, data)
    compiled = compile_tree(builder.freeze(), target=target)
    return compiled.without([*sources, *have])
