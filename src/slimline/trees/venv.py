"""The virtual environment inside the image: where things go, and its skeleton as a file tree.

Layout of the venv (``prefix`` defaults to ``/app/.venv``; X.Y is the *target*'s Python)::

    <prefix>/pyvenv.cfg                       home = dirname(target.interpreter), ...
    <prefix>/bin/python, python3, pythonX.Y   symlinks to target.interpreter (may dangle on the host)
    <prefix>/lib/pythonX.Y/site-packages/     purelib and platlib
    <prefix>/lib64 -> lib                     on 64-bit targets, as ``python -m venv`` does
    <prefix>/include/site/pythonX.Y/<dist>/   headers

There are no ``activate`` scripts: distroless bases have no shell, and the image config
puts ``<prefix>/bin`` first on ``PATH`` (and sets ``VIRTUAL_ENV``), which is all that
activation does.  Contract: :meth:`VenvLayout.of` refuses a prefix that is not absolute, holds
whitespace or is too long for a ``#!`` line; :func:`venv_tree` touches no disk and gives the
same tree for the same target and options.  Wheels are installed into this layout by
:mod:`slimline.trees.install`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from slimline.errors import InputError
from slimline.layers.filetree import FileTree, TreeBuilder
from slimline.target import Target

__all__ = ["DEFAULT_PREFIX", "VenvLayout", "venv_tree"]

DEFAULT_PREFIX = "/app/.venv"
_64BIT = {"amd64", "arm64", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"}


@dataclass(frozen=True, slots=True)
class VenvLayout:
    """Where things go in the image's venv.  All paths are absolute image paths."""

    prefix: str  # "/app/.venv"
    python_xy: str  # "3.11"

    @classmethod
    def of(cls, target: Target, prefix: str = DEFAULT_PREFIX) -> VenvLayout:
        """Validate ``prefix`` (absolute, normalised, no whitespace, shebang-safe length)."""
        norm = posixpath.normpath(prefix) if prefix else ""
        if not norm.startswith("/") or norm == "/" or norm.startswith("//"):
            raise InputError(
                f"the venv prefix {prefix!r} is not an absolute path below /",
                doing="laying out the virtual environment",
                hint="set the venv path to an absolute directory such as /app/.venv",
            )
        if any(ch.isspace() for ch in norm) or len(f"#!{norm}/bin/python\n".encode()) > 127:
            raise InputError(
                f"the venv prefix {prefix!r} contains whitespace or is too long for a #! line",
                doing="laying out the virtual environment",
                hint="choose a short path without spaces: scripts would need /bin/sh, "
                "which distroless bases do not have",
            )
        return cls(prefix=norm, python_xy=target.python_xy)

    @property
    def bin(self) -> str:
        return f"{self.prefix}/bin"

    @property
    def interpreter(self) -> str:
        """The venv's python inside the image: what shebangs name."""
        return f"{self.prefix}/bin/python"

    @property
    def site_packages(self) -> str:
        return f"{self.prefix}/lib/python{self.python_xy}/site-packages"

    def scheme(self, distribution: str) -> dict[str, str]:
        """installer's scheme dictionary for one distribution (``headers`` differ per dist)."""
        return {
            "purelib": self.site_packages,
            "platlib": self.site_packages,
            "scripts": self.bin,
            "data": self.prefix,
            "headers": f"{self.prefix}/include/site/python{self.python_xy}/{distribution}",
        }


def venv_tree(target: Target, *, prefix: str = DEFAULT_PREFIX, uid: int = 0, gid: int = 0) -> FileTree:
    """The venv skeleton: pyvenv.cfg, interpreter symlinks, an empty site-packages."""
    layout = VenvLayout.of(target, prefix)
    full = ".".join(str(p) for p in target.python_version)
    home = posixpath.dirname(target.interpreter)
    cfg = (
        f"home = {home}\n"
        "include-system-site-packages = false\n"
        f"version = {full}\n"
        f"executable = {target.interpreter}\n"
        f"command = {target.interpreter} -m venv {layout.prefix}\n"
    )
    b = TreeBuilder(uid=uid, gid=gid, archive="the venv")
    b.dir(layout.prefix)
    b.data(f"{layout.prefix}/pyvenv.cfg", cfg.encode())
    b.dir(layout.bin)
    for name in ("python", "python3", f"python{layout.python_xy}"):
        b.symlink(f"{layout.bin}/{name}", target.interpreter)
    b.dir(f"{layout.prefix}/include")
    b.dir(layout.site_packages)
    if target.platform.architecture in _64BIT:
        b.symlink(f"{layout.prefix}/lib64", "lib")
    return b.freeze()
