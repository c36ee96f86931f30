"""What every stage that does I/O shares for one command: the cache, the reporter, the network.

One :class:`Context` is made per command (by :mod:`slimline.cli`) and passed down instead of the
same three or four parameters everywhere.  Functions that need only the cache take the cache.

Credentials a caller already holds (the Poetry plugin: Poetry's own for the project's sources)
travel in :attr:`Context.credentials` as :class:`SourceAuth` values, in memory only; they are
consulted first by :func:`slimline.artifacts.sources.credentials_for`.

Contract: :attr:`Context.http` is made on first use (loading the network client costs time that
a rebuild served from the memo never needs) and is shared by every thread of the command.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from slimline.cache.store import Cache
from slimline.report import Quiet, Reporter

if TYPE_CHECKING:
    from slimline.http import BasicAuth, Http

__all__ = ["Context", "SourceAuth"]


@dataclass(frozen=True, slots=True)
class SourceAuth:
    """Credentials for the package source ``name`` at ``url``: used for that source by name, and
    (as Poetry does) for other URLs on the same host; never for ``http://`` when ``url`` is https."""

    name: str
    url: str
    auth: BasicAuth  # its repr hides the password


@dataclass(frozen=True)
class Context:
    cache: Cache
    report: Reporter = field(default_factory=Quiet)
    insecure: tuple[str, ...] = ()  # registry hosts allowed plain HTTP or unverified TLS
    given_http: Http | None = None  # a client to use instead of making one
    credentials: tuple[SourceAuth, ...] = field(default=(), repr=False)  # handed over in memory
    # shared by every context derived with with_report() (dataclasses.replace keeps it)
    _shared: _Shared = field(default_factory=lambda: _Shared(), repr=False, compare=False)

    @property
    def http(self) -> Http:
        """The command's pooled HTTP client: ``given_http``, else one made on first use."""
        if self.given_http is not None:
            return self.given_http
        return self._shared.http(self.report)

    def with_report(self, report: Reporter) -> Context:
        """The same context reporting to ``report`` (the HTTP client stays shared)."""
        return replace(self, report=report)


class _Shared:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: Http | None = None

    def http(self, report: Reporter) -> Http:
        """The client, made on first use; its downloads show progress on that first ``report``
        (a nested reporter passes progress on to the command's)."""
        with self._lock:
            if self._http is None:
                from slimline.http import Http

                self._http = Http(report=report)
            return self._http
