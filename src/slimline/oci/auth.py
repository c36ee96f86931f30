"""Registry authentication: challenges, and the Authorization header each request carries.

:class:`Authenticator` implements the flow of the distribution spec: the first 401 carries a
``WWW-Authenticate`` challenge; ``Basic`` means "send the credential on every request";
``Bearer`` means "fetch a token from ``realm`` for these scopes" (anonymously when there is no
credential), which is cached per scope set until shortly before it expires.  A credential
(looked up lazily through :class:`slimline.oci.credentials.Credentials`) goes to a token
service over plain HTTP only on loopback or to a host the user named as insecure.

Contract: a secret appears only in request headers and in the token request's body; errors
(:class:`AuthError`) name the registry, the status and where the credential came from.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import urllib3

from slimline.errors import ExitStatus, SlimlineError
from slimline.http import Http, basic_header
from slimline.oci.credentials import Credential, Credentials

__all__ = ["AuthError", "Authenticator", "Challenge", "is_loopback", "parse_challenges"]

_TOKEN_SLACK = 10.0  # seconds before expiry at which a token is refreshed


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1``, with or without a port."""
    name = host_name(host)
    return name == "localhost" or name.startswith("127.") or name == "::1"


def host_name(host: str) -> str:
    """``host:port`` or ``[v6]:port`` without the port."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# -- challenges ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: Mapping[str, str] = field(default_factory=dict)  # keys lower case

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_TOKEN_RE = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)")
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235): quoted values may contain commas."""
    out: list[Challenge] = []
    pos, n = 0, len(header)
    scheme: str | None = None
    params: dict[str, str] = {}
    while pos < n:
        while pos < n and header[pos] in " ,\t":
            pos += 1
        m = _TOKEN_RE.match(header, pos)
        if not m:
            break
        word, after = m.group(1), m.end()
        rest = header[after:].lstrip(" \t")
        if rest.startswith("=") and scheme is not None:
            pos = after + (len(header[after:]) - len(rest)) + 1
            while pos < n and header[pos] in " \t":
                pos += 1
            q = _QUOTED_RE.match(header, pos)
            if q:
                value = re.sub(r"\\(.)", r"\1", q.group(1))
                pos = q.end()
            else:
                v = re.match(r"[^,\s]*", header[pos:])
                value = v.group(0) if v else ""
                pos += len(value)
            params[word.lower()] = value
        else:
            if scheme is not None:
                out.append(Challenge(scheme, params))
            scheme, params, pos = word.lower(), {}, after
    if scheme is not None:
        out.append(Challenge(scheme, params))
    return out


# -- the per-registry flow -----------------------------------------------------------------------


class AuthError(SlimlineError):
    """The token service refused or failed; carries the registry and status, never a secret."""

    exit_status = ExitStatus.NETWORK

    def __init__(self, problem: str, *, registry: str, status: int, hint: str) -> None:
        super().__init__(problem, doing=f"authenticating to {registry}", hint=hint)
        self.registry = registry
        self.status = status


