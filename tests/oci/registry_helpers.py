"""A real registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8) on loopback.

:func:`registry` starts it on a free 127.0.0.1 port with a generated config in one of these
set-ups: anonymous, htpasswd basic auth, or bearer tokens from :class:`TokenServer` (a small
token service signing real JWTs that the registry verifies); each optionally behind TLS with
a CA made here with the ``openssl`` command.  :class:`Proxy` sits in front of a plain-HTTP
registry, records every request and can answer chosen requests with an error first.
Nothing here imitates slimline: these are the real server and real HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from slimline import layers
from slimline.cache.store import Cache
from slimline.layers.filetree import FileOnDisk, TreeBuilder
from slimline.oci.image import Config, History, Image, Platform

REGISTRY_BIN = "/usr/bin/docker-registry"
AMD64 = Platform("amd64")
ARM64 = Platform("arm64", variant="v8")
BUSYBOX = Path("/bin/busybox")
Auth = Literal["none", "htpasswd", "token"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def image(cache: Cache, *, text: str = "hi", platform: Platform = AMD64) -> Image:
    """A runnable image: a static busybox in one layer, a text file in another."""
    if not BUSYBOX.is_file():
        raise AssertionError("/bin/busybox is missing: install Debian's busybox-static package")
    tb = TreeBuilder()
    tb.file("busybox", FileOnDisk(BUSYBOX), BUSYBOX.stat().st_size, mode=0o755)
    text_tree = TreeBuilder()
    text_tree.data("hello.txt", text.encode())
    base = layers.write(tb.freeze(), cache=cache)
    top = layers.write(text_tree.freeze(), cache=cache)
    return (
        Image(platform=platform)
        .append((base, top), (History("busybox"), History("hello.txt")))
        .with_config(Config(cmd=("/busybox", "cat", "/hello.txt")))
    )


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@dataclass(frozen=True)
class Tls:
    ca: Path  # the test CA's certificate (PEM)
    cert: Path  # the server certificate for 127.0.0.1 / localhost
    key: Path
    bundle: Path  # the system bundle plus the test CA: what SSL_CERT_FILE should point at
    cert_dir: Path  # a directory with ca.crt, for podman/skopeo --cert-dir


def make_tls(directory: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        ca_key,
        "-out",
        ca,
        "-days",
        "2",
        "-subj",
        "/CN=slimline test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        ext,
    )
    system = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    bundle = directory / "bundle.pem"
    bundle.write_bytes(system.read_bytes() + b"\n" + ca.read_bytes())
    cert_dir = directory / "certs.d"
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / "ca.crt").write_bytes(ca.read_bytes())
    return Tls(ca, cert, key, bundle, cert_dir)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A bearer-token service: checks Basic credentials and signs RS256 JWTs (with ``openssl``).

    ``grant(user, scope)`` decides which actions a (possibly anonymous, ``user=None``) client
    gets; by default an authenticated user gets what it asks and anonymous clients get pull.
    Every request is recorded in :attr:`requests` as (user or None, [scopes]).
    """

    service = "slimline-test-registry"
    issuer = "slimline-test-issuer"

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key = directory / "token.key"
        self.cert = directory / "token.pem"
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            self.key,
            "-out",
            self.cert,
            "-days",
            "2",
            "-subj",
            "/CN=slimline test token signer",
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True, capture_output=True
        ).stdout
        self._x5c = base64.b64encode(der).decode()
        self.users = users
        self.requests: list[tuple[str | None, list[str]]] = []
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user: str | None = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != pw:
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    user = name
                scopes = query.get("scope", [])
                server.requests.append((user, scopes))
                body = json.dumps({"token": server.sign(user, scopes), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def grant(self, user: str | None, resource: str, actions: list[str]) -> list[str]:
        return actions if user is not None else [a for a in actions if a == "pull"]

    def sign(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in (s for text in scopes for s in text.split(" ")):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = self.grant(user, name, actions.split(","))
            if allowed:
                access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class Registry:
    host: str  # "127.0.0.1:PORT"
    root: Path
    log: Path
    tls: Tls | None = None
    users: dict[str, str] = field(default_factory=dict)
    token: TokenServer | None = None
    config: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The registry stopped for the block (another process may serve its storage and port
        meanwhile, e.g. in a network namespace), then started again with the same config."""
        assert self.proc is not None and self.config is not None
        _stop(self.proc)
        try:
            yield
        finally:
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    [REGISTRY_BIN, "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT
                )
            _wait_listening(int(self.host.rpartition(":")[2]), self.proc, self.log)

    @property
    def tls_flags(self) -> list[str]:
        """skopeo/podman flags to reach this registry."""
        return [f"--cert-dir={self.tls.cert_dir}"] if self.tls else ["--tls-verify=false"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"docker-registry exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"docker-registry did not listen on {port}:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def registry(
    tmp: Path, *, auth: Auth = "none", tls: bool = False, users: dict[str, str] | None = None
) -> Iterator[Registry]:
    """Run ``docker-registry`` on a free loopback port until the block ends."""
    if not Path(REGISTRY_BIN).is_file():
        raise AssertionError(f"{REGISTRY_BIN} is missing: install Debian's docker-registry package")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    users = dict(users or {"alice": "s3cret-pass-α"})
    reg = Registry(f"127.0.0.1:{port}", tmp / "storage", tmp / "registry.log", users=users)
    http_config: dict[str, object] = {"addr": reg.host, "secret": uuid.uuid4().hex}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(reg.root)}, "delete": {"enabled": True}},
        "http": http_config,
    }
    if tls:
        reg.tls = make_tls(tmp / "tls")
        http_config["tls"] = {"certificate": str(reg.tls.cert), "key": str(reg.tls.key)}
    if auth == "htpasswd":
        import bcrypt

        htpasswd = tmp / "htpasswd"
        htpasswd.write_text(
            "".join(
                f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                for u, p in users.items()
            )
        )
        config["auth"] = {"htpasswd": {"realm": "slimline-test", "path": str(htpasswd)}}
    elif auth == "token":
        reg.token = TokenServer(tmp / "token", users)
        config["auth"] = {
            "token": {
                "realm": reg.token.realm,
                "service": TokenServer.service,
                "issuer": TokenServer.issuer,
                "rootcertbundle": str(reg.token.cert),
            }
        }
    cfg = reg.config = tmp / "config.yml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    with reg.log.open("wb") as log:
        reg.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, reg.proc, reg.log)
        yield reg
    finally:
        _stop(reg.proc)
        if reg.token is not None:
            reg.token.close()


# -- a recording proxy ---------------------------------------------------------------------------

Rule = Callable[[str, str], bool]
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


@dataclass
class Seen:
    method: str
    path: str
    status: int
    size: int  # bytes of the request body


class Proxy:
    """A plain-HTTP proxy in front of ``upstream`` (``127.0.0.1:PORT``) that records requests.

    :meth:`fail` makes the next ``times`` requests matching ``when(method, path)`` get
    ``status`` (with ``headers``) without reaching the registry.  The Host header is passed on,
    so the registry's upload Locations point back at the proxy.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self._rules: list[tuple[Rule, int, dict[str, str]]] = []
        # tamper(method, path, body) -> body: rewrite what the registry answered (to test verification)
        self.tamper: Callable[[str, str, bytes], bytes] | None = None
        self._lock = threading.Lock()
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def fail(
        self,
        times: int,
        status: int,
        *,
        when: Rule = lambda m, p: True,
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._rules.extend([(when, status, dict(headers or {}))] * times)

    def count(self, method: str, contains: str = "", status: int | None = None) -> int:
        return sum(
            1
            for s in self.seen
            if s.method == method and contains in s.path and (status is None or s.status == status)
        )

    def blob_uploads(self) -> int:
        """Blob bytes sent to the registry: monolithic PUTs with a body, and PATCH chunks."""
        return sum(
            1
            for s in self.seen
            if "/blobs/uploads/" in s.path and s.method in ("PUT", "PATCH") and s.size > 0
        )

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            rule = next((r for r in self._rules if r[0](h.command, h.path)), None)
            if rule is not None:
                self._rules.remove(rule)
        if rule is not None:
            self.seen.append(Seen(h.command, h.path, rule[1], len(body)))
            h.send_response(rule[1])
            for k, v in rule[2].items():
                h.send_header(k, v)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        conn.request(h.command, h.path, body=body if length else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if self.tamper is not None and h.command == "GET":
            data = self.tamper(h.command, h.path, data)
        self.seen.append(Seen(h.command, h.path, resp.status, len(body)))
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP:
                h.send_header(k, v)
        h.send_header(
            "Content-Length", resp.getheader("Content-Length", "0") if h.command == "HEAD" else str(len(data))
        )
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
