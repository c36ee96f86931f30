"""Fixtures for the Debian base tests: generated .deb files, an OCI layout writer, a tampering proxy.

Nothing here imitates slimline's own code: .deb files are written with the stdlib (``ar`` by
hand, ``tarfile``), layouts with plain JSON, and the proxy forwards to the real mirror found
the way slimline finds it (host apt sources / settings), changing only what a test asks for.
"""

from __future__ import annotations

import io
import lzma
import shutil
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import zstandard

from slimline.http import Cap, Http
from slimline.oci.image import Image, index_bytes

# --- generated .deb files ---------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One data.tar entry: kind is "file", "dir", "symlink", "hardlink", "fifo"."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def tar_bytes(members: Sequence[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[m.kind]
            info.linkname = m.target
            tar.addfile(info)
    return buf.getvalue()


def _compress(data: bytes, suffix: str) -> bytes:
    if suffix == ".xz":
        return lzma.compress(data)
    if suffix == ".zst":
        return zstandard.ZstdCompressor().compress(data)
    if suffix == ".gz":
        import gzip

        return gzip.compress(data, mtime=0)
    return data


def ar_archive(members: Sequence[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}".encode() + b"`\n"
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def make_deb(
    path: Path,
    members: Sequence[Member],
    *,
    control: str = "Package: demo\nVersion: 1.0\nArchitecture: all\n",
    md5sums: str = "",
    compression: str = ".xz",
) -> Path:
    ctl = [Member("./control", data=control.encode())]
    if md5sums:
        ctl.append(Member("./md5sums", data=md5sums.encode()))
    path.write_bytes(
        ar_archive(
            [
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", _compress(tar_bytes(ctl), ".gz")),
                (f"data.tar{compression}", _compress(tar_bytes(members), compression)),
            ]
        )
    )
    return path


# --- OCI layout for podman -------------------------------------------------------------------


def write_layout(image: Image, out: Path, *, tag: str = "base") -> str:
    """A minimal OCI image layout holding ``image``; returns the podman reference ``oci:DIR:TAG``."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for layer in image.layers:
        shutil.copyfile(layer.path, blobs / layer.digest.split(":")[1])
    (blobs / image.config_descriptor.digest.split(":")[1]).write_bytes(image.config_bytes)
    (blobs / image.digest.split(":")[1]).write_bytes(image.manifest_bytes)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    ref = image.descriptor(annotations={"org.opencontainers.image.ref.name": tag})
    (out / "index.json").write_bytes(index_bytes([ref]))
    return f"oci:{out}:{tag}"


# --- a proxy of the real mirror that can change what it serves -------------------------------

Rewrite = Callable[[str, bytes], bytes]  # (request path, upstream body) -> body to serve


@dataclass
class Proxy:
    url: str
    requests: list[str]


WHOLE_FILE = Cap(1 << 30, "a file the proxy passes on")  # the mirror's real indexes, in memory


@contextmanager
def mirror_proxy(upstream: str, rewrite: Rewrite) -> Iterator[Proxy]:
    """Serve ``upstream`` on 127.0.0.1, passing every body through ``rewrite``; 404s pass through."""
    http = Http(retries=1)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            resp = http.request("GET", upstream + self.path, stream=False, cap=WHOLE_FILE)
            body = rewrite(self.path, bytes(resp.data)) if resp.status == 200 else b""
            self.send_response(resp.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Proxy(url=f"http://127.0.0.1:{server.server_address[1]}", requests=seen)
    finally:
        server.shutdown()
        server.server_close()


def flip_last_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0xFF])
