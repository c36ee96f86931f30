"""One registry, one repository: transport, authentication, errors, and blob transfer.

:class:`Session` turns requests against ``/v2/...`` paths into responses whose status the
caller expects, or into a :class:`RegistryError` that says what failed, on which registry and
what to check.  It picks the transport once, lazily, with ``GET /v2/`` (which also yields the
auth challenge): HTTPS verified with the system trust store; for loopback hosts a fallback to
plain HTTP; for hosts the user named as insecure a fallback to unverified TLS, then plain HTTP.
Retries of connection errors, 429 and 5xx (honouring ``Retry-After``) are done by
:class:`slimline.http.Http`; a 401 is answered once by authenticating (see
:mod:`slimline.oci.auth`) and retrying.

Blob primitives on top: :func:`fetch_blob` streams a blob into the cache, checking its size
and sha256 as it goes (nothing unverified is stored); :class:`Uploader` makes a blob exist in
the repository with as little traffic as possible (HEAD; cross-repository mount; monolithic
PUT for small blobs, PATCH chunks for large ones).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import quote, urljoin

import urllib3

from slimline.cache.store import Cache
from slimline.errors import SlimlineError
from slimline.http import Http, HttpError
from slimline.oci.auth import Authenticator, AuthError, Credentials, is_loopback
from slimline.oci.reference import RegistryRef
from slimline.report import Reporter

__all__ = ["RegistryError", "Session", "Uploader", "api_host", "fetch_blob", "hex_of"]


class RegistryError(SlimlineError):
    """A registry operation failed.  ``status`` is the HTTP status (0: no response); ``code`` the
    registry's error code (``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``, ...) or ""."""

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

CHUNK = 1 << 20

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
                    stream=False,
                    doing=f"connecting to {self.ref.registry}",
                    retries=urllib3.Retry(0, redirect=5) if quick else None,
                )
            except HttpError as err:
                first = first or err
                if _tls_problem(err) and not _tls_problem(first):
                    first = err
                continue
            if scheme == "http" and resp.status not in (200, 401) and first is not None:
                break  # a TLS-only server answering plain HTTP: the TLS error is the one to report
            self._base, self._http = base, client
            if resp.status == 401:
                self.auth.challenged(resp.headers.get("WWW-Authenticate", ""), self._scopes)
            elif resp.status != 200:
                raise self._status_error(resp, "connecting")
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
        for attempt in (1, 2):
            try:
                hdrs = {**(headers or {}), **self.auth.headers(self._scopes)}
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
                and self.auth.challenged(resp.headers.get("WWW-Authenticate", ""), self._scopes)
            ):
                _release(resp)
                continue
            if resp.status in ok:
                return resp
            raise self._status_error(resp, what)
        raise AssertionError("unreachable")

    def _connect_error(self, err: HttpError, what: str) -> RegistryError:
        reg = self.ref.registry
        text = err.problem
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


def _tls_problem(err: HttpError | None) -> bool:
    return err is not None and any(k in err.problem for k in ("SSL", "CERTIFICATE", "certificate"))


def _release(resp: urllib3.BaseHTTPResponse) -> None:
    resp.drain_conn()
    resp.release_conn()


