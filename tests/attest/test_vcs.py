"""The git revision read from ``.git`` is the one ``git`` itself reports, in every layout git uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

from slimline.attest import vcs
from tests.support import tool


def _git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    done = subprocess.run([tool("git"), *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_revision_of_a_branch_a_packed_ref_a_detached_head_and_a_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub" / "project").mkdir(parents=True)
    assert vcs.revision(repo / "sub" / "project") is None  # no checkout (up to /tmp)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a").write_text("a\n")
    _git(repo, "add", "a")
    _git(repo, "commit", "-q", "-m", "one")
    first = _git(repo, "rev-parse", "HEAD")
    assert vcs.revision(repo / "sub" / "project") == first  # found from a subdirectory
    _git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert vcs.revision(repo) == first
    (repo / "a").write_text("b\n")
    _git(repo, "commit", "-q", "-am", "two")
    second = _git(repo, "rev-parse", "HEAD")
    assert vcs.revision(repo) == second != first
    _git(repo, "checkout", "-q", "--detach", first)
    assert vcs.revision(repo) == first
    _git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "wt"), second)
    assert vcs.revision(tmp_path / "wt") == second


def test_a_broken_checkout_has_no_revision(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/../../../etc/passwd\n")
    assert vcs.revision(tmp_path) is None
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert vcs.revision(tmp_path) is None  # the branch has no commit yet
