"""A hostile HTTP server on 127.0.0.1 for the network corpus, and a child-process runner.

:class:`Hostile` serves routes (path without the query -> behaviour) written byte by byte, so a
test can send what a well-behaved server never would: endless or trickling bodies and headers,
lying ``Content-Length``, gzip bombs, cut connections, redirect loops.  Every behaviour is
bounded in time (:data:`MAX_SERVE`) and stops when the client goes away.  Requests are recorded
(method, path, headers) so tests can check what slimline sent.

:func:`run_child` runs a snippet of slimline code in a child Python whose address space is
limited (``RLIMIT_AS``) and reports its exit code, output, peak RSS and duration: the
measurement of "bounded memory" and "bounded time" for each case.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import slimline

MAX_SERVE = 20.0  # seconds any one behaviour may keep a connection busy
CHUNK = b"x" * 65536

Behaviour = Callable[["Handler"], None]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _any(self) -> None:
        host = self.server.hostile
        host.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        behaviour = host.routes.get(self.path.split("?", 1)[0])
        self.close_connection = True
        try:
            if behaviour is None:
                self.head(404, {"Content-Length": "0"})
            else:
                behaviour(self)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _any

    # -- raw writing ------------------------------------------------------------------------------

    def head(self, status: int, headers: dict[str, str]) -> None:
        lines = [
            f"HTTP/1.1 {status} Hostile",
            "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.head(status, {"Content-Length": str(len(body)), **(headers or {})})
        if self.command != "HEAD":
            self.wfile.write(body)

    def endless(self, chunk: bytes = CHUNK, *, chunked: bool = False) -> None:
        """Write ``chunk`` again and again until the client leaves or MAX_SERVE passes."""
        stop = time.monotonic() + MAX_SERVE
        while time.monotonic() < stop and not self.server.hostile.closing.is_set():
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)

    def trickle(self, data: bytes = b" ", *, every: float = 0.2) -> None:
        """One byte of ``data`` (cycled) per ``every`` seconds until the client leaves or MAX_SERVE."""
        stop = time.monotonic() + MAX_SERVE
        i = 0
        while time.monotonic() < stop and not self.server.hostile.closing.wait(every):
            self.wfile.write(data[i % len(data) : i % len(data) + 1])
            self.wfile.flush()
            i += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hostile: Hostile


@dataclass
class Hostile:
    routes: dict[str, Behaviour] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)
    base: str = ""  # http://127.0.0.1:PORT
    host: str = ""  # 127.0.0.1:PORT

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?", 1)[0] == path]


@contextmanager
def serve() -> Iterator[Hostile]:
    hostile = Hostile()
    server = _Server(("127.0.0.1", 0), Handler)
    server.hostile = hostile
    hostile.host = f"127.0.0.1:{server.server_address[1]}"
    hostile.base = f"http://{hostile.host}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hostile
    finally:
        hostile.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- behaviours ----------------------------------------------------------------------------------


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    return lambda h: h.send(status, body, headers)


def json_answer(status: int, value: object, headers: dict[str, str] | None = None) -> Behaviour:
    return answer(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


def endless(
    status: int = 200, *, headers: dict[str, str] | None = None, chunked: bool = False, chunk: bytes = CHUNK
) -> Behaviour:
    """A body that never ends: delimited by the connection's close, or chunked."""

    def run(h: Handler) -> None:
        h.head(status, {**(headers or {}), **({"Transfer-Encoding": "chunked"} if chunked else {})})
        h.endless(chunk, chunked=chunked)

    return run


def trickle(status: int = 200, *, headers: dict[str, str] | None = None, data: bytes = b" ") -> Behaviour:
    """Headers at once, then one body byte every 0.2 s."""

    def run(h: Handler) -> None:
        h.head(status, headers or {})
        h.trickle(data)

    return run


