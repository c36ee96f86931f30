"""Hostile base images made at test time, the real command line run on them, and what it touched.

Images are written by hand here (not by slimline's writers, which refuse what these tests need):
layer tars from member lists (big members streamed from a repeated pattern, so a test never
holds them), OCI layouts and docker archives whose JSON a test may bend before it is written,
and a static registry on 127.0.0.1 that serves whatever bytes it is given.

:func:`run_slimline` runs ``python -m slimline`` from this checkout in a child with an address
space limit, its own HOME, TMPDIR and cache under the test's directory, and reports its exit
status, output and peak resident memory.  :func:`snapshot` records every file under a directory
(kind, mode, size, mtime, content) so that a test can prove nothing outside the directories
slimline owns was written, touched or deleted.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from slimline.errors import ExitStatus
from slimline.target import LABEL_INTERPRETER, LABEL_LIBC, LABEL_PYTHON

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "src"
MIB = 1 << 20
MEMORY_LIMIT = 1536 * MIB  # RLIMIT_AS of every slimline child: a runaway read fails, not the machine
PEAK_LIMIT = 500 * MIB  # what the issue allows slimline's resident memory to reach on any case
OLD = 1_000_000_000  # mtime (2001) given to sentinel files: a touch moves it

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LABELS = {LABEL_PYTHON: "3.11.2", LABEL_INTERPRETER: "/usr/bin/python3.11", LABEL_LIBC: "glibc-2.36"}
PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# --- layers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One tar member; ``data`` bytes, or ``repeat`` * ``size`` bytes streamed (for big files)."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644
    repeat: bytes = b""
    size: int = 0


def file(name: str, data: bytes, mode: int = 0o644) -> Member:
    return Member(name, data, mode=mode)


def big(name: str, size: int, pattern: bytes) -> Member:
    return Member(name, repeat=pattern, size=size)


def directory(name: str, mode: int = 0o755) -> Member:
    return Member(name, kind=tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str) -> Member:
    return Member(name, kind=tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Member:
    return Member(name, kind=tarfile.LNKTYPE, linkname=target)


BASE_FILES = (
    file("etc/passwd", PASSWD),
    file("usr/bin/python3.11", b"#!/bin/false\n", 0o755),
    symlink("usr/bin/python3", "python3.11"),
    directory("tmp", 0o1777),
    file("usr/lib/x86_64-linux-gnu/libc.so.6", b"GNU C Library (Debian GLIBC 2.36-9) stable release\n"),
)


class _Repeat(io.RawIOBase):
    def __init__(self, pattern: bytes, size: int) -> None:
        self._chunk = pattern * max(1, MIB // len(pattern))
        self._left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        out = (self._chunk * (n // len(self._chunk) + 1))[:n] if n > len(self._chunk) else self._chunk[:n]
        self._left -= len(out)
        return out


class _Hashing(io.RawIOBase):
    def __init__(self, out: BinaryIO) -> None:
        self.out, self.hash = out, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return self.out.write(data)


@dataclass(frozen=True)
class Blob:
    """A layer blob on disk with what a descriptor and a config say of it."""

    path: Path
    digest: str
    diff_id: str
    size: int
    media_type: str


def layer(path: Path, members: Iterable[Member], *, gzipped: bool = True) -> Blob:
    """Write a layer tar (gzip level 1 unless ``gzipped`` is False) of ``members`` to ``path``."""
    with path.open("wb") as raw:
        sink: BinaryIO = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) if gzipped else raw  # type: ignore[assignment]
        hashing = _Hashing(sink)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for m in members:
                info = tarfile.TarInfo(m.name)
                info.type, info.linkname, info.mode, info.mtime = m.kind, m.linkname, m.mode, 0
                if m.repeat:
                    info.size = m.size
                    tar.addfile(info, _Repeat(m.repeat, m.size))
                elif m.kind == tarfile.REGTYPE:
                    info.size = len(m.data)
                    tar.addfile(info, io.BytesIO(m.data))
                else:
                    tar.addfile(info)
        if gzipped:
            sink.close()
    diff_id = "sha256:" + hashing.hash.hexdigest()
    return from_file(path, diff_id=diff_id, media_type=LAYER_GZIP if gzipped else LAYER_TAR)


def from_file(path: Path, *, diff_id: str, media_type: str) -> Blob:
    """A blob for the bytes already in ``path``, described as ``media_type`` with ``diff_id``."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return Blob(path, "sha256:" + h.hexdigest(), diff_id, path.stat().st_size, media_type)


def raw_blob(path: Path, data: bytes, *, media_type: str = LAYER_GZIP, diff_id: str = "") -> Blob:
    path.write_bytes(data)
    return from_file(path, diff_id=diff_id or sha(data), media_type=media_type)


# --- image documents ----------------------------------------------------------------------------


Patch = Callable[[dict[str, Any]], None]


