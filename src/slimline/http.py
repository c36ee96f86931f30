"""One pooled HTTP client for everything slimline downloads.

TLS is verified with the system trust store (``truststore``; on Linux this honours
``SSL_CERT_FILE``/``SSL_CERT_DIR``), so corporate TLS interception works like it does for
curl and apt.  Connection errors, 429 and 5xx are retried with exponential backoff,
honouring ``Retry-After``.  Responses are streamed; :meth:`Http.download` hashes while it
writes into the content-addressed cache and refuses bytes that do not match.

Credentials never appear in messages: every URL in an error is passed through
:func:`slimline.errors.redact`, and ``auth`` is sent as a header, not put into URLs.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # ssl, truststore and urllib3 cost ~0.1 s to import: loaded on first request
    import ssl

    import urllib3

from slimline import __version__
from slimline.cache.store import Cache
from slimline.errors import SlimlineError, redact

__all__ = ["BasicAuth", "Http", "HttpError", "basic_header", "strip_userinfo"]

USER_AGENT = f"slimline/{__version__}"


class HttpError(SlimlineError):
    """A request failed: ``status`` is the HTTP status, or 0 when no response came."""

    def __init__(self, *, url: str, status: int, problem: str, doing: str = "", hint: str = "") -> None:
        safe = redact(url)
        super().__init__(problem, doing=doing or f"fetching {safe}", hint=hint)
        self.url = safe
        self.status = status


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: str
    password: str

    def __repr__(self) -> str:  # never show the password
        return f"BasicAuth(username={self.username!r}, password='***')"


def basic_header(auth: BasicAuth) -> str:
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    return f"Basic {token}"


def strip_userinfo(url: str) -> tuple[str, BasicAuth | None]:
    """Split ``https://user:pw@host/x`` into ``https://host/x`` and the credentials."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    from urllib.parse import unquote

    auth = BasicAuth(unquote(parts.username), unquote(parts.password or ""))
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), auth


