"""The pooled HTTP client (:class:`Http`) and the readers of what it gets back.

TLS is verified with the system trust store (``truststore``; on Linux this honours
``SSL_CERT_FILE``/``SSL_CERT_DIR``), so corporate TLS interception works like it does for
curl and apt.  Credentials never appear in messages: every URL in an error is passed through
:func:`slimline.errors.redact`, and ``auth`` is sent as a header, not put into URLs.  The limits
it keeps are the package's contract (:mod:`slimline.http`).
"""

from __future__ import annotations

import base64
import threading
import weakref
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:  # ssl, truststore and urllib3 cost ~0.1 s to import: loaded on first request
    import ssl

    import urllib3

from slimline import __version__
from slimline.cache.store import Cache
from slimline.errors import redact
from slimline.http import deadlines, resume
from slimline.http.errors import (
    DeadlineExceeded,
    HttpError,
    TooLarge,
    download_error,
    status_error,
    unanswered,
)
from slimline.http.limits import (
    DEADLINE,
    DOCUMENT_CAP,
    DOWNLOAD_ATTEMPTS,
    DOWNLOAD_DEADLINE,
    DRAIN_LIMIT,
    ENV_DEADLINE,
    ENV_DOWNLOAD_DEADLINE,
    ERROR_BODY_CAP,
    MAX_REDIRECTS,
    READ_TIMEOUT,
    RETRIES,
    Cap,
    seconds_from_env,
)
from slimline.report import Reporter

__all__ = ["BasicAuth", "Http", "basic_header", "read_capped", "release", "strip_userinfo"]

USER_AGENT = f"slimline/{__version__}"


