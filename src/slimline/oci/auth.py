"""Registry authentication: challenges, bearer tokens and credential lookup.

Credentials are looked up, per registry host, in the files Docker and podman use, first match
wins: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.config/containers/auth.json``, then ``$DOCKER_CONFIG/config.json`` (default
``~/.docker/config.json``).  In each file ``credHelpers[host]``, else ``credsStore``, names a
``docker-credential-<name>`` helper; when no helper answers, ``auths`` is read (``auth`` is
base64 ``user:password``; ``identitytoken`` is an OAuth2 refresh token).  Podman-style keys
``host/namespace`` match repositories under that namespace; the most specific key wins.

Contract: a secret lives only in a :class:`Credential` (whose repr hides it) and in request
headers.  It is never logged, reported, put into an error message, or written anywhere.
Errors name the file or helper a credential came from, never the secret.

:class:`Authenticator` implements the flow of the distribution spec: the first 401 carries a
``WWW-Authenticate`` challenge; ``Basic`` means "send the credential on every request";
``Bearer`` means "fetch a token from ``realm`` for these scopes" (anonymously when there is no
credential), which is cached per scope set until shortly before it expires.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from slimline.errors import SlimlineError
from slimline.http import BasicAuth, Http, basic_header

__all__ = [
    "DOCKER_HUB_AUTH_KEY",
    "Authenticator",
    "Challenge",
    "Credential",
    "CredentialError",
    "Credentials",
    "is_loopback",
    "parse_challenges",
]

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"  # the key Docker uses for Hub credentials
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_TOKEN_SLACK = 10.0  # seconds before expiry at which a token is refreshed


class CredentialError(SlimlineError):
    """A credential source could not be read (bad file, failing helper)."""

    def __init__(self, problem: str, *, source: str, hint: str = "") -> None:
        super().__init__(problem, doing=f"reading registry credentials from {source}", hint=hint)
        self.source = source


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


# -- credentials ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    secret: str = field(repr=False)
    source: str = ""  # where it came from, for messages: "auths in /root/.docker/config.json"
    identity_token: bool = False  # the secret is an OAuth2 refresh token, not a password

    def basic(self) -> BasicAuth:
        return BasicAuth(self.username, self.secret)


@dataclass(frozen=True, slots=True)
class Credentials:
    """An ordered list of auth files to consult (first match wins)."""

    files: tuple[Path, ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        files: list[Path] = []
        if env.get("REGISTRY_AUTH_FILE"):
            files.append(Path(env["REGISTRY_AUTH_FILE"]))
        if env.get("XDG_RUNTIME_DIR"):
            files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
        files.append(home / ".config" / "containers" / "auth.json")
        docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
        files.append(docker_dir / "config.json")
        return cls(tuple(dict.fromkeys(files)))

    def consulted(self) -> list[str]:
        """The files that exist, for messages."""
        return [str(p) for p in self.files if p.is_file()]

    def describe(self) -> str:
        found = self.consulted()
        if found:
            return "looked in " + ", ".join(found)
        if not self.files:
            return "no auth file is configured"
        return "none of " + ", ".join(str(p) for p in self.files) + " exists"

    def lookup(self, registry: str, repository: str = "") -> Credential | None:
        """The credential for ``registry`` (``host[:port]``; ``docker.io`` for Docker Hub)."""
        for path in self.files:
            if not path.is_file():
                continue
            found = _lookup_file(path, registry, repository)
            if found is not None:
                return found
        return None


def _load(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError) as err:
        raise CredentialError(
            f"cannot read it: {type(err).__name__}", source=str(path), hint="fix or remove the file"
        ) from None  # the message of a JSON error may quote the file, which holds secrets
    if not isinstance(data, dict):
        raise CredentialError("it is not a JSON object", source=str(path), hint="fix or remove the file")
    return data


def _key_host(key: str) -> tuple[str, str]:
    """An ``auths`` key -> (host, namespace path).  Docker keys carry a scheme and ``/v1/``."""
    if "://" in key:
        parts = urlsplit(key)
        host, path = parts.netloc, ""  # a URL key names a whole registry
    else:
        host, _, path = key.partition("/")
    host = host.lower()
    if host in _HUB_ALIASES:
        host = "docker.io"
    return host, path.strip("/")


def _lookup_file(path: Path, registry: str, repository: str) -> Credential | None:
    data = _load(path)
    registry = "docker.io" if registry in _HUB_ALIASES else registry.lower()
    helpers = data.get("credHelpers") or {}
    helper = next((h for k, h in helpers.items() if _key_host(k)[0] == registry), None) or data.get(
        "credsStore"
    )
    if helper:
        cred = _from_helper(str(helper), registry)
        if cred is not None:
            return cred
    best: tuple[int, Mapping[str, Any]] | None = None
    for key, entry in (data.get("auths") or {}).items():
        host, ns = _key_host(key)
        if host != registry or not isinstance(entry, dict):
            continue
        if ns and not (repository == ns or repository.startswith(ns + "/")):
            continue
        if best is None or len(ns) > best[0]:
            best = (len(ns), entry)
    if best is None:
        return None
    entry = best[1]
    source = f"auths in {path}"
    if entry.get("identitytoken"):
        return Credential(str(entry.get("username") or "<token>"), str(entry["identitytoken"]), source, True)
    if entry.get("auth"):
        try:
            user, sep, secret = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise CredentialError(
                f"the 'auth' entry for {registry} is not base64 of user:password",
                source=str(path),
                hint=f"log in again (podman login {registry})",
            )
        return Credential(user, secret, source)
    if entry.get("username") and entry.get("password"):
        return Credential(str(entry["username"]), str(entry["password"]), source)
    return None


def _from_helper(name: str, registry: str) -> Credential | None:
    exe = shutil.which(f"docker-credential-{name}")
    source = f"docker-credential-{name}"
    if exe is None:
        raise CredentialError(
            f"the credential helper {source} is not on PATH",
            source=source,
            hint="install it, or remove it from credHelpers/credsStore in your Docker config",
        )
    server = DOCKER_HUB_AUTH_KEY if registry == "docker.io" else registry
    try:
        proc = subprocess.run(
            [exe, "get"], input=server, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CredentialError(f"running it failed: {type(err).__name__}", source=source) from None
    if proc.returncode != 0:
        if "not found" in (proc.stdout + proc.stderr).lower():
            return None
        # stdout may hold a partial secret: only the helper's stderr is shown, trimmed.
        raise CredentialError(
            f"it exited with status {proc.returncode}: {proc.stderr.strip()[:200]}",
            source=source,
            hint="check the helper (is its keychain unlocked?)",
        )
    try:
        out = json.loads(proc.stdout)
        user, secret = str(out["Username"]), str(out["Secret"])
    except (ValueError, KeyError, TypeError):
        raise CredentialError("its output is not {Username, Secret} JSON", source=source) from None
    if not secret:
        return None
    return Credential(user, secret, source, identity_token=user == "<token>")


# -- the per-registry flow -----------------------------------------------------------------------


class AuthError(SlimlineError):
    """The token service refused or failed; carries the registry and status, never a secret."""

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
        service = ch.params.get("service", "")
        wanted = sorted(scopes | ({ch.params["scope"]} if ch.params.get("scope") else set()))
        doing = f"getting a token for {self.registry} from {realm}"
        if cred and cred.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": cred.secret,
                "service": service,
                "scope": " ".join(wanted),
                "client_id": "slimline",
            }
            resp = self._http.request(
                "POST",
                realm,
                body=urlencode(form).encode(),
                stream=False,
                doing=doing,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            query = urlencode([("service", service), *(("scope", s) for s in wanted)])
            url = realm + ("&" if "?" in realm else "?") + query
            resp = self._http.request(
                "GET", url, auth=cred.basic() if cred else None, stream=False, doing=doing
            )
        if resp.status != 200:
            if resp.status in (401, 403):
                hint = (
                    f"the credentials from {cred.source} were refused; check the user name and password"
                    if cred
                    else f"no credentials found for {self.registry} ({self.credentials.describe()})"
                )
            else:
                hint = "the token service failed; try again later"
            raise AuthError(
                f"the token service {parts.netloc} answered HTTP {resp.status}",
                registry=self.registry,
                status=resp.status,
                hint=hint,
            )
        try:
            body = json.loads(resp.data)
            token = str(body.get("token") or body.get("access_token") or "")
            expires = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise AuthError(
                "the token service sent no JSON token",
                registry=self.registry,
                status=200,
                hint="check the registry's auth configuration",
            ) from None
        return token, time.monotonic() + max(expires, _TOKEN_SLACK + 1)
