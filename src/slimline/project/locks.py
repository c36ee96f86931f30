"""Which lock file a build reads, and reading it whatever its format.

Contract of :func:`find`: the lock is the one named explicitly (``--lock PATH``, made absolute by
the command line, or the ``lock`` setting, a file name in the project directory), else the one
lock file the project directory has among ``poetry.lock``, ``uv.lock``, ``pylock.toml`` and
``pylock.<name>.toml``.  None, or several with no choice made, is a :class:`LockChoiceError`
that lists what was found and how to choose.  The format follows from the file name
(:func:`format_of`).  :func:`candidates` is what the memo hashes: this module imports no parser
until a lock is read.

:func:`load` and :func:`check_fresh` dispatch on the format: Poetry's ``content-hash``
(:mod:`slimline.project.lockfile`), uv's record of the project's requirements
(:mod:`slimline.project.uvlock`); a ``pylock.toml`` records nothing of pyproject.toml, so it
has no freshness check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from slimline.errors import ExitStatus, SlimlineError

if TYPE_CHECKING:  # the memo imports this module: it loads nothing more until a lock is read
    from slimline.project.lockfile import Lock, LockFormat
    from slimline.project.pyproject import Project

__all__ = ["LockChoiceError", "candidates", "check_fresh", "find", "format_of", "load"]

_PYLOCK = re.compile(r"^pylock\.([^.]+)\.toml$")  # PEP 751's name rule, plus pylock.toml
_HOW = 'choose one with `--lock PATH` or `lock = "FILE"` in [tool.slimline]'


class LockChoiceError(SlimlineError):
    """No lock file, several without a choice, or a chosen file that is not a lock slimline reads."""

    exit_status = ExitStatus.INPUT


def format_of(path: Path) -> LockFormat | None:
    """The format a lock file's name says, or None when it names none slimline reads."""
    name = path.name
    if name == "poetry.lock":
        return "poetry"
    if name == "uv.lock":
        return "uv"
    if name == "pylock.toml" or _PYLOCK.match(name):
        return "pylock"
    return None


def candidates(root: Path) -> list[Path]:
    """The lock files in ``root``, sorted by name (only names; nothing is read)."""
    try:
        names = sorted(e.name for e in root.iterdir() if e.is_file())
    except OSError:
        return []
    return [root / n for n in names if format_of(root / n) is not None]


def find(root: Path, *, setting: str | None = None) -> Path:
    """The lock file to build ``root`` from (see the module's contract); ``setting`` is the
    ``lock`` setting: an absolute path (``--lock``) or a file name in ``root``."""
    if setting:
        chosen = root / setting  # an absolute setting stays as it is
        via = "--lock" if Path(setting).is_absolute() else "[tool.slimline] lock"
        if format_of(chosen) is None:
            raise LockChoiceError(
                f"{chosen.name} is not a lock file slimline reads",
                doing=f"choosing the lock file ({via} {chosen})",
                hint="name a poetry.lock, uv.lock, pylock.toml or pylock.NAME.toml",
            )
        if not chosen.is_file():
            raise LockChoiceError(
                f"{chosen} does not exist", doing=f"choosing the lock file ({via})", hint=_HOW
            )
        return chosen
    found = candidates(root)
    if len(found) == 1:
        return found[0]
    if not found:
        raise LockChoiceError(
            f"{root} has no lock file (poetry.lock, uv.lock or pylock.toml)",
            doing=f"reading {root}",
            hint="run `poetry lock` (or `uv lock`) in the project first",
        )
    raise LockChoiceError(
        f"{root} has several lock files: {', '.join(p.name for p in found)}",
        doing="choosing the lock file",
        hint=_HOW,
    )


def load(path: Path, *, project_root: Path) -> Lock:
    """Read the lock at ``path`` in the format its name says."""
    kind = format_of(path)
    if kind == "uv":
        from slimline.project import uvlock

        return uvlock.load(path, project_root=project_root)
    if kind == "pylock":
        from slimline.project import pylock

        return pylock.load(path, project_root=project_root)
    from slimline.project import lockfile

    return lockfile.load(path)


def check_fresh(project: Project, lock: Lock) -> None:
    """Raise when ``lock`` was made for another pyproject.toml (where its format can tell)."""
    if lock.format == "poetry":
        from slimline.project import lockfile

        lockfile.check_fresh(project, lock)
    elif lock.format == "uv":
        from slimline.project import uvlock

        uvlock.check_fresh(project, lock)
