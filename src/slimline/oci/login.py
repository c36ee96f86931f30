"""``slimline login`` / ``logout``: store registry credentials where every tool finds them.

Contract of :func:`login`: the credentials are first checked against the registry (``GET /v2/``
through the same basic or bearer-token flow a push uses) from a private temporary auth file;
only if the registry accepts them are they written, under ``auths[<registry>]`` in the auth
file (``REGISTRY_AUTH_FILE``, else Docker's ``config.json``: the file podman, skopeo and docker
read too).  The file is replaced atomically with mode 0600; other entries are kept.  Neither
function prints, logs or raises with the secret in it.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from slimline.cache.store import atomic_write
from slimline.errors import SlimlineError
from slimline.http import Http
from slimline.oci.credentials import Credentials
from slimline.oci.reference import RegistryRef
from slimline.oci.registry_client import Session

__all__ = ["auth_file", "login", "logout"]

_HUB_KEY = "https://index.docker.io/v1/"


def auth_file(env: Mapping[str, str] | None = None) -> Path:
    """Where credentials are written: ``REGISTRY_AUTH_FILE``, else ``$DOCKER_CONFIG/config.json``
    or ``~/.docker/config.json``."""
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    docker = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else Path.home() / ".docker"
    return docker / "config.json"


def _key(registry: str) -> str:
    return _HUB_KEY if registry in ("docker.io", "index.docker.io", "registry-1.docker.io") else registry


def _entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes() or b"{}")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise SlimlineError(
            f"{path} is not readable JSON ({type(err).__name__})",
            doing="updating the registry auth file",
            hint="fix or move the file, then log in again",
        ) from err
    if not isinstance(data, dict):
        raise SlimlineError(f"{path} is not a JSON object", doing="updating the registry auth file")
    return data


def _write(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_write(path, mode=0o600) as f:
        f.write(json.dumps(data, indent=2, sort_keys=True).encode() + b"\n")


def login(
    registry: str, *, username: str, password: str, http: Http, insecure: Iterable[str] = (), path: Path
) -> None:
    """Check the credentials against ``registry`` (``host[:port]``), then store them in ``path``."""
    with tempfile.TemporaryDirectory(prefix="slimline-login-") as tmp:
        probe = Path(tmp) / "auth.json"
        _write(probe, {"auths": {_key(registry): _entry(username, password)}})
        session = Session(
            RegistryRef(registry, "slimline/login", "latest"),
            http=http,
            insecure=insecure,
            credentials=Credentials((probe,)),
            scopes=(),
            op=f"logging in to {registry}",
        )
        resp = session.request("GET", "/v2/", what="checking the credentials")
        resp.release_conn()
    data = _read(path)
    auths = data.setdefault("auths", {})
    auths[_key(registry)] = _entry(username, password)
    _write(path, data)


def logout(registry: str, *, path: Path) -> bool:
    """Remove ``registry``'s entry from ``path``; False if there was none."""
    data = _read(path)
    auths = data.get("auths") or {}
    if _key(registry) not in auths:
        return False
    del auths[_key(registry)]
    _write(path, data)
    return True
