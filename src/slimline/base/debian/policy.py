"""What goes into the base, and where: path filters, merged /usr, optional stdlib trimming, layer groups.

Everything here is a pure function of its arguments, so the layer cache keys can name
:data:`POLICY_VERSION` instead of the rules themselves (bump it when a rule changes).

Dropped from every package (a runtime image never reads them):
  ``usr/share/doc/<pkg>/*`` except ``usr/share/doc/<pkg>/copyright`` (licences stay);
  ``usr/share/{man,info,locale,lintian,linda,bug,doc-base,menu,binfmts,bash-completion}``,
  ``usr/lib/binfmt.d``; ``usr/share/zoneinfo/right`` (leap-second "right/" zones, 600 files
  that Debian 13 moved out of tzdata into tzdata-legacy); the glibc ``gconv`` modules (iconv
  character sets: Python's codecs do not use them; UTF-8/ASCII/Latin-1/UTF-16/UTF-32 are built
  into glibc) unless ``keep_gconv``.
The standard library: a base for Python X.Y holds what CPython X.Y ships, including the parts
Debian packages apart from ``libpythonX.Y-stdlib`` (:func:`stdlib_packages`: ``distutils`` and
``lib2to3`` up to 3.11, ``lib2to3`` in 3.12; CPython removed them in 3.12 and 3.13), minus
:data:`STDLIB_LEFT_OUT`.  Dropped with ``strip_stdlib`` (never imported by a server):
  ``ensurepip``, ``idlelib``, ``tkinter``, ``turtledemo``, ``turtle.py``,
  ``pydoc_data`` (the text of interactive ``help()`` topics, 750 kB),
  ``test`` and every ``tests``/``test``/``idle_test`` package inside the standard library,
  and the test extension modules in ``lib-dynload`` (``_testcapi`` ..., ``xxlimited``).
Merged /usr: ``bin``, ``sbin``, ``lib``, ``lib32``, ``lib64``, ``libx32`` are symlinks into
``usr/``; package entries under them are installed under ``usr/`` (Debian 12 packages still
ship ``/lib``; Debian 13 requires the merged layout).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = [
    "ALIASED_DIRS",
    "GROUPS",
    "POLICY_VERSION",
    "STDLIB_LEFT_OUT",
    "Group",
    "keep",
    "loader_dirs",
    "stdlib_packages",
    "usrmerge",
]

POLICY_VERSION = "5"  # 5: update-alternatives links

ALIASED_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

_DROP_SHARE = frozenset(
    {"man", "info", "locale", "lintian", "linda", "bug", "doc-base", "menu", "binfmts", "bash-completion"}
)
_STDLIB_DROP_TOP = frozenset(
    {"ensurepip", "idlelib", "tkinter", "turtledemo", "test", "turtle.py", "pydoc_data"}
)

# Modules of ``sys.stdlib_module_names`` that a ``debian:`` base does not hold, and why (the
# README lists the same).  With ``strip_stdlib = false`` those that Debian ships in
# ``libpythonX.Y-stdlib`` come back (pydoc_data, turtle); the others are Debian packages of their own.
STDLIB_LEFT_OUT: Mapping[str, str] = {
    "ensurepip": "installs pip into environments; an image's venv is made by slimline "
    "(Debian ships it apart, in pythonX.Y-venv)",
    "idlelib": "the IDLE editor, a desktop application (Debian's idle-pythonX.Y)",
    "tkinter": "Tk GUI toolkit: needs X11 libraries (Debian's python3-tk)",
    "_tkinter": "Tk GUI toolkit: needs X11 libraries (Debian's python3-tk)",
    "turtle": "turtle graphics, built on tkinter",
    "turtledemo": "turtle graphics demos, built on tkinter (Debian's pythonX.Y-examples)",
    "pydoc_data": "the text of the interactive help() topics (750 kB); pydoc works without it",
    "_gdbm": "GNU dbm, GPL-licensed (Debian's python3-gdbm); dbm uses Berkeley DB or its own "
    "format without it; add python3-gdbm to [tool.slimline.debian] packages to have it",
}
_STDLIB_DROP_ANY = frozenset({"test", "tests", "idle_test"})
_TEST_EXT = re.compile(r"(_test\w*|_xxtestfuzz|_ctypes_test|xxlimited\w*|xxsubtype)\.cpython-[^/]*\.so$")


def usrmerge(path: str) -> str | None:
    """Where a package path lands in a merged-/usr tree; ``None`` for the aliased directories
    themselves (they are symlinks that the assembly creates)."""
    top, _, rest = path.partition("/")
    if top in ALIASED_DIRS:
        return f"usr/{top}/{rest}" if rest else None
    return path


def loader_dirs(arch: str) -> tuple[str, ...]:
    """The merged-/usr symlinks created for ``arch``: always bin, sbin, lib; lib64 where the
    ELF interpreter lives there (amd64's /lib64/ld-linux-x86-64.so.2, ppc64el's /lib64/ld64.so.2)."""
    return ("bin", "sbin", "lib", "lib64") if arch in ("amd64", "ppc64el") else ("bin", "sbin", "lib")


def keep(path: str, *, strip_stdlib: bool, keep_gconv: bool = False) -> bool:
    """Is ``path`` (relative, after :func:`usrmerge`) installed?  See the module contract."""
    parts = path.split("/")
    if parts[0] != "usr" or len(parts) < 3:
        return True
    if parts[1] == "share":
        if parts[2] in _DROP_SHARE:
            return False
        if parts[2] == "zoneinfo" and len(parts) > 3 and parts[3] == "right":
            return False
        if parts[2] == "doc" and len(parts) > 4:
            return len(parts) == 5 and parts[4] == "copyright"
        return True
    if parts[1] != "lib":
        return True
    if parts[2] == "binfmt.d":
        return False
    if not keep_gconv and len(parts) >= 4 and parts[3] == "gconv":
        return False
    if strip_stdlib and re.fullmatch(r"python3\.\d+", parts[2]) and len(parts) >= 4:
        if parts[3] in _STDLIB_DROP_TOP:
            return False
        if any(p in _STDLIB_DROP_ANY for p in parts[4:-1]) or (
            len(parts) > 4 and parts[-1] in _STDLIB_DROP_ANY
        ):
            return False
        if parts[3] == "lib-dynload" and _TEST_EXT.search(parts[-1]):
            return False
    return True


# Parts of CPython's standard library that Debian ships apart, with the last CPython 3.x minor
# version that has each.  The package of each provides ``pythonX.Y-<part>`` for every Python it
# serves, which is how a suite's package is known to fit the base's Python.
_STDLIB_APART = (("python3-distutils", "distutils", 11), ("python3-lib2to3", "lib2to3", 12))


def stdlib_packages(python_xy: str) -> tuple[tuple[str, str], ...]:
    """``(package, virtual package it must provide)`` for each part of CPython ``python_xy``'s
    standard library that Debian ships apart: a base installs the package when the suite has it
    and it provides the virtual name (``python3-distutils`` provides ``python3.11-distutils``)."""
    minor = int(python_xy.split(".")[1])
    return tuple((pkg, f"python{python_xy}-{part}") for pkg, part, last in _STDLIB_APART if minor <= last)


class Group:
    """A layer of the base: the packages reachable from ``roots`` not claimed by an earlier group."""

    def __init__(self, name: str, roots: Sequence[str], description: str) -> None:
        self.name, self.roots, self.description = name, tuple(roots), description


def groups(python_xy: str, extras: Sequence[str], stdlib: Sequence[str] = ()) -> list[Group]:
    """The layer groups in order (lowest layer first).  The static files (passwd, CA bundle ...)
    go with the first group; a group that ends up empty is dropped.  ``stdlib``: the packages of
    :func:`stdlib_packages` the base holds (they go with the Python)."""
    return [
        Group(
            "files",
            ("netbase", "tzdata", "ca-certificates", "media-types"),
            "time zones, CA certificates, MIME types, users and other static files",
        ),
        Group("libc", ("libc6", "libssl3", "libssl3t64", "zlib1g"), "glibc, OpenSSL, zlib"),
        Group(
            "python",
            (f"python{python_xy}-minimal", f"libpython{python_xy}-stdlib", *stdlib),
            f"Python {python_xy} and the libraries of its standard library",
        ),
        Group("extras", tuple(extras), "extra packages from the settings"),
    ]


GROUPS = groups  # the public name of the grouping rule