@dataclass(frozen=True, slots=True)
class BasicAuth:
    username: str
    password: str
    source: str = field(default="", compare=False)  # where it was found, for messages

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
    auth = BasicAuth(
        unquote(parts.username), unquote(parts.password or ""), source="the URL's user:password@"
    )
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
    """Thread-safe; one per build.  Unset deadlines come from the environment; ``report`` shows downloads."""

    def __init__(
        self,
        *,
        timeout: float = READ_TIMEOUT,
        retries: int = RETRIES,
        backoff: float = 0.5,
        verify: bool = True,
        deadline: float | None = None,
        download_deadline: float | None = None,
        report: Reporter | None = None,
    ) -> None:
        self._settings = (timeout, retries, backoff)
        self.report = report
        self._deadlines = (
            deadline or seconds_from_env(ENV_DEADLINE, DEADLINE),
            download_deadline or seconds_from_env(ENV_DOWNLOAD_DEADLINE, DOWNLOAD_DEADLINE),
        )
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
                self._retry_ = self.retry(retries, backoff=backoff)
                self._pool_ = urllib3.PoolManager(
                    num_pools=32,
                    maxsize=8,
                    ssl_context=_context() if self._verify else _unverified_context(),
                    retries=self._retry_,
                    timeout=urllib3.Timeout(connect=min(timeout, 15.0), read=timeout),
                    headers={"User-Agent": USER_AGENT},
                )
                self._pool_.pool_classes_by_scheme = deadlines.pool_classes(DRAIN_LIMIT)
            return self._pool_, self._retry_

    @staticmethod
    def retry(retries: int, *, backoff: float = 0.5) -> urllib3.Retry:
        """A retry policy that keeps the deadline, the redirect limit and the http(s)-only rule;
        ``retries=0`` for a probe that is not worth retrying."""
        return deadlines.retry_class()(
            total=None,
            connect=retries,
            read=retries,
            status=retries,
            other=retries,
            redirect=MAX_REDIRECTS,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,  # PUT/PATCH/POST are idempotent per upload session
            respect_retry_after_header=True,
            raise_on_status=False,
        )

    def deadline(self, *, download: bool = False) -> deadlines.Deadline:
        """A new deadline for one request, or for one download."""
        if download:
            return deadlines.Deadline(self._deadlines[1], setting=ENV_DOWNLOAD_DEADLINE)
        return deadlines.Deadline(self._deadlines[0], setting=ENV_DEADLINE)

    def unverified(self) -> Http:
        """A client with the same settings that does NOT verify TLS certificates.

        Only for hosts the user named as insecure (``--insecure-registry``); made once, then shared.
        """
        with self._lock:
            if self._unverified is None:
                timeout, retries, backoff = self._settings
                self._unverified = Http(
                    timeout=timeout,
                    retries=retries,
                    backoff=backoff,
                    verify=False,
                    deadline=self._deadlines[0],
                    download_deadline=self._deadlines[1],
                    report=self.report,
                )
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
        cap: Cap = DOCUMENT_CAP,
    ) -> urllib3.BaseHTTPResponse:
        """Send a request; return the response whatever its status (callers judge it).

        With ``stream`` the body is left to the caller: read it (:func:`read_capped`, or in
        chunks) and :func:`release` it.  Without, it is read now: up to ``cap`` for a 2xx
        (more raises :class:`TooLarge`), up to :data:`ERROR_BODY_CAP` otherwise.  The request
        runs under the thread's deadline scope if there is one, else under a new request
        deadline.  Raises :class:`HttpError` (status 0) when no response could be had at all.
        """
        url, url_auth = strip_userinfo(url)
        hdrs = dict(headers or {})
        auth = auth or url_auth
        if auth is not None and "Authorization" not in hdrs:
            hdrs["Authorization"] = basic_header(auth)
        pool, default_retry = self._pool()
        import urllib3  # loaded by _pool(); bound here for the except clauses

        with deadlines.scope(deadlines.current() or self.deadline()) as deadline:
            try:
                resp = pool.request(
                    method,
                    url,
                    headers=hdrs,
                    body=body,
                    preload_content=False,
                    redirect=redirect,
                    retries=default_retry if retries is None else retries,
                )
            except deadlines.Expired:
                raise DeadlineExceeded(url=url, deadline=deadline, doing=doing) from None
            except urllib3.exceptions.MaxRetryError as err:
                raise unanswered(url, err.reason or err, deadline, doing) from None
            except urllib3.exceptions.HTTPError as err:
                raise unanswered(url, err, deadline, doing) from None
        _DEADLINES[resp] = deadline
        if method == "HEAD":  # no body, and its Content-Length is the resource's: nothing to cap
            resp.drain_conn()
            return resp
        return resp if stream else _preloaded(resp, url=url, cap=cap, doing=doing)

    def get_bytes(
        self,
        url: str,
        *,
        cap: Cap = DOCUMENT_CAP,
        headers: Mapping[str, str] | None = None,
        auth: BasicAuth | None = None,
        doing: str = "",
    ) -> bytes:
        """GET a document of at most ``cap``; raise :class:`HttpError` unless 200."""
        resp = self.request("GET", url, headers=headers, auth=auth, stream=False, doing=doing, cap=cap)
        if resp.status != 200:
            raise status_error(url, resp.status, doing=doing, auth=auth, final=resp.geturl() or "")
        return resp.data

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
        size: int | None = None,
    ) -> Path:
        """Download into the cache's blob store, verifying ``sha256`` (hex) while streaming.

        Returns the blob path.  If the blob is already cached (and still hashes right) no request
        is made.  A download that breaks off is resumed or restarted (see the module contract);
        ``size``, when known, is the file's exact length.  On a mismatch nothing is stored and
        :class:`HashMismatch` is raised.  Its progress is shown on :attr:`report`."""
        if sha256 is not None:
            hit = cache.verified_blob(sha256, what=what, package=package)
            if hit is not None:
                return hit
        doing = f"downloading {what}"
        asked = {**(headers or {}), "Accept-Encoding": "identity"}

        def open_(extra: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
            return self.request("GET", url, headers={**asked, **extra}, auth=auth, doing=doing)

        def fail(resp: urllib3.BaseHTTPResponse) -> Exception:
            release(resp)
            return status_error(url, resp.status, doing=doing, auth=auth, final=resp.geturl() or "")

        with self.transfer_scope() as deadline:
            reader = resume.Resuming(
                open_,
                fail=fail,
                deadline=deadline,
                attempts=DOWNLOAD_ATTEMPTS,
                size=size,
                check_prefix=not sha256,
            )
            shown = resume.Shown(reader, self.report, f"downloading {what}")
            try:
                digest, _ = cache.put_stream(
                    cast(BinaryIO, shown), expected=sha256, what=what, package=package
                )
            except deadlines.TransferError as err:
                raise download_error(err, url=url, doing=doing) from None
            finally:
                shown.close()
        return cache.blob_path(digest)

    def transfer_scope(self) -> AbstractContextManager[deadlines.Deadline]:
        """A block whose requests share one transfer deadline (``SLIMLINE_DOWNLOAD_DEADLINE``):
        for a caller that moves a large body itself, as registry blob downloads and uploads do."""
        return deadlines.scope(self.deadline(download=True))

    def request_scope(self) -> AbstractContextManager[deadlines.Deadline]:
        """A block held to one request deadline, or to the enclosing one if that ends sooner: for
        a small request made inside a transfer (a token), which must not get the transfer's time."""
        return deadlines.scope(deadlines.earliest(deadlines.current(), self.deadline()))


# -- reading answers ------------------------------------------------------------------------------

_DEADLINES: weakref.WeakKeyDictionary[Any, deadlines.Deadline] = (
    weakref.WeakKeyDictionary()
)  # response -> deadline


def _expired(resp: urllib3.BaseHTTPResponse) -> deadlines.Deadline | None:
    deadline: deadlines.Deadline | None = _DEADLINES.get(resp)
    return deadline if deadline is not None and deadline.passed() else None


def release(resp: urllib3.BaseHTTPResponse) -> None:
    """Give the connection back: drained of at most :data:`DRAIN_LIMIT` bytes, else closed."""
    resp.drain_conn()
    resp.release_conn()


def _close(resp: urllib3.BaseHTTPResponse) -> None:
    resp.close()
    resp.release_conn()


def read_capped(
    resp: urllib3.BaseHTTPResponse,
    cap: Cap,
    *,
    url: str,
    doing: str = "",
    truncate: bool = False,
    decode: bool = True,
) -> bytes:
    """The body of ``resp``, of at most ``cap.bytes`` (counted after undoing Content-Encoding
    when ``decode``).  More raises :class:`TooLarge`, or with ``truncate`` is cut off.  The
    response is released either way: a connection with bytes left unread is closed."""
    from http.client import HTTPException

    import urllib3

    limit = cap.bytes
    declared = resp.headers.get("Content-Length", "")
    plain = not (decode and resp.headers.get("Content-Encoding"))
    if not truncate and plain and declared.isdigit() and int(declared) > limit:
        _close(resp)
        raise TooLarge(url=url, limit=limit, what=cap.what, status=resp.status, doing=doing)
    buf = bytearray()
    try:
        while len(buf) <= limit and (
            chunk := resp.read(min(1 << 20, limit + 1 - len(buf)), decode_content=decode)
        ):
            buf += chunk
    except (urllib3.exceptions.HTTPError, OSError, HTTPException) as err:
        _close(resp)
        deadline = _expired(resp)
        if deadline is not None:
            raise DeadlineExceeded(url=url, deadline=deadline, doing=doing) from None
        raise HttpError(
            url=url,
            status=0,
            problem=f"the answer from {redact(url)} broke off or could not be decoded ({type(err).__name__})",
            doing=doing,
            hint="check the network and try again",
        ) from None
    if len(buf) > limit:
        _close(resp)
        if not truncate:
            raise TooLarge(url=url, limit=limit, what=cap.what, status=resp.status, doing=doing)
        return bytes(buf[:limit])
    deadline = _expired(resp)
    if deadline is not None:  # the watchdog ended it: this is not the whole answer
        _close(resp)
        raise DeadlineExceeded(url=url, deadline=deadline, doing=doing)
    resp.release_conn()
    return bytes(buf)


def _preloaded(resp: urllib3.BaseHTTPResponse, *, url: str, cap: Cap, doing: str) -> urllib3.BaseHTTPResponse:
    """A response holding its (capped) body in memory, with the status, headers and final URL of ``resp``."""
    import io

    import urllib3

    ok = 200 <= resp.status < 300
    data = read_capped(resp, cap if ok else ERROR_BODY_CAP, url=url, doing=doing, truncate=not ok)
    headers = urllib3.HTTPHeaderDict(resp.headers)
    for name in ("Content-Encoding", "Content-Length", "Transfer-Encoding"):
        headers.discard(name)
    return urllib3.HTTPResponse(
        body=io.BytesIO(data),
        headers=headers,
        status=resp.status,
        reason=resp.reason,
        request_url=resp.geturl() or url,
        preload_content=False,
        decode_content=False,
    )
