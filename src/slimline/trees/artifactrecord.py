"""Which locked artifact a distribution in the image was installed from.

Contract: every distribution installed from a locked artifact (a wheel, or the sdist a wheel was
built from) has ``<name>-<version>.dist-info/slimline_artifact.json`` holding the canonical JSON
``{"filename": "<artifact's file name>", "sha256": "<its hex sha256>"}``, the values the lock
promised and the fetch checked.  installer lists it in the distribution's RECORD, so its bytes
are covered by the same check as every other file.  It names no URL or index (those vary by
mirror and would make images differ per host), nothing but what the lock holds: the same lock
gives the same bytes.  ``slimline verify`` reads it (:func:`parse`) to tie the dist-info to the
lock.  This module is light: the build imports it on paths that must stay fast.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["FILENAME", "FORMAT", "Recorded", "parse", "render"]

FILENAME = "slimline_artifact.json"
FORMAT = "1"  # part of the keys of layers that hold the record: bump when its bytes change
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Recorded:
    filename: str
    sha256: str  # lower-case hex


def render(filename: str, sha256: str) -> bytes:
    """The record's bytes (canonical JSON, no newline)."""
    return json.dumps(
        {"filename": filename, "sha256": sha256}, sort_keys=True, separators=(",", ":")
    ).encode()


def parse(data: bytes) -> Recorded | None:
    """The record in ``data``, or None when it is not one (malformed JSON, wrong fields)."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or set(value) != {"filename", "sha256"}:
        return None
    name, digest = value["filename"], value["sha256"]
    if not isinstance(name, str) or not isinstance(digest, str) or not _HEX.fullmatch(digest):
        return None
    return Recorded(name, digest)
