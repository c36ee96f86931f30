"""One registry, one repository: transport, authentication and errors.

:class:`Session` turns requests against ``/v2/...`` paths into responses whose status the
caller expects, or into a :class:`RegistryError` that says what failed, on which registry and
what to check.  It picks the transport once, lazily, with ``GET /v2/`` (which also yields the
auth challenge): HTTPS verified with the system trust store; for loopback hosts a fallback to
plain HTTP; for hosts the user named as insecure a fallback to unverified TLS, then plain HTTP.
Retries of connection errors, 429 and 5xx (honouring ``Retry-After``), deadlines and caps on
what is read are :class:`slimline.http.Http`'s; a 401 is answered once by authenticating (see
:mod:`slimline.oci.auth`) and retrying.  Credentials are sent to the registry's own host only:
an upload ``Location`` on another host gets none (as containerd does).

Blobs and manifests are moved on top of a session (:mod:`slimline.oci.registry_blobs`,
:mod:`slimline.oci.registry_manifests`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import urllib3

from slimline.cache import store
from slimline.errors import ExitStatus, SlimlineError
from slimline.http import (
    ERROR_BODY_CAP,
    DeadlineExceeded,
    Http,
    HttpError,
    RedirectRefused,
    TooLarge,
    read_capped,
    release,
)
from slimline.oci.auth import Authenticator, AuthError, is_loopback
from slimline.oci.credentials import Credentials
from slimline.oci.reference import RegistryRef

__all__ = ["RegistryError", "Session", "api_host", "hex_of"]


class RegistryError(SlimlineError):
    """A registry operation failed.  ``status`` is the HTTP status (0: no response); ``code`` the
    registry's error code (``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``, ...) or ""."""

    exit_status = ExitStatus.NETWORK

    def __init__(
        self,
        problem: str,
        *,
        ref: RegistryRef,
        status: int = 0,
        code: str = "",
        doing: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(problem, doing=doing or f"talking to {ref.registry}", hint=hint)
        self.registry = ref.registry
        self.repository = ref.repository
        self.status = status
        self.code = code


# -- the session ---------------------------------------------------------------------------------

Body = bytes | Callable[[], "BinaryIO | bytes"] | None


def api_host(registry: str) -> str:
    return "registry-1.docker.io" if registry == "docker.io" else registry


class Session:
    """Requests against one repository of one registry; thread-safe."""

    def __init__(
        self,
        ref: RegistryRef,
        *,
        http: Http,
        insecure: Iterable[str],
        credentials: Credentials,
        scopes: Iterable[str],
        op: str,
    ) -> None:
        self.ref = ref
        self.op = op  # what the whole session does, for messages: "pushing to HOST/REPO:TAG"
        self.host = api_host(ref.registry)
        self._insecure = {ref.registry, self.host} & set(insecure)
        self._loopback = is_loopback(self.host)
        self._http = http
        self._scopes = frozenset(scopes)
        self.auth = Authenticator(
            http=http,
            registry=ref.registry,
            repository=ref.repository,
            credentials=credentials,
            allow_http=[self.host] if self._insecure else [],
        )
        self._base: str | None = None
        self._connect_lock = threading.Lock()

    @property
    def base(self) -> str:
        """``scheme://host``, chosen on first use."""
        with self._connect_lock:
            if self._base is None:
                self._connect()
        assert self._base is not None
        return self._base

    def _connect(self) -> None:
        # (scheme, client, quick): a quick probe is not retried, because a fallback follows it.
        plans: list[tuple[str, Http, bool]] = [("https", self._http, False)]
        if self._insecure:
            plans = [
                ("https", self._http, True),
                ("https", self._http.unverified(), True),
                ("http", self._http, False),
            ]
        elif self._loopback:
            plans = [("https", self._http, True), ("http", self._http, False)]
        first: HttpError | None = None
        for scheme, client, quick in plans:
            base = f"{scheme}://{self.host}"
            try:
                resp = client.request(
                    "GET",
                    base + "/v2/",
                    doing=f"connecting to {self.ref.registry}",
                    retries=Http.retry(0) if quick else None,
                )
            except (DeadlineExceeded, RedirectRefused) as err:
                raise self._connect_error(err, "connecting") from err
            except HttpError as err:
                first = first or err
                if _tls_problem(err) and not _tls_problem(first):
                    first = err
                continue
            if scheme == "http" and resp.status not in (200, 401) and first is not None:
                release(resp)
                break  # a TLS-only server answering plain HTTP: the TLS error is the one to report
            self._base, self._http = base, client
            if resp.status not in (200, 401):
                raise self._status_error(resp, "connecting")
            release(resp)  # only the status and the challenge matter: the body is not read
            if resp.status == 401:
                self.auth.challenged(resp.headers.get("WWW-Authenticate", ""), self._scopes)
            return
        assert first is not None
        raise self._connect_error(first, "connecting")

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Send ``method`` to ``path`` (``/v2/...`` or an absolute upload URL); return a response
        whose status is in ``ok`` (the caller releases a streamed one), else raise."""
        url = path if path.startswith(("http://", "https://")) else self.base + path
        # credentials go to the registry's own host only, not to an upload Location elsewhere
        ours = _origin(url) == _origin(self.base)
        for attempt in (1, 2):
            try:
                hdrs = {**(headers or {}), **(self.auth.headers(self._scopes) if ours else {})}
            except AuthError as err:
                raise RegistryError(
                    err.problem,
                    ref=self.ref,
                    status=err.status,
                    code="UNAUTHORIZED",
                    doing=self._doing(what),
                    hint=err.hint,
                ) from err
            except HttpError as err:
                raise self._connect_error(err, f"{what} (getting a token)") from err
            data = body() if callable(body) else body
            try:
                resp = self._http.request(method, url, headers=hdrs, body=data, stream=stream, doing=what)
            except HttpError as err:
                raise self._connect_error(err, what) from err
            finally:
                if data is not None and not isinstance(data, bytes):
                    data.close()
            if (
                resp.status == 401
                and attempt == 1
                and ours
                and self.auth.challenged(resp.headers.get("WWW-Authenticate", ""), self._scopes)
            ):
                release(resp)
                continue
            if resp.status in ok:
                return resp
            raise self._status_error(resp, what)
        raise AssertionError("unreachable")

    def transfer_scope(self) -> AbstractContextManager[Any]:
        """A block whose requests share one transfer deadline (a blob's download or upload)."""
        return self._http.transfer_scope()

    def _connect_error(self, err: HttpError, what: str) -> RegistryError:
        reg = self.ref.registry
        text = err.problem
        if isinstance(err, TooLarge | DeadlineExceeded | RedirectRefused):
            return RegistryError(
                text, ref=self.ref, status=err.status, doing=self._doing(what), hint=err.hint
            )
        if _tls_problem(err):
            hint = (
                f"the TLS certificate of {reg} is not trusted: add its CA to the system trust store or "
                "point SSL_CERT_FILE at a bundle that holds it; for a registry you trust without a valid "
                f"certificate, pass --insecure-registry {reg}"
            )
        elif "refused" in text.lower():
            hint = f"is the registry running? check the host and port in {reg!r}"
        elif "resolution" in text.lower() or "name or service" in text.lower():
            hint = f"the host name {reg!r} does not resolve; check the spelling and your DNS"
        elif "timed out" in text.lower() or "timeout" in text.lower():
            hint = f"{reg} did not answer in time; check the network, a proxy or a firewall"
        else:
            hint = f"check that {reg} is reachable from here"
        return RegistryError(
            f"no answer from {reg} ({text})", ref=self.ref, doing=self._doing(what), hint=hint
        )

    def _status_error(self, resp: urllib3.BaseHTTPResponse, what: str) -> RegistryError:
        code, message = _error_body(resp)
        status = resp.status
        reg, repo = self.ref.registry, self.ref.repository
        problem = (
            f"{reg} answered HTTP {status}"
            + (f" {code}" if code else "")
            + (f": {message}" if message else "")
        )
        if status == 401:
            cred = self.auth.credential
            hint = (
                f"the registry refused the credentials for {reg} from {cred.source}; check the user name and "
                f"password (podman login {reg})"
                if cred
                else f"no credentials for {reg} were found ({self.auth.credentials.describe()}); log in with "
                f"`podman login {reg}` or `docker login {reg}`, or set REGISTRY_AUTH_FILE"
            )
        elif status == 403 or code == "DENIED":
            cred = self.auth.credential
            who = f"the account from {cred.source}" if cred else "anonymous access"
            hint = f"{who} may not access {repo}; check its permissions"
        elif code == "NAME_UNKNOWN" or (status == 404 and "manifest" not in what and "blob" not in what):
            hint = f"the repository {repo} does not exist on {reg}; check the name"
        elif code == "MANIFEST_UNKNOWN" or (status == 404 and "manifest" in what):
            tag = self.ref.reference
            hint = f"{repo} has no image {tag!r}; check the tag (skopeo list-tags docker://{reg}/{repo})"
        elif status == 429:
            hint = f"{reg} is rate-limiting requests; wait and retry, or log in for a higher limit"
        elif status >= 500:
            hint = f"{reg} failed (after retries); try again later or check the registry's logs"
        else:
            hint = "check the reference and the registry"
        return RegistryError(
            problem, ref=self.ref, status=status, code=code, doing=self._doing(what), hint=hint
        )

    def _doing(self, what: str) -> str:
        return f"{self.op} ({what})"


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or {"http": 80, "https": 443}.get(parts.scheme),
    )


def _tls_problem(err: HttpError | None) -> bool:
    return err is not None and any(k in err.problem for k in ("SSL", "CERTIFICATE", "certificate"))


def _error_body(resp: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """(code, message) of the first error in a distribution-spec error body (of which at most
    :data:`~slimline.http.ERROR_BODY_CAP` is read), if any."""
    try:
        raw = read_capped(resp, ERROR_BODY_CAP, url=resp.geturl() or "", truncate=True)
    except HttpError:
        raw = b""
    try:
        first = json.loads(raw)["errors"][0]
        return str(first.get("code") or ""), str(first.get("message") or "")[:300]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "", ""


def hex_of(digest: object, *, ref: RegistryRef) -> str:
    """The hex part of ``sha256:<64 lowercase hex digits>`` (the cache's key); anything else (other
    algorithms, upper case, a path) is refused before it is used."""
    try:
        return store.hex_of(digest)
    except store.BadDigest as err:
        raise RegistryError(
            err.problem,
            ref=ref,
            doing=f"pulling {ref}",
            hint="the registry sent a malformed manifest, or one meant to mislead; do not trust it",
        ) from err