def _error_body(resp: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """(code, message) of the first error in a distribution-spec error body, if any."""
    try:
        raw = resp.data
    except urllib3.exceptions.HTTPError:
        raw = b""
    finally:
        _release(resp)
    try:
        first = json.loads(raw)["errors"][0]
        return str(first.get("code") or ""), str(first.get("message") or "")[:300]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "", ""


def hex_of(digest: str, *, ref: RegistryRef) -> str:
    """The hex part of a sha256 digest (the cache's key); other algorithms are refused."""
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64:
        raise RegistryError(f"unsupported digest {digest!r} (only sha256 is supported)", ref=ref)
    return hexd


# -- blobs ---------------------------------------------------------------------------------------


class _Exactly:
    """Reads a response, failing if it is longer or shorter than ``size`` bytes."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, size: int, what: str, ref: RegistryRef) -> None:
        self._raw, self._left, self._size, self._what, self._ref = raw, size, size, what, ref

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(CHUNK if n < 0 else n, decode_content=False)
        self._left -= len(data)
        if self._left < 0 or (not data and self._left > 0):
            raise RegistryError(
                f"the {self._what} has {'more' if self._left < 0 else 'fewer'} bytes than the {self._size} "
                "its manifest says",
                ref=self._ref,
                doing=f"pulling {self._ref}",
                hint="the registry or a proxy altered it; do not trust it",
            )
        return data


def fetch_blob(sess: Session, cache: Cache, digest: str, size: int, what: str, *, attempts: int = 3) -> Path:
    """Stream a blob into the cache, verifying size and digest; retry a download that broke off."""
    ref = sess.ref
    for attempt in range(attempts):
        resp = sess.request(
            "GET", f"/v2/{ref.repository}/blobs/{digest}", stream=True, what=f"fetching the {what}"
        )
        try:
            cache.put_stream(
                cast(BinaryIO, _Exactly(resp, size, what, ref)),
                expected=hex_of(digest, ref=ref),
                what=f"{what} of {ref}",
            )
            return cache.blob_path(hex_of(digest, ref=ref))
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError) as err:
            if attempt + 1 == attempts:
                raise RegistryError(
                    f"the download broke off: {type(err).__name__}",
                    ref=ref,
                    doing=f"fetching the {what} of {ref}",
                    hint="check the network and try again",
                ) from None
        finally:
            resp.release_conn()
    raise AssertionError("unreachable")


class Uploader:
    """Puts blobs into the session's repository: HEAD, else mount, else monolithic or chunked upload."""

    def __init__(self, sess: Session, *, report: Reporter, chunked_above: int, chunk_size: int) -> None:
        self.sess, self.report, self.chunked_above, self.chunk_size = sess, report, chunked_above, chunk_size

    def blob(
        self,
        digest: str,
        size: int,
        source: Callable[[], BinaryIO | bytes],
        what: str,
        mount_from: Sequence[str],
    ) -> str:
        """Make ``digest`` exist in the repository; return "present", "mounted" or "uploaded"."""
        sess, repo = self.sess, self.sess.ref.repository
        head = sess.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404), what=f"checking the {what}")
        if head.status == 200:
            self.report.detail(f"{what}: already there")
            return "present"
        start = None
        for other in mount_from:
            resp = sess.request(
                "POST",
                f"/v2/{repo}/blobs/uploads/?mount={quote(digest)}&from={quote(other)}",
                ok=(201, 202),
                what=f"mounting the {what} from {other}",
            )
            if resp.status == 201:
                self.report.detail(f"{what}: mounted from {other}")
                return "mounted"
            start = resp  # the registry opened an ordinary upload session instead
            break
        if start is None:
            start = sess.request(
                "POST", f"/v2/{repo}/blobs/uploads/", ok=(202,), what=f"starting the upload of the {what}"
            )
        location = self._location(start, sess.base)
        if size > self.chunked_above:
            minimum = int(start.headers.get("OCI-Chunk-Min-Length") or 0)
            location = self._chunks(location, source, max(self.chunk_size, minimum), what)
            body: Callable[[], BinaryIO | bytes] | bytes = b""
            headers = {"Content-Type": "application/octet-stream", "Content-Length": "0"}
        else:
            body = source
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        sep = "&" if "?" in location else "?"
        sess.request(
            "PUT",
            f"{location}{sep}digest={quote(digest)}",
            headers=headers,
            body=body,
            ok=(201,),
            what=f"uploading the {what}",
        )
        self.report.detail(f"{what}: uploaded ({size} bytes)")
        return "uploaded"

    def _location(self, resp: urllib3.BaseHTTPResponse, base: str) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                "the registry opened an upload without a Location",
                ref=self.sess.ref,
                status=resp.status,
                doing=f"pushing to {self.sess.ref}",
            )
        return urljoin(base + "/", loc)

    def _chunks(self, location: str, source: Callable[[], BinaryIO | bytes], chunk: int, what: str) -> str:
        opened = source()
        stream: BinaryIO = io.BytesIO(opened) if isinstance(opened, bytes) else opened
        with stream:
            offset = 0
            while data := stream.read(chunk):
                end = offset + len(data) - 1
                resp = self.sess.request(
                    "PATCH",
                    location,
                    body=data,
                    ok=(202,),
                    what=f"uploading the {what} (bytes {offset}-{end})",
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{end}",
                        "Content-Length": str(len(data)),
                    },
                )
                location = self._location(resp, location)
                offset = end + 1
        return location
