"""The project's git revision, read from ``.git`` directly (no ``git`` process, nothing written).

Contract of :func:`revision`: the 40-hex commit that ``HEAD`` names in the git checkout holding
``root`` (the first ``.git`` found in ``root`` or at most :data:`MAX_UP` parents above it; a
``.git`` file pointing at a worktree's git directory is followed), through a loose ref or
``packed-refs``; None when there is no checkout or it cannot be read.  Every file read is
capped (:data:`MAX_FILE`): a hostile checkout cannot make it read much.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["revision"]

MAX_UP = 32  # parent directories looked at for a .git
MAX_FILE = 4 << 20  # bytes read of HEAD, a ref, a .git file or packed-refs
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def revision(root: Path) -> str | None:
    git = _git_dir(root)
    if git is None:
        return None
    head = _read(git / "HEAD")
    if head is None:
        return None
    if _SHA.fullmatch(head):
        return head
    if not head.startswith("ref: "):
        return None
    name = head.removeprefix("ref: ").strip()
    if not re.fullmatch(r"refs/[A-Za-z0-9._/+-]+", name) or ".." in name:
        return None
    common = _common_dir(git)
    for where in dict.fromkeys((git, common)):
        loose = _read(where / name)
        if loose is not None and _SHA.fullmatch(loose):
            return loose
    packed = _read(common / "packed-refs") or ""
    for line in packed.splitlines():
        sha, _, ref = line.partition(" ")
        if ref.strip() == name and _SHA.fullmatch(sha):
            return sha
    return None


def _git_dir(root: Path) -> Path | None:
    here = root.resolve()
    for _ in range(MAX_UP):
        dot = here / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            text = _read(dot) or ""
            if text.startswith("gitdir: "):
                return (here / text.removeprefix("gitdir: ").strip()).resolve()
            return None
        if here.parent == here:
            return None
        here = here.parent
    return None


def _common_dir(git: Path) -> Path:
    """A linked worktree's shared git directory (``commondir``), else ``git`` itself."""
    text = _read(git / "commondir")
    return (git / text).resolve() if text else git


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            return f.read(MAX_FILE).decode("utf-8", errors="replace").strip()
    except OSError:
        return None
