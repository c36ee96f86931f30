"""Shared pieces for the fetch tests: a local simple index, generated wheels and projects, targets.

The local index is a real HTTP server on 127.0.0.1 speaking PEP 691 JSON or PEP 503 HTML; it
can demand HTTP basic credentials and records what it was asked, so tests can check what
slimline actually sent.  Nothing here imitates slimline's own code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from slimline.oci.image import Platform
from slimline.plan.model import Artifact, Origin, Plan, Selected
from slimline.target import Target

HOST_TARGET = Target(
    platform=Platform("amd64"),
    python_version=(3, 11, 7),
    interpreter="/usr/bin/python3.11",
    libc="glibc",
    libc_version=(2, 36),
)
ARM64_TARGET = Target(
    platform=Platform("arm64"),
    python_version=(3, 11, 7),
    interpreter="/usr/bin/python3.11",
    libc="glibc",
    libc_version=(2, 36),
)

# Real files on the package index, with the sha256 that a lock records for them.
SIX_WHEEL = Artifact(
    "six-1.17.0-py2.py3-none-any.whl",
    "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
    "wheel",
)
IDNA_WHEEL = Artifact(
    "idna-3.10-py3-none-any.whl", "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3", "wheel"
)
DOCOPT_SDIST = Artifact(
    "docopt-0.6.2.tar.gz", "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491", "sdist"
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_of(*packages: Selected, target: Target = HOST_TARGET) -> Plan:
    return Plan(
        target=target, packages=tuple(sorted(packages, key=lambda s: s.name)), groups=("main",), extras=()
    )


def index_pkg(name: str, version: str, artifact: Artifact, *, url: str, source: str = "") -> Selected:
    return Selected(name, version, Origin("index", url, name=source), artifact)


def make_wheel(
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    body: str = "VALUE = 1\n",
    extra: dict[str, bytes] | None = None,
    metadata: str = "",
) -> bytes:
    """A small valid wheel holding one module ``<name>`` (and the ``extra`` files, by path;
    ``metadata``: more METADATA header lines)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body.encode(),
        **(extra or {}),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata}".encode(),
        f"{dist}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    record = "".join(
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
        for p, d in files.items()
    )
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p, d in files.items():
            zf.writestr(zipfile.ZipInfo(p, (1980, 1, 1, 0, 0, 0)), d)
    return buf.getvalue()


@dataclass
class LocalIndex:
    """A simple index served from memory.  ``files[project] = {filename: bytes}``."""

    files: dict[str, dict[str, bytes]]
    mode: Literal["json", "html", "html-only"] = "json"
    auth: tuple[str, str] | None = None
    advertised: dict[str, str] = field(default_factory=dict)  # filename -> sha256 the page claims
    yanked: frozenset[str] = frozenset()
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    url: str = ""

    def page(self, project: str, *, json_wanted: bool) -> tuple[str, bytes]:
        entries = self.files[project]
        if json_wanted and self.mode == "json":
            data = {
                "meta": {"api-version": "1.1"},
                "name": project,
                "files": [
                    {
                        "filename": fn,
                        "url": f"../../files/{fn}",  # relative: resolved against the page URL
                        "hashes": {"sha256": self.advertised.get(fn, sha256(blob))},
                        "requires-python": ">=3.8",
                        "yanked": fn in self.yanked,
                    }
                    for fn, blob in entries.items()
                ],
            }
            return "application/vnd.pypi.simple.v1+json", json.dumps(data).encode()
        anchors = "".join(
            f'<a href="/files/{fn}#sha256={self.advertised.get(fn, sha256(blob))}" '
            f'data-requires-python="&gt;=3.8"{" data-yanked" if fn in self.yanked else ""}>{fn}</a>\n'
            for fn, blob in entries.items()
        )
        html = f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{anchors}</body></html>"
        return "text/html; charset=utf-8", html.encode()


@contextmanager
def serve(index: LocalIndex) -> Iterator[LocalIndex]:
    """Run ``index`` on 127.0.0.1; ``index.url`` is its simple-index base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            header = self.headers.get("Authorization")
            index.requests.append((self.path, header))
            if index.auth is not None:
                token = base64.b64encode(f"{index.auth[0]}:{index.auth[1]}".encode()).decode()
                if header != f"Basic {token}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            parts = [p for p in self.path.split("/") if p]
            if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.files:
                accept = self.headers.get("Accept", "")
                ctype, body = index.page(parts[1], json_wanted="vnd.pypi.simple.v1+json" in accept)
            elif len(parts) == 2 and parts[0] == "files":
                found = [b for entries in index.files.values() for fn, b in entries.items() if fn == parts[1]]
                if not found:
                    self.send_error(404)
                    return
                ctype, body = "application/octet-stream", found[0]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


def write_project(
    root: Path, name: str, *, backend: Literal["setuptools", "poetry-core", "flit"], body: str
) -> Path:
    """A minimal buildable project with one module ``<name>`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    systems = {
        "setuptools": ('["setuptools>=40.8.0"]', "setuptools.build_meta"),
        "poetry-core": ('["poetry-core>=2.0"]', "poetry.core.masonry.api"),
        "flit": ('["flit_core>=3.4,<4"]', "flit_core.buildapi"),
    }
    requires, api = systems[backend]
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "1.0.0"\ndescription = "test"\nrequires-python = ">=3.8"\n\n'
        f'[build-system]\nrequires = {requires}\nbuild-backend = "{api}"\n'
    )
    pkg = root / name
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(f'"""{name}"""\n{body}')
    return root


def git(*args: str, cwd: Path) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "PATH": "/usr/bin:/bin", "HOME": str(cwd),
    }  # fmt: skip
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def wheel_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()
