"""File names that come from servers, locks, URLs and build backends: checked before any use.

Contract: a name is used only after :func:`wheel_name` or :func:`archive_name` returned it.

* A wheel's name must parse as a wheel file name (:func:`packaging.utils.parse_wheel_filename`)
  and be made of the characters that grammar's parts use (letters, digits, ``.``, ``_``,
  ``+``, ``!`` and the ``-`` between parts).  It names a file in the cache
  (``wheels/<sha256>/<name>``, :mod:`slimline.artifacts.wheelcache`) because installers read
  the distribution and version from it; no ``/``, ``..`` or NUL can be in it.
* A source archive's name only chooses its unpacker (:mod:`slimline.artifacts.unpack`) and is
  never a path: it must be made of the same characters and end in a known archive suffix.
  Archives from URLs (``v1.2.zip``) need not follow the sdist grammar.

Anything else raises :class:`BadFileName`.  Cache paths otherwise come from digests only.
"""

from __future__ import annotations

import re

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from slimline.artifacts.unpack import ARCHIVES
from slimline.errors import SlimlineError

__all__ = ["BadFileName", "archive_name", "is_archive", "wheel_name"]

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")


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
    if not _PLAIN.fullmatch(name) or not name.endswith(".whl"):
        raise BadFileName(name, kind="wheel", what=what)
    try:
        parse_wheel_filename(name)
    except InvalidWheelFilename:
        raise BadFileName(name, kind="wheel", what=what) from None
    return name


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVES)


def archive_name(name: str, *, what: str) -> str:
    """``name`` when it is a plain source archive name (see the module contract)."""
    if not _PLAIN.fullmatch(name) or not is_archive(name):
        raise BadFileName(name, kind="source archive", what=what)
    return name
