"""HTTP for everything slimline fetches: one pooled client, and the limits a server cannot pass.

Takes URLs (and credentials, sent as headers only); returns bounded answers, or downloads
verified into the cache.  What a server can make slimline do is bounded (numbers in ``limits``):

- Sizes.  A document (index page, token, registry answer, InRelease) is read into memory only up
  to its :class:`Cap`; more is refused with :class:`TooLarge`, naming the URL and the cap.
  ``Content-Encoding`` is undone in bounded steps, so a gzip bomb meets the same cap.  An error
  answer is read only up to ``ERROR_BODY_CAP`` (for its message), and a connection is drained
  of at most ``DRAIN_LIMIT`` bytes before reuse, else closed.  An index page may list at most
  ``INDEX_FILES_CAP`` files, so that parsing it stays small too.  Downloads stream into the cache,
  hashed as they are written, as sent (``Accept-Encoding: identity``, nothing inflated); a
  known size is enforced; nothing half-written is kept.
- Time.  Each request (connect, redirects, retries, the whole body) must end within
  ``SLIMLINE_HTTP_DEADLINE`` seconds (default 120), each download (every attempt) within
  ``SLIMLINE_DOWNLOAD_DEADLINE`` (default 1800); a socket silent for 30 s fails sooner.
  Passing one is :class:`DeadlineExceeded`; a server that trickles cannot hold a build.
- Retries.  Connection errors, 429 and 5xx are retried (4 times) with exponential backoff,
  honouring ``Retry-After`` as long as the deadline allows (else the answer is reported as it
  is).  A download that breaks off is asked again (5 connections in all), from where it stopped
  when the server supports ranges, else from the start; the hash covers the whole file.
- Redirects.  At most 10, only to http(s) URLs (:class:`RedirectRefused`); the ``Authorization``
  header is not sent on to another scheme, host or port.
- Credentials.  A 401 says whether credentials were sent and where they came from
  (``BasicAuth.source``), or that a redirect led to a host they are not sent to; never a secret.

Modules, bottom up: ``limits`` (the numbers), ``deadlines`` (deadline scopes, the watchdog that
ends overdue connections, bounded drains, retries that keep the deadline), ``resume``
(downloads that survive broken connections), ``errors`` (errors and their messages),
``client`` (:class:`Http` and the readers of its answers).
"""

from __future__ import annotations

from slimline.http.client import BasicAuth, Http, basic_header, read_capped, release, strip_userinfo
from slimline.http.errors import DeadlineExceeded, HttpError, RedirectRefused, TooLarge, status_error
from slimline.http.limits import (
    DEADLINE,
    DOCUMENT_CAP,
    DOWNLOAD_DEADLINE,
    ERROR_BODY_CAP,
    IMAGE_CONFIG_CAP,
    INDEX_FILES_CAP,
    INDEX_PAGE_CAP,
    MANIFEST_CAP,
    PACKAGES_TEXT_CAP,
    RELEASE_CAP,
    Cap,
)

__all__ = [
    "DEADLINE",
    "DOCUMENT_CAP",
    "DOWNLOAD_DEADLINE",
    "ERROR_BODY_CAP",
    "IMAGE_CONFIG_CAP",
    "INDEX_FILES_CAP",
    "INDEX_PAGE_CAP",
    "MANIFEST_CAP",
    "PACKAGES_TEXT_CAP",
    "RELEASE_CAP",
    "BasicAuth",
    "Cap",
    "DeadlineExceeded",
    "Http",
    "HttpError",
    "RedirectRefused",
    "TooLarge",
    "basic_header",
    "read_capped",
    "release",
    "status_error",
    "strip_userinfo",
]