@dataclass
class Docs:
    """The JSON of one image, built from its layers; patch any of it before writing."""

    blobs: list[Blob]
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": dict(LABELS)},
            "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in self.blobs]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(self.blobs))],
        }
        self.manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {},  # filled from the (patched) config when written
            "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in self.blobs],
        }


def oci_layout(
    dest: Path,
    blobs: list[Blob],
    *,
    config: Patch | None = None,
    manifest: Patch | None = None,
    index: Callable[[dict[str, Any]], Any] | None = None,
    tag: str = "base",
) -> str:
    """Write an OCI layout of one image; each patch may change its document in place (``index``
    may return a replacement, e.g. something that is not an object).  Returns ``oci:DEST:TAG``."""
    docs = Docs(blobs)
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for b in blobs:
        target = dest / "blobs" / "sha256" / b.digest.removeprefix("sha256:")
        if "/" not in b.digest and not target.exists():
            shutil.copyfile(b.path, target)
    if config:
        config(docs.config)
    config_bytes = canonical(docs.config)
    docs.manifest["config"] = {"mediaType": CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)}
    if manifest:
        manifest(docs.manifest)
    manifest_bytes = canonical(docs.manifest)
    for data in (config_bytes, manifest_bytes):
        (dest / "blobs" / "sha256" / sha(data).removeprefix("sha256:")).write_bytes(data)
    doc: Any = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": sha(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    if index:
        doc = index(doc) or doc
    (dest / "index.json").write_bytes(canonical(doc))
    (dest / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
    return f"oci:{dest}:{tag}"


def docker_archive(
    dest: Path,
    blobs: list[Blob],
    *,
    config: Patch | None = None,
    entry: Patch | None = None,
    extra: Iterable[tarfile.TarInfo] = (),
) -> str:
    """Write a legacy docker-archive (``<n>/layer.tar`` + config + ``manifest.json``); ``entry``
    may change the manifest.json entry; ``extra`` members are added as they are.  Returns its ref."""
    docs = Docs(blobs)
    if config:
        config(docs.config)
    config_bytes = canonical(docs.config)
    config_name = sha(config_bytes).removeprefix("sha256:") + ".json"
    item: dict[str, Any] = {
        "Config": config_name,
        "RepoTags": ["base:latest"],
        "Layers": [f"{i}/layer.tar" for i in range(len(blobs))],
    }
    if entry:
        entry(item)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, b in enumerate(blobs):
            tar.add(b.path, arcname=f"{i}/layer.tar")
        for name, data in ((config_name, config_bytes), ("manifest.json", canonical([item]))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return f"docker-archive:{dest}"


@contextlib.contextmanager
def static_registry(paths: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """A registry on 127.0.0.1 serving ``paths`` (URL path -> (content type, body)); ``/v2/``
    answers 200 without auth.  Yields ``127.0.0.1:PORT``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, body: bool) -> None:
            found = {"/v2/": ("application/json", b"{}"), **paths}.get(self.path)
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", found[0])
            self.send_header("Content-Length", str(len(found[1])))
            self.end_headers()
            if body:
                self.wfile.write(found[1])

        def do_GET(self) -> None:
            self._reply(True)

        def do_HEAD(self) -> None:
            self._reply(False)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def registry_paths(
    repo: str, blobs: list[Blob], *, config: Patch | None = None, manifest: Patch | None = None
) -> dict[str, tuple[str, bytes]]:
    """What :func:`static_registry` serves for one image tagged ``latest`` in ``repo``."""
    docs = Docs(blobs)
    if config:
        config(docs.config)
    config_bytes = canonical(docs.config)
    docs.manifest["config"] = {"mediaType": CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)}
    if manifest:
        manifest(docs.manifest)
    manifest_bytes = canonical(docs.manifest)
    out = {
        f"/v2/{repo}/manifests/latest": (MANIFEST, manifest_bytes),
        f"/v2/{repo}/manifests/{sha(manifest_bytes)}": (MANIFEST, manifest_bytes),
        f"/v2/{repo}/blobs/{sha(config_bytes)}": ("application/octet-stream", config_bytes),
    }
    for b in blobs:
        out[f"/v2/{repo}/blobs/{b.digest}"] = ("application/octet-stream", b.path.read_bytes())
    return out


# the statuses of a refusal (README, "Exit statuses"): which kind depends on the case
REFUSED = frozenset(
    {ExitStatus.ERROR, ExitStatus.INPUT, ExitStatus.NETWORK, ExitStatus.BUILD, ExitStatus.VERIFICATION}
)


# --- running slimline and watching the file system ----------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    peak: int  # the child's peak resident memory, bytes

    def refused(self, *phrases: str) -> None:
        """A refusal's exit status, one ``slimline: error:`` line naming every phrase, no traceback."""
        assert self.code in REFUSED, f"exit {self.code}\n{self.err[-3000:]}"
        assert "Traceback" not in self.err, self.err[-3000:]
        assert self.err.count("slimline: error:") == 1, self.err[-3000:]
        for phrase in phrases:
            assert phrase in self.err, f"{phrase!r} not in:\n{self.err[-3000:]}"

    def ok(self) -> str:
        assert self.code == 0, f"exit {self.code}\n{self.err[-3000:]}"
        assert "Traceback" not in self.err, self.err[-3000:]
        return self.out.strip().splitlines()[-1]


@dataclass(frozen=True)
class Place:
    """The directories of one case: slimline owns ``cache``, ``tmp`` and ``out``; ``sentinel``
    holds files a hostile image aims at; ``inputs`` the images; all under ``root``."""

    root: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def sentinel(self) -> Path:
        return self.root / "sentinel"

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    def owned(self) -> list[Path]:
        return [self.cache, self.tmp, self.out, self.root / "home", self.root / "logs"]


def place(root: Path) -> Place:
    p = Place(root)
    for d in (p.tmp, p.sentinel, p.inputs, root / "home", root / "logs"):
        d.mkdir(parents=True, exist_ok=True)
    for name in ("victim", "x"):
        (p.sentinel / name).write_bytes(b"do not touch\n")
        os.utime(p.sentinel / name, (OLD, OLD))
    (p.sentinel / "dir").mkdir(exist_ok=True)
    os.utime(p.sentinel / "dir", (OLD, OLD))
    os.utime(p.sentinel, (OLD, OLD))
    return p


def snapshot(root: Path, *, skip: Iterable[Path] = ()) -> dict[str, tuple[int, int, int, str]]:
    """path -> (mode, size, mtime_ns, sha256 of the bytes or the link text) of everything under
    ``root``, not descending into ``skip`` (``root``'s own mtime is left out: slimline makes the
    directories it owns there, and its temporary directories beside an output)."""
    skipped = {str(p) for p in skip}
    out: dict[str, tuple[int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skipped]
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                content = os.readlink(path)
            elif os.path.isfile(path):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest() if st.st_size < 64 * MIB else ""
            else:
                content = ""
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, content)
    return out


def child_env(p: Place, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a slimline child: this checkout's sources, ``p``'s cache, TMPDIR and HOME."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(SRC),
        "HOME": str(p.root / "home"),
        "TMPDIR": str(p.tmp),
        "SLIMLINE_CACHE_DIR": str(p.cache),
        "MALLOC_ARENA_MAX": "2",  # address space is limited: no 64 MiB arena per thread
        "LC_ALL": "C.UTF-8",
    }
    if "SSL_CERT_FILE" in os.environ:
        env["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
    return {**env, **(extra or {})}


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def start_slimline(
    p: Place,
    *args: str,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
    log: str = "run",
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """``python -m slimline ARGS`` started (see :func:`run_slimline`), its output in
    ``p.root/logs/LOG.out`` and ``.err``; ``prefix`` runs it through a wrapper (``setpriv ...``);
    ``new_session`` makes it the leader of a process group of its own (to kill it with its children).

    It runs under GNU ``time``, which writes its peak resident memory to ``LOG.rss``: the child's
    own ``ru_maxrss`` would count the pages of this (large) test process it was forked from."""
    logs = p.root / "logs"
    measure = ("/usr/bin/time", "-f", "%M", "-o", str(logs / f"{log}.rss"))
    with (logs / f"{log}.out").open("wb") as out, (logs / f"{log}.err").open("wb") as err:
        return subprocess.Popen(
            [*measure, *prefix, sys.executable, "-m", "slimline", *args],
            stdout=out,
            stderr=err,
            env=child_env(p, env),
            cwd=p.root,
            preexec_fn=_limit,  # the limit must be set in the child, before exec
            start_new_session=new_session,
        )


def run_slimline(
    p: Place,
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
    check_outside: bool = True,
) -> Run:
    """``python -m slimline ARGS`` from this checkout, under :data:`MEMORY_LIMIT`, with the cache,
    TMPDIR and HOME of ``p``; waits at most ``timeout`` seconds.  Asserts that nothing under
    ``p.root`` but the directories slimline owns changed while it ran (unless ``check_outside``
    is False)."""
    before = snapshot(p.root, skip=p.owned()) if check_outside else {}
    proc = start_slimline(p, *args, env=env, prefix=prefix, new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    if check_outside:
        assert snapshot(p.root, skip=p.owned()) == before, (
            "slimline changed a file outside its own directories"
        )
    return Run(
        proc.returncode,
        (p.root / "logs" / "run.out").read_text(errors="replace"),
        (p.root / "logs" / "run.err").read_text(errors="replace"),
        int((p.root / "logs" / "run.rss").read_text().split()[-1]) * 1024,  # GNU time: KiB
    )
