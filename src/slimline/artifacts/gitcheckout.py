"""A git dependency's source: exactly the locked commit, checked out from its repository.

Contract of :func:`checkout_git`: ``dest`` holds the tree at ``commit`` (with submodules), its
HEAD compared with ``commit`` before anything is built from it; otherwise :class:`FetchError`
(the URL, credentials or commit are wrong), or :class:`GitUnreachable` when git could not reach
the host (exit status 4, a network failure: the lock is not at fault).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from slimline.errors import ExitStatus, SlimlineError, redact

__all__ = ["FetchError", "GitUnreachable", "checkout_git"]


class FetchError(SlimlineError):
    """A source could not be obtained (missing path, git failure, file not on the index)."""

    exit_status = ExitStatus.INPUT


class GitUnreachable(FetchError):
    """git could not reach the repository's host (a network failure, not the lock's)."""

    exit_status = ExitStatus.NETWORK


# git's words (curl's and ssh's) for a host it could not reach
_UNREACHABLE = re.compile(
    r"Could not resolve host|Failed to connect|Connection (refused|timed out)|unreachable"
)


def checkout_git(url: str, *, commit: str, dest: Path) -> Path:
    """Check out exactly ``commit`` of ``url`` into ``dest`` (with submodules); return ``dest``.

    Fetches only that commit when the server allows it, else the whole repository.  The
    checked-out HEAD is compared with ``commit`` before anything is built from it.
    """
    doing = f"checking out {redact(url)} at {commit}"

    def git(*args: str, cwd: Path | None = dest, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            offline = _UNREACHABLE.search(proc.stderr)
            raise (GitUnreachable if offline else FetchError)(
                f"git {args[0]} failed: {redact(proc.stderr.strip()[-2000:])}",
                doing=doing,
                hint="a git dependency is fetched from its host at build time: check the network and "
                "proxy, or vendor it as a path dependency"
                if offline
                else "check the repository URL, your git credentials and that the locked commit exists",
            )
        return proc

    if shutil.which("git") is None:
        raise FetchError("git is not installed", doing=doing, hint="install git")
    dest.mkdir(parents=True, exist_ok=True)
    git("init", "-q")
    git("remote", "add", "origin", url)
    if git("fetch", "-q", "--depth", "1", "origin", commit, check=False).returncode != 0:
        git("fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*")
    git("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit)
    head = git("rev-parse", "HEAD").stdout.strip()
    if head != commit and not (len(commit) >= 7 and head.startswith(commit)):
        raise FetchError(f"HEAD is {head}, not the locked commit", doing=doing, hint="re-lock (poetry lock)")
    if (dest / ".gitmodules").exists():
        git("submodule", "update", "--init", "--recursive", "-q")
    return dest
