"""The root of every error slimline raises on purpose.

Contract: ``str(err)`` is the whole message a user sees: what slimline was doing, what went
wrong and what to do about it.  Subclasses carry the data as attributes so that callers and
tests can act on it without parsing text.  Raise with ``from cause`` to keep the cause.
Errors never contain a credential: callers redact URLs with :func:`redact` before they pass them in.
"""

from __future__ import annotations

import re

__all__ = ["HashMismatch", "SlimlineError", "UnsafePath", "redact"]


class SlimlineError(Exception):
    """An error with a message for users.

    ``doing``: what slimline was doing ("downloading requests 2.32.3");
    ``problem``: what went wrong; ``hint``: what the user can do (may be empty).
    """

    def __init__(self, problem: str, *, doing: str = "", hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.doing = doing
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.doing}: {self.problem}" if self.doing else self.problem
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class HashMismatch(SlimlineError):
    """Downloaded or cached bytes do not have the hash that a lock file or signed index promises."""

    def __init__(self, *, package: str, file: str, expected: str, actual: str, doing: str = "") -> None:
        super().__init__(
            f"hash mismatch for {package} file {file}: expected {expected}, got {actual}",
            doing=doing or f"verifying {file}",
            hint="the file was changed after it was locked or signed; do not trust it. "
            "If the source really re-published it, re-lock (poetry lock) and build again.",
        )
        self.package = package
        self.file = file
        self.expected = expected
        self.actual = actual


class UnsafePath(SlimlineError):
    """An archive entry or configured path that would escape its root."""

    def __init__(self, *, path: str, archive: str) -> None:
        super().__init__(
            f"refusing entry {path!r}: it escapes the root",
            doing=f"reading {archive}",
            hint="the archive is malformed or malicious; check where it came from",
        )
        self.path = path
        self.archive = archive


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """Remove ``user:password@`` from every URL in ``text``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
