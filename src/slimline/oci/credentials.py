"""Registry credentials: where they are looked up, and the value that holds one.

Credentials are looked up, per registry host, in the files Docker and podman use, first match
wins: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.config/containers/auth.json``, then ``$DOCKER_CONFIG/config.json`` (default
``~/.docker/config.json``).  In each file ``credHelpers[host]``, else ``credsStore``, names a
``docker-credential-<name>`` helper; when no helper answers, ``auths`` is read (``auth`` is
base64 ``user:password``; ``identitytoken`` is an OAuth2 refresh token).  Podman-style keys
``host/namespace`` match repositories under that namespace; the most specific key wins.

Contract: a secret lives only in a :class:`Credential` (whose repr hides it) and in request
headers.  It is never logged, reported, put into an error message, or written anywhere.
Errors (:class:`CredentialError`) name the file or helper a credential came from, never the
secret.  How a credential is sent is :mod:`slimline.oci.auth`'s business.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from slimline.errors import SlimlineError
from slimline.http import BasicAuth

__all__ = ["DOCKER_HUB_AUTH_KEY", "Credential", "CredentialError", "Credentials"]

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"  # the key Docker uses for Hub credentials
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


class CredentialError(SlimlineError):
    """A credential source could not be read (bad file, failing helper)."""

    def __init__(self, problem: str, *, source: str, hint: str = "") -> None:
        super().__init__(problem, doing=f"reading registry credentials from {source}", hint=hint)
        self.source = source


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    secret: str = field(repr=False)
    source: str = ""  # where it came from, for messages: "auths in /root/.docker/config.json"
    identity_token: bool = False  # the secret is an OAuth2 refresh token, not a password

    def basic(self) -> BasicAuth:
        return BasicAuth(self.username, self.secret, source=self.source)


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