def _context() -> ssl.SSLContext:
    import ssl

    import truststore

    return cast("ssl.SSLContext", truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


def _unverified_context() -> ssl.SSLContext:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Http:
    """Thread-safe; share one per build."""

    def __init__(
        self, *, timeout: float = 30.0, retries: int = 4, backoff: float = 0.5, verify: bool = True
    ) -> None:
        self._settings = (timeout, retries, backoff)
        self._verify = verify
        self._unverified: Http | None = None
        self._pool_: Any = None  # urllib3.PoolManager, made on first request
        self._retry_: Any = None
        self._lock = threading.Lock()

    def _pool(self) -> tuple[urllib3.PoolManager, urllib3.Retry]:
        with self._lock:
            if self._pool_ is None:
                import urllib3

                timeout, retries, backoff = self._settings
                self._retry_ = urllib3.Retry(
                    total=retries,
                    connect=retries,
                    read=retries,
                    status=retries,
                    backoff_factor=backoff,
                    status_forcelist=(429, 500, 502, 503, 504),
                    allowed_methods=None,  # PUT/PATCH/POST are idempotent per upload session
                    respect_retry_after_header=True,
                    raise_on_status=False,
                    redirect=5,
                )
                self._pool_ = urllib3.PoolManager(
                    num_pools=32,
                    maxsize=8,
                    ssl_context=_context() if self._verify else _unverified_context(),
                    retries=self._retry_,
                    timeout=urllib3.Timeout(connect=min(timeout, 15.0), read=timeout),
                    headers={"User-Agent": USER_AGENT},
                )
            return self._pool_, self._retry_

    def unverified(self) -> Http:
        """A client with the same settings that does NOT verify TLS certificates.

        Only for hosts the user named as insecure (``--insecure-registry``); made once, then shared.
        """
        with self._lock:
            if self._unverified is None:
                timeout, retries, backoff = self._settings
                self._unverified = Http(timeout=timeout, retries=retries, backoff=backoff, verify=False)
            return self._unverified

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
        auth: BasicAuth | None = None,
        stream: bool = True,
        redirect: bool = True,
        retries: urllib3.Retry | bool | None = None,
        doing: str = "",
    ) -> urllib3.BaseHTTPResponse:
        """Send a request; return the response whatever its status (callers judge it).

        With ``stream`` the body is not preloaded: read it and call ``release_conn()``.
        Raises :class:`HttpError` (status 0) when no response could be had at all.
        """
        url, url_auth = strip_userinfo(url)
        hdrs = dict(headers or {})
        auth = auth or url_auth
        if auth is not None and "Authorization" not in hdrs:
            hdrs["Authorization"] = basic_header(auth)
        pool, default_retry = self._pool()
        import urllib3  # loaded by _pool(); bound here for the except clauses

        try:
            return pool.request(
                method,
                url,
                headers=hdrs,
                body=body,
                preload_content=not stream,
                redirect=redirect,
                retries=default_retry if retries is None else retries,
            )
        except urllib3.exceptions.MaxRetryError as err:
            reason = err.reason
            text = f"{type(reason).__name__}: {reason}" if reason else str(err)
            hint = "check the network, a proxy, or the host name"
            if isinstance(reason, urllib3.exceptions.SSLError):
                hint = (
                    "the TLS certificate was not trusted; add your CA to the system trust store "
                    "or point SSL_CERT_FILE at a bundle that holds it"
                )
            raise HttpError(url=url, status=0, problem=redact(text), doing=doing, hint=hint) from None
        except urllib3.exceptions.HTTPError as err:
            raise HttpError(
                url=url,
                status=0,
                problem=redact(str(err)),
                doing=doing,
                hint="check the network and try again",
            ) from None

    def get_bytes(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: BasicAuth | None = None,
        doing: str = "",
    ) -> bytes:
        """GET a small document (an index page); raise :class:`HttpError` unless 200."""
        resp = self.request("GET", url, headers=headers, auth=auth, stream=False, doing=doing)
        if resp.status != 200:
            raise _status_error(url, resp.status, doing=doing)
        return resp.data

    @contextmanager
    def stream(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: BasicAuth | None = None,
        doing: str = "",
    ) -> Iterator[urllib3.BaseHTTPResponse]:
        """GET ``url`` and yield the 200 response for streaming reads; always released."""
        resp = self.request("GET", url, headers=headers, auth=auth, stream=True, doing=doing)
        try:
            if resp.status != 200:
                raise _status_error(url, resp.status, doing=doing)
            yield resp
        finally:
            resp.drain_conn()
            resp.release_conn()

    def download(
        self,
        url: str,
        *,
        cache: Cache,
        sha256: str | None,
        what: str,
        package: str = "",
        auth: BasicAuth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Path:
        """Download into the cache's blob store, verifying ``sha256`` (hex) while streaming.

        Returns the blob path.  If the blob is already cached (and still hashes right) no
        request is made.  On a mismatch nothing is stored and :class:`HashMismatch` is raised.
        """
        if sha256 is not None:
            hit = cache.verified_blob(sha256, what=what, package=package)
            if hit is not None:
                return hit
        doing = f"downloading {what}"
        with self.stream(url, headers=headers, auth=auth, doing=doing) as resp:
            digest, _ = cache.put_stream(cast(BinaryIO, resp), expected=sha256, what=what, package=package)
        return cache.blob_path(digest)


def _status_error(url: str, status: int, *, doing: str) -> HttpError:
    hints = {
        401: "the server wants credentials; configure them for this source (see the README, 'Credentials')",
        403: "the credentials were refused or lack access",
        404: "the file is not there; is the URL or the index right?",
    }
    return HttpError(
        url=url,
        status=status,
        problem=f"HTTP {status}",
        doing=doing,
        hint=hints.get(status, "try again later, or check the server"),
    )
