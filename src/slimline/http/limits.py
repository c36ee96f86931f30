"""Every limit slimline puts on a server, in one place (the README's "What slimline refuses").

Caps are on bytes read into memory, counted after undoing any ``Content-Encoding``; deadlines
are on wall-clock time, and the two deadlines can be set in the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from slimline.errors import InputError

__all__ = [
    "DEADLINE",
    "DOCUMENT_CAP",
    "DOWNLOAD_ATTEMPTS",
    "DOWNLOAD_DEADLINE",
    "DRAIN_LIMIT",
    "ENV_DEADLINE",
    "ENV_DOWNLOAD_DEADLINE",
    "ERROR_BODY_CAP",
    "IMAGE_CONFIG_CAP",
    "INDEX_FILES_CAP",
    "INDEX_PAGE_CAP",
    "MANIFEST_CAP",
    "MAX_REDIRECTS",
    "PACKAGES_TEXT_CAP",
    "READ_TIMEOUT",
    "RELEASE_CAP",
    "RETRIES",
    "Cap",
    "seconds_from_env",
]


@dataclass(frozen=True, slots=True)
class Cap:
    """The most bytes slimline reads of one kind of answer."""

    bytes: int
    what: str  # for messages: "an index page"


DOCUMENT_CAP = Cap(1 << 20, "a registry or token answer")  # /v2/, tokens, tag lists: a few KiB
INDEX_PAGE_CAP = Cap(16 << 20, "an index page")  # the largest real pages are about 5 MiB
MANIFEST_CAP = Cap(4 << 20, "an image manifest")  # the distribution spec's floor for registries
IMAGE_CONFIG_CAP = Cap(8 << 20, "an image config")  # real ones: a few KiB to about 1 MiB
RELEASE_CAP = Cap(16 << 20, "a Debian InRelease file")  # about 150 KiB for a stable release
PACKAGES_TEXT_CAP = Cap(512 << 20, "a decompressed Debian Packages index")  # about 60 MiB for main
INDEX_FILES_CAP = 100_000  # files listed on one index page (the largest real ones list about 12k)
ERROR_BODY_CAP = Cap(64 << 10, "an error answer")  # read for its message only; the rest is dropped
DRAIN_LIMIT = 1 << 20  # bytes read to reuse a connection; beyond it the connection is closed

READ_TIMEOUT = 30.0  # seconds a socket may stay silent
DEADLINE = 120.0  # seconds for one request, all of it (connect, redirects, retries, body)
DOWNLOAD_DEADLINE = 1800.0  # seconds for one download, all attempts
ENV_DEADLINE = "SLIMLINE_HTTP_DEADLINE"
ENV_DOWNLOAD_DEADLINE = "SLIMLINE_DOWNLOAD_DEADLINE"

RETRIES = 4  # per request: connection errors, 429 and 5xx
DOWNLOAD_ATTEMPTS = 5  # connections per download that keeps breaking off
MAX_REDIRECTS = 10


def seconds_from_env(name: str, default: float) -> float:
    """The positive number of seconds in the environment variable ``name``, else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InputError(
            f"{name}={text!r} is not a number of seconds",
            doing="reading the network settings",
            hint=f"set {name} to a positive number of seconds (default {default:g}), or unset it",
        )
    return value
