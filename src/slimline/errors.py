"""The root of every error slimline raises on purpose.

Contract: ``str(err)`` is the whole message a user sees: what slimline was doing, what went
wrong and what to do about it.  Subclasses carry the data as attributes so that callers and
tests can act on it without parsing text.  Raise with ``from cause`` to keep the cause.
Errors never contain a credential: callers redact URLs with :func:`redact` before they pass them in.
"""

from __future__ import annotations

import errno
import re
from enum import IntEnum
from typing import ClassVar

__all__ = [
    "RELOCK_HINT",
    "ExitStatus",
    "HashMismatch",
    "InputError",
    "NotVerified",
    "SlimlineError",
    "UnsafePath",
    "UsageError",
    "VerificationFailed",
    "describe_os_error",
    "os_hint",
    "redact",
    "without_credentials",
]


class ExitStatus(IntEnum):
    """The exit statuses of the command line, one per kind of failure (README: "Exit statuses").

    The numbers are a public interface: scripts and CI act on them.  Never renumber; add."""

    OK = 0
    ERROR = 1  # any other failure: the cache, an output, a malformed base image, the host
    USAGE = 2  # the command line (argparse's own status, and options checked after parsing)
    INPUT = 3  # the project, its lock or settings, or what they name, is wrong or unusable
    NETWORK = 4  # an index, a Debian mirror, a registry or a git host could not be reached or refused
    BUILD = 5  # a package (or the project) failed to build from source
    VERIFICATION = 6  # bytes or signatures are not what was promised; `verify` found a fault
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class SlimlineError(Exception):
    """An error with a message for users.

    ``doing``: what slimline was doing ("downloading requests 2.32.3");
    ``problem``: what went wrong; ``hint``: what the user can do (may be empty).
    ``exit_status`` (a class attribute): the kind of failure, the command's exit status.
    """

    exit_status: ClassVar[ExitStatus] = ExitStatus.ERROR

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


class UsageError(SlimlineError):
    """An option's value that the command line's parser could not check (a JSON list, ...)."""

    exit_status = ExitStatus.USAGE


class InputError(SlimlineError):
    """The project, its lock or its settings (or a file or variable they name) is wrong or unusable.
    Stages with their own error classes (``ProjectError``, ``SettingsError``...) set the same status."""

    exit_status = ExitStatus.INPUT


class VerificationFailed(SlimlineError):
    """Something is not what it was promised to be: a digest, a signature, an attestation."""

    exit_status = ExitStatus.VERIFICATION


RELOCK_HINT = (
    "the file was changed after it was locked or signed; do not trust it. "
    "If the source really re-published it, re-lock (poetry lock) and build again."
)


class HashMismatch(VerificationFailed):
    """Bytes that are not the ones promised: by a lock file, a signed index, an image's
    descriptor or config, or a cache file's name.

    ``what``: the thing checked ("six-1.16.0-py2.py3-none-any.whl", "layer sha256:…");
    ``expected`` and ``actual``: what was promised and what was found, as ``sha256:<hex>``
    digests or as sizes ("1234 bytes"); ``package``: the distribution or Debian package the
    bytes belong to, "" when none.  ``doing`` and ``hint`` come from the caller, who knows who
    made the promise: :data:`RELOCK_HINT` (the default) fits a lock file or signed index, not
    an image blob.  (``file`` is the older name of ``what``, kept for the callers that use it.)
    """

    def __init__(
        self,
        *,
        expected: str,
        actual: str,
        what: str = "",
        package: str = "",
        doing: str = "",
        hint: str = RELOCK_HINT,
        file: str = "",
    ) -> None:
        what = what or file
        subject = f"{package} file {what}" if package and package != what else what
        super().__init__(
            f"hash mismatch for {subject}: expected {expected}, got {actual}",
            doing=doing or f"verifying {what}",
            hint=hint,
        )
        self.what = what
        self.package = package
        self.expected = expected
        self.actual = actual

    @property
    def file(self) -> str:
        return self.what


class UnsafePath(SlimlineError):
    """An archive entry or configured path that slimline refuses to write: by default because it
    would escape its root; ``reason`` says otherwise (a device node, a link through a link)."""

    def __init__(self, *, path: str, archive: str, reason: str = "it escapes the root") -> None:
        super().__init__(
            f"refusing entry {path!r}: {reason}",
            doing=f"reading {archive}",
            hint="the archive is malformed or malicious; check where it came from",
        )
        self.path = path
        self.archive = archive
        self.reason = reason


class NotVerified(VerificationFailed):
    """An image is not what it claims to be: a file differs from the package it came from, a
    signature does not verify ...  ``problems`` lists each (a file and its package); the command
    line exits with :attr:`exit_status` (6, as every verification failure)."""

    MAX_SHOWN = 50

    def __init__(self, problems: list[str], *, doing: str, hint: str = "") -> None:
        self.problems = tuple(problems)
        shown = "\n  ".join(self.problems[: self.MAX_SHOWN])
        more = len(self.problems) - self.MAX_SHOWN
        super().__init__(
            f"{len(self.problems)} problem(s):\n  {shown}" + (f"\n  (and {more} more)" if more > 0 else ""),
            doing=doing,
            hint=hint or "do not run this image: it is not what was built from the lock",
        )


# the authority's userinfo: everything up to the last "@" before the path, query or fragment
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@")


def redact(text: str) -> str:
    """Replace ``user:password@`` in every URL in ``text`` with ``***@`` (for messages and logs)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


_WHERE_HINT = "check the owner and mode of that path, or use a directory you can write to"
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space there, or use a directory on another disk",
    errno.EDQUOT: "the disk quota is used up: free space there, or use a directory on another disk",
    errno.EROFS: "that file system is mounted read-only: use a directory on a writable one",
    errno.EACCES: _WHERE_HINT,
    errno.EPERM: _WHERE_HINT,
    errno.EMFILE: "too many files are open: raise the limit (ulimit -n)",
    errno.ENFILE: "the system has too many files open: try again when fewer are",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "a symbolic link on that path points back at itself",
    errno.EIO: "the disk reported an input/output error: check it (dmesg)",
}


def describe_os_error(err: OSError) -> str:
    """What an :class:`OSError` means, and on which path: "No space left on device (/x/y)"."""
    meaning = err.strerror or (errno.errorcode.get(err.errno, "") if err.errno else "") or str(err)
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{meaning} ({' -> '.join(paths)})" if paths else meaning


def os_hint(err: OSError) -> str:
    """What a user can do about ``err`` ("" when slimline cannot tell)."""
    return _OS_HINTS.get(err.errno or 0, "")


def without_credentials(url: str) -> str:
    """``url`` with its ``user:password@`` removed, for what is recorded (PEP 610's
    ``direct_url.json``, labels).  A bare ``git@`` user is kept: PEP 610 allows it, and an
    ssh URL needs it."""
    m = _USERINFO.match(url)
    if m is None or url[len(m.group("scheme")) : m.end()] == "git@":
        return url
    return m.group("scheme") + url[m.end() :]