class Authenticator:
    """Authorization headers for one registry; thread-safe.

    ``credential`` is looked up lazily (on the first challenge), so anonymous registries never
    run a credential helper.  ``allow_http`` lists hosts to which a credential may be sent
    over plain HTTP (loopback and ``--insecure-registry`` hosts).
    """

    def __init__(
        self,
        *,
        http: Http,
        registry: str,
        repository: str,
        credentials: Credentials,
        allow_http: Iterable[str] = (),
    ) -> None:
        self._http = http
        self.registry = registry
        self._repository = repository
        self.credentials = credentials
        self._allow_http = set(allow_http)
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._cred: Credential | None = None
        self._cred_loaded = False
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}

    @property
    def credential(self) -> Credential | None:
        with self._lock:
            return self._credential()

    def _credential(self) -> Credential | None:
        if not self._cred_loaded:
            self._cred = self.credentials.lookup(self.registry, self._repository)
            self._cred_loaded = True
        return self._cred

    def headers(self, scopes: frozenset[str]) -> dict[str, str]:
        """The Authorization header to send now (empty before any challenge)."""
        with self._lock:
            ch = self._challenge
            if ch is None:
                return {}
            if ch.scheme == "basic":
                cred = self._credential()
                return {"Authorization": basic_header(cred.basic())} if cred else {}
            token = self._tokens.get(scopes)
            if token is None or token[1] - _TOKEN_SLACK < time.monotonic():
                token = self._fetch_token(ch, scopes)
                self._tokens[scopes] = token
            return {"Authorization": f"Bearer {token[0]}"} if token[0] else {}

    def challenged(self, header: str, scopes: frozenset[str]) -> bool:
        """Take a 401's ``WWW-Authenticate``; True if retrying with new headers can help."""
        known = [c for c in parse_challenges(header) if c.scheme in ("basic", "bearer")]
        if not known:
            return False
        ch = next((c for c in known if c.scheme == "bearer"), known[0])
        with self._lock:
            before = self._challenge
            self._challenge = ch
            if ch.scheme == "basic":
                sent = before is not None and before.scheme == "basic"
                return not sent and self._credential() is not None
            if ch.params.get("error") == "insufficient_scope":
                return False
            fresh = before is None or before.scheme != "bearer" or scopes not in self._tokens
            self._tokens.pop(scopes, None)
            return fresh

    def _fetch_token(self, ch: Challenge, scopes: frozenset[str]) -> tuple[str, float]:
        """A bearer token for ``scopes`` (and the scope the challenge names), and when to renew it."""
        realm = ch.realm
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise AuthError(
                f"the registry named a bad token realm {realm!r}",
                registry=self.registry,
                status=401,
                hint="check the registry's auth configuration",
            )
        cred = self._credential()
        if (
            parts.scheme == "http"
            and cred
            and not (is_loopback(parts.netloc) or parts.netloc in self._allow_http)
        ):
            raise AuthError(
                f"the token service {realm} is plain HTTP; refusing to send credentials there",
                registry=self.registry,
                status=401,
                hint=f"use HTTPS, or name {parts.netloc} with --insecure-registry if you trust the network",
            )
        wanted = sorted(scopes | ({ch.params["scope"]} if ch.params.get("scope") else set()))
        with self._http.request_scope():  # not the time of a blob transfer it may be part of
            resp = self._ask_token(realm, ch.params.get("service", ""), wanted, cred)
        if resp.status != 200:
            raise self._refused(parts.netloc, resp.status, cred)
        return _token(resp.data, registry=self.registry)

    def _ask_token(
        self, realm: str, service: str, scopes: list[str], cred: Credential | None
    ) -> urllib3.BaseHTTPResponse:
        """The token service's answer: an OAuth2 refresh-token grant for an identity token, else
        a GET with the credential (if any) as basic auth."""
        doing = f"getting a token for {self.registry} from {realm}"
        if cred and cred.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": cred.secret,
                "service": service,
                "scope": " ".join(scopes),
                "client_id": "slimline",
            }
            return self._http.request(
                "POST",
                realm,
                body=urlencode(form).encode(),
                stream=False,
                doing=doing,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        query = urlencode([("service", service), *(("scope", s) for s in scopes)])
        url = realm + ("&" if "?" in realm else "?") + query
        return self._http.request("GET", url, auth=cred.basic() if cred else None, stream=False, doing=doing)

    def _refused(self, service: str, status: int, cred: Credential | None) -> AuthError:
        if status in (401, 403):
            hint = (
                f"the credentials from {cred.source} were refused; check the user name and password"
                if cred
                else f"no credentials found for {self.registry} ({self.credentials.describe()})"
            )
        else:
            hint = "the token service failed; try again later"
        return AuthError(
            f"the token service {service} answered HTTP {status}",
            registry=self.registry,
            status=status,
            hint=hint,
        )


def _token(data: bytes, *, registry: str) -> tuple[str, float]:
    """(token, monotonic expiry) from a token service's JSON answer."""
    try:
        body = json.loads(data)
        token = str(body.get("token") or body.get("access_token") or "")
        expires = float(body.get("expires_in") or 60)
    except (ValueError, AttributeError, TypeError):
        raise AuthError(
            "the token service sent no JSON token",
            registry=registry,
            status=200,
            hint="check the registry's auth configuration",
        ) from None
    return token, time.monotonic() + max(expires, _TOKEN_SLACK + 1)
