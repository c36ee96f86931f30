"""File names that come from servers, locks, URLs and build backends: checked before any use.

Contract: a name is used only after :func:`wheel_name` or :func:`archive_name` returned it.

* A wheel's name must follow the wheel file name grammar (PEP 427: name, version, optional
  build tag starting with a digit, python, abi and platform tags, ``.whl``), each part made of
  the characters the grammar allows (letters, digits, ``.``, ``_``, and ``+``, ``!`` in the
  version); checked by a regular expression, so that a rebuild served from the memo, which
  checks the names of cached wheels too, does not load ``packaging.tags``.  It names a file in the cache
  (``wheels/<sha256>/<name>``, :mod:`slimline.artifacts.wheelcache`) because installers read
  the distribution and version from it; no ``/``, ``..`` or NUL can be in it.
* A source archive's name only chooses its unpacker (:mod:`slimline.artifacts.unpack`) and is
  never a path: it must be made of the same characters and end in a known archive suffix.
  Archives from URLs (``v1.2.zip``) need not follow the sdist grammar.

Anything else raises :class:`BadFileName`.  Cache paths otherwise come from digests only.
"""

from __future__ import annotations

import re

from slimline.artifacts.unpack import ARCHIVES
from slimline.errors import SlimlineError

__all__ = ["BadFileName", "archive_name", "is_archive", "wheel_name"]

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")
_WHEEL = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?"  # distribution
    r"-[A-Za-z0-9][A-Za-z0-9._+!]*"  # version
    r"(?:-[0-9][A-Za-z0-9_.]*)?"  # build tag
    r"(?:-[A-Za-z0-9_.]+){3}"  # python, abi and platform tags
    r"\.whl"
)


class BadFileName(SlimlineError):
    """A file name from elsewhere that is not a valid wheel or archive name."""

    def __init__(self, name: str, *, kind: str, what: str) -> None:
        super().__init__(
            f"{name[:200]!r} is not a valid {kind} file name",
            doing=what,
            hint="the lock, the URL or the server names the file wrongly (or maliciously); "
            "fix the dependency and re-lock",
        )
        self.name = name


def wheel_name(name: str, *, what: str) -> str:
    """``name`` when it is a valid wheel file name (see the module contract)."""
    if not _WHEEL.fullmatch(name):
        raise BadFileName(name, kind="wheel", what=what)
    return name


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVES)


def archive_name(name: str, *, what: str) -> str:
    """``name`` when it is a plain source archive name (see the module contract)."""
    if not _PLAIN.fullmatch(name) or not is_archive(name):
        raise BadFileName(name, kind="source archive", what=what)
    return name