def trickle_headers() -> Behaviour:
    """A status line, then header bytes one every 0.2 s: the headers never end."""

    def run(h: Handler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        h.trickle(b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")

    return run


def many_headers(*, long_line: bool = False) -> Behaviour:
    """Endless header lines (or one endless header line)."""

    def run(h: Handler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        if long_line:
            h.wfile.write(b"X-Long: ")
            h.endless()
        else:
            h.endless(b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 100) for i in range(500)))

    return run


def gzip_bomb_segments() -> tuple[bytes, bytes]:
    """(first, repeat): a gzip stream that starts with ``first`` and goes on with ``repeat`` any
    number of times; each part inflates to 1 MiB of zeros from about 1 KiB.  Parts end on a full
    flush, so they are independent deflate blocks and can be repeated as they are."""
    zeros = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    return first, repeat


def gzip_bomb(*, content_type: str) -> Behaviour:
    """An endless gzip body (Content-Encoding: gzip) that inflates about 1000 times."""
    first, repeat = gzip_bomb_segments()

    def run(h: Handler) -> None:
        h.head(200, {"Content-Type": content_type, "Content-Encoding": "gzip"})
        h.wfile.write(first)
        h.endless(repeat * 16)

    return run


def gzip_encoded(data: bytes, *, content_type: str = "application/gzip") -> Behaviour:
    """``data`` sent with ``Content-Encoding: gzip`` (what some servers do for .tar.gz files)."""
    packed = gzip.compress(data, mtime=0)
    return answer(200, packed, {"Content-Type": content_type, "Content-Encoding": "gzip"})


def redirect(location: str, status: int = 302) -> Behaviour:
    return answer(status, b"", {"Location": location})


def needs_auth(token: str, then: Behaviour, *, scheme: str = "Basic") -> Behaviour:
    """401 unless the Authorization header is exactly ``token``."""

    def run(h: Handler) -> None:
        if h.headers.get("Authorization") != token:
            h.send(401, b"", {"WWW-Authenticate": f'{scheme} realm="hostile"'})
        else:
            then(h)

    return run


def cut(
    data: bytes,
    *,
    cuts: int,
    ranges: bool,
    at: int | None = None,
    lie: int = 0,
    then: bytes | None = None,
    etag: str = "",
) -> Behaviour:
    """Serve ``data``, but the first ``cuts`` answers break off after ``at`` bytes (half by
    default) although ``Content-Length`` promised all of it.  With ``ranges`` a ``Range:
    bytes=N-`` request gets a 206 of the rest.  ``lie`` adds bytes to every Content-Length;
    ``then`` is served instead of ``data`` after the cuts (a file replaced meanwhile)."""
    count = [0]
    stop = len(data) // 2 if at is None else at

    def run(h: Handler) -> None:
        count[0] += 1
        body = data if then is None or count[0] <= cuts else then
        start = 0
        rng = h.headers.get("Range", "")
        if ranges and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        part = body[start:]
        headers = {"Content-Length": str(len(part) + lie), "Accept-Ranges": "bytes" if ranges else "none"}
        if etag:
            headers["ETag"] = etag
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        h.head(206 if start else 200, headers)
        h.wfile.write(part[: max(0, stop - start)] if count[0] <= cuts else part)

    return run


# -- the child process ---------------------------------------------------------------------------

AS_LIMIT = 1536 << 20  # address space of the child: about 1.5 GB
PEAK_LIMIT_MB = 500  # no case may make slimline's resident memory peak above this

_PRELUDE = r"""
import json, os, resource, sys
limit = int(os.environ["HOSTILE_AS_LIMIT"])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
def peak():
    # VmHWM is the peak resident set of this process's own memory (made new by exec); ru_maxrss
    # would also count the pages of the (large) test process it was forked from
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"PEAK_KB {kb}", file=sys.stderr)
"""
_CHILD = (
    _PRELUDE
    + r"""
from slimline.errors import SlimlineError
namespace = json.loads(sys.argv[2])
rc = 0
try:
    exec(compile(sys.argv[1], "<case>", "exec"), namespace)
except SlimlineError as err:
    print(f"slimline: error: {err}", file=sys.stderr)
    rc = 1
peak()
sys.exit(rc)
"""
)
_CLI = (
    _PRELUDE
    + r"""
from slimline.cli import main
rc = main(sys.argv[1:])
peak()
sys.exit(rc)
"""
)


@dataclass(frozen=True)
class Outcome:
    rc: int
    out: str
    err: str
    seconds: float
    timed_out: bool

    @property
    def peak_mb(self) -> float:
        for line in self.err.splitlines():
            if line.startswith("PEAK_KB "):
                return int(line.split()[1]) / 1024
        return float("nan")

    @property
    def message(self) -> str:
        """What a user would see: stderr without the measurement line."""
        return "\n".join(line for line in self.err.splitlines() if not line.startswith("PEAK_KB "))


def run_child(code: str, values: dict[str, object], *, env: dict[str, str], timeout: float) -> Outcome:
    """Run ``code`` (with ``values`` as its globals) in a child limited to :data:`AS_LIMIT`; a
    :class:`~slimline.errors.SlimlineError` is printed as the command line prints it."""
    return _run([sys.executable, "-c", _CHILD, code, json.dumps(values)], env=env, timeout=timeout)


def run_cli(args: list[str], *, env: dict[str, str], timeout: float, stdin: str = "") -> Outcome:
    """Run the real command line (``slimline.cli.main``) in a child limited to :data:`AS_LIMIT`."""
    return _run([sys.executable, "-c", _CLI, *args], env=env, timeout=timeout, stdin=stdin)


def _run(cmd: list[str], *, env: dict[str, str], timeout: float, stdin: str = "") -> Outcome:
    src = str(Path(slimline.__file__).resolve().parent.parent)
    full_env = {**os.environ, **env, "HOSTILE_AS_LIMIT": str(AS_LIMIT), "PYTHONPATH": src}
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, env=full_env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Outcome(-9, out, err, time.monotonic() - start, True)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start, False)
