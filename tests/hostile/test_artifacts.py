"""Hostile artifacts: wheels, sdists, url and file dependencies, and the locks that name them.

Each case writes a project whose lock names one hostile artifact (generated here, see
:mod:`tests.hostile.artifacts_corpus`), serves it from a real HTTP server on 127.0.0.1 and runs
the real ``slimline build`` in a child process whose address space is capped
(:data:`AS_LIMIT`).  Every case asserts:

* the outcome: refused (exit 1, one ``slimline: error:`` matching the case's pattern) or
  contained (exit 0 and the case's own check of the image);
* no ``Traceback``/``MemoryError``, and a peak resident size under :data:`MAX_RSS`;
* nothing was written outside the cache, the output and the temp directory given to
  slimline (the sandbox is snapshotted before and after; escape targets are also looked for
  by name);
* no credential of a URL appears in the output, the image or the cache's text.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slimline import layers
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci import layout, reference
from slimline.oci.image import Config, Image, Platform
from slimline.target import LABEL_INTERPRETER, LABEL_LIBC, LABEL_PYTHON
from tests.artifacts.helpers import LocalIndex, serve
from tests.hostile import artifacts_corpus as corpus
from tests.hostile.artifacts_corpus import DIST, NAME, SDIST_NAME, WHEEL_NAME, Entry, Locked, Project, sha256
from tests.hostile.helpers import REFUSED

SRC = Path(__file__).resolve().parents[2] / "src"
AS_LIMIT = 1536 << 20  # address space of the child: Python and its libraries need some
MAX_RSS = 500 << 20  # the bound on slimline's peak memory for any hostile case
SECRET = "s3cret-pw"


@pytest.fixture(scope="module")
def base_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny ``oci:`` base: a fake interpreter, the labels slimline reads, a non-root user."""
    root = tmp_path_factory.mktemp("hostile-base")
    files = TreeBuilder()
    files.data(
        "etc/passwd", b"root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
    )
    files.data("usr/bin/python3.11", b"#!/bin/false\n", mode=0o755)
    files.dir("tmp", mode=0o1777)
    labels = {LABEL_PYTHON: "3.11.2", LABEL_INTERPRETER: "/usr/bin/python3.11", LABEL_LIBC: "glibc-2.36"}
    cache = Cache(root / "cache")
    image = Image(
        platform=Platform.parse("linux/amd64"),
        layers=(layers.write(files.freeze(), cache=cache),),
        config=Config(env=("PATH=/usr/bin:/bin",), labels=labels),
    )
    layout.write([image], reference.OciRef(root / "base", "base"))
    return f"oci:{root / 'base'}:base"


@dataclass
class Sandbox:
    """One case's directories: only ``cache``, ``out`` and ``tmp`` are slimline's to write."""

    root: Path
    index: LocalIndex
    escapes: list[Path] = field(default_factory=list)  # paths a successful attack would create

    @property
    def url(self) -> str:
        return self.index.url.removesuffix("/simple")

    def serve(self, filename: str, data: bytes) -> str:
        """Serve ``data`` at ``/files/<filename>`` (``filename`` as it appears in the URL)."""
        self.index.files.setdefault(NAME, {})[filename] = data
        return f"{self.url}/files/{filename}"

    def project(
        self,
        *packages: Locked,
        slimline: Mapping[str, object] | None = None,
        urls: Mapping[str, str] | None = None,
    ) -> None:
        spec = Project(list(packages), self.index.url, slimline=dict(slimline or {}), urls=dict(urls or {}))
        corpus.write_project(self.root / "proj", spec)

    def snapshot(self) -> dict[str, tuple[int, int, int, int]]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = Path(dirpath)
            if base == self.root:
                dirnames[:] = [d for d in dirnames if d not in ("cache", "out", "tmp", "logs")]
            for name in [*filenames, *dirnames]:
                st = (base / name).lstat()
                key = str((base / name).relative_to(self.root))
                out[key] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink)
        return out


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    max_rss: int  # bytes


def run_build(sb: Sandbox, base: str, *extra: str, timeout: float = 60) -> Outcome:
    """``python -m slimline build`` in a child capped at :data:`AS_LIMIT`; its peak RSS measured by
    GNU ``time`` (the child's own ``ru_maxrss`` would count this large test process it is forked
    from: Linux keeps that high-water mark across exec)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "TMPDIR": str(sb.root / "tmp"),
        "HOME": str(sb.root / "home"),
        "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas reserve address space, not memory
        "SLIMLINE_CACHE_DIR": str(sb.root / "cache"),
        # offline: build backends would come from the local index, which has none
        "SLIMLINE_INDEX_URL": sb.index.url,
        "PIP_INDEX_URL": sb.index.url,
        "PIP_CONFIG_FILE": os.devnull,
    }
    env.pop("SOURCE_DATE_EPOCH", None)
    rss = sb.root / "logs" / "rss"
    measure = ["/usr/bin/time", "-f", "%M", "-o", str(rss)]
    cmd = [*measure, sys.executable, "-m", "slimline", "build", str(sb.root / "proj"), "--base", base,
           "--to", f"oci:{sb.root / 'out'}:t", "--cache-dir", str(sb.root / "cache"), *extra]  # fmt: skip

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))

    with open(sb.root / "logs" / "stdout", "w+") as out, open(sb.root / "logs" / "stderr", "w+") as err:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, env=env, cwd=sb.root, preexec_fn=limit, start_new_session=True
        )
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))  # time and its child
        timer.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(proc.returncode, out.read(), err.read(), int(rss.read_text().split()[-1]) * 1024)


def image_text(sb: Sandbox) -> str:
    """Every blob of the output layout, layers decompressed, as text (for credential checks)."""
    parts = []
    for blob in (sb.root / "out" / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        parts.append(data.decode("latin-1"))
    return "\n".join(parts)


def direct_urls(sb: Sandbox) -> list[dict[str, object]]:
    import io
    import tarfile

    found = []
    for blob in (sb.root / "out" / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        if data[:2] != b"\x1f\x8b":
            continue
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tf:
            for m in tf.getmembers():
                if m.name.endswith("direct_url.json"):
                    stream = tf.extractfile(m)
                    assert stream is not None
                    found.append(json.loads(stream.read()))
    return found


# --- the cases --------------------------------------------------------------------------------------
# A case prepares the sandbox (artifact served, project and lock written) and returns what the
# run must show: an error pattern (refusal) or None plus a check (containment).

Setup = Callable[[Sandbox], "Expect"]


@dataclass(frozen=True)
class Expect:
    error: str | None  # a regex of the error (refusals); None: the build must succeed
    check: Callable[[Sandbox, Outcome], None] | None = None
    args: tuple[str, ...] = ()


HTTP_OK = {"plain-http": [NAME]}  # the local server speaks plain HTTP: opted in, except where tested


def _url_wheel(sb: Sandbox, data: bytes, *, name: str = WHEEL_NAME, lock_name: str = WHEEL_NAME) -> Locked:
    url = sb.serve(name, data)
    return Locked(files=[(lock_name, sha256(data))], source={"type": "url", "url": url})


def _index_wheel(sb: Sandbox, data: bytes, *, name: str = WHEEL_NAME) -> Locked:
    sb.serve(name, data)
    return Locked(files=[(name, sha256(data))])


def _index_sdist(sb: Sandbox, data: bytes) -> Locked:
    sb.serve(SDIST_NAME, data)
    return Locked(files=[(SDIST_NAME, sha256(data))])


def url_filename_traversal(sb: Sandbox) -> Expect:
    sb.escapes.append(sb.root / "somewhere")
    url = sb.serve(".%2F..%2F..%2F..%2Fsomewhere%2Fevil.whl", corpus.wheel())
    sb.project(Locked(source={"type": "url", "url": url}), slimline={**HTTP_OK, "unverified": [NAME]})
    return Expect(r"evil\.whl.*(not a valid|file name)")


def lock_filename_traversal(sb: Sandbox) -> Expect:
    sb.escapes.append(sb.root / "somewhere")
    data = corpus.wheel()
    name = f"../../../somewhere/{WHEEL_NAME}"
    url = sb.serve(WHEEL_NAME, data)
    sb.project(Locked(files=[(name, sha256(data))], source={"type": "url", "url": url}), slimline=HTTP_OK)
    return Expect(r"not a valid (wheel|sdist) file name|file name")


def url_without_hash(sb: Sandbox) -> Expect:
    url = sb.serve(WHEEL_NAME, corpus.wheel())
    sb.project(Locked(source={"type": "url", "url": url}), slimline=HTTP_OK)
    return Expect(r"no hash.*unverified")


def url_hash_for_other_wheel(sb: Sandbox) -> Expect:
    url = sb.serve(WHEEL_NAME, corpus.wheel())
    other = f"{NAME}-{corpus.VERSION}-cp39-cp39-win_amd64.whl"
    sb.project(Locked(files=[(other, "0" * 64)], source={"type": "url", "url": url}), slimline=HTTP_OK)
    return Expect(r"hash mismatch")


def url_plain_http(sb: Sandbox) -> Expect:
    locked = _url_wheel(sb, corpus.wheel())
    sb.project(locked)

    def check(sb: Sandbox, _: Outcome) -> None:
        assert not [p for p, _ in sb.index.requests if p.startswith("/files/")], "fetched before refusing"

    return Expect(r"plain HTTP.*plain-http", check)


def url_unverified_opt_in(sb: Sandbox) -> Expect:
    url = sb.serve(WHEEL_NAME, corpus.wheel())
    sb.project(Locked(source={"type": "url", "url": url}), slimline={**HTTP_OK, "unverified": [NAME]})

    def check(sb: Sandbox, run: Outcome) -> None:
        assert "warning" in run.err and "without checking" in run.err and NAME in run.err

    return Expect(None, check)


def file_without_hash(sb: Sandbox) -> Expect:
    (sb.root / "proj" / "wheels").mkdir(parents=True)
    (sb.root / "proj" / "wheels" / WHEEL_NAME).write_bytes(corpus.wheel())
    sb.project(Locked(source={"type": "file", "url": f"wheels/{WHEEL_NAME}"}))
    return Expect(r"no hash.*unverified")


def url_credentials(sb: Sandbox) -> Expect:
    data = corpus.wheel()
    url = sb.serve(WHEEL_NAME, data).replace("http://", f"http://user:{SECRET}@")
    sb.project(
        Locked(files=[(WHEEL_NAME, sha256(data))], source={"type": "url", "url": url}),
        slimline=HTTP_OK,
        urls={"repository": f"https://token:{SECRET}@example.invalid/repo"},
    )

    def check(sb: Sandbox, run: Outcome) -> None:
        found = direct_urls(sb)
        assert found and all("@" not in str(d["url"]) for d in found), found
        assert found[0]["url"] == url.replace(f"user:{SECRET}@", "")

    return Expect(None, check, ("-v",))


def url_credentials_in_errors(sb: Sandbox) -> Expect:
    url = sb.serve(WHEEL_NAME, corpus.wheel()).replace("http://", f"http://user:{SECRET}@")
    sb.project(Locked(files=[(WHEEL_NAME, "1" * 64)], source={"type": "url", "url": url}), slimline=HTTP_OK)
    return Expect(r"hash mismatch", None, ("-v",))


def record_bomb(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.record_bomb(mib=256)))
    return Expect(r"RECORD.*(larger|more) than")


def script_bomb(sb: Sandbox) -> Expect:
    data = corpus.bomb_wheel(f"{NAME}-{corpus.VERSION}.data/scripts/run", mib=512, head=b"#!python\n",
                             chunk=b"# " * (corpus.MIB // 2))  # fmt: skip
    sb.project(_index_wheel(sb, data))
    return Expect(r"unpack|bomb|larger than")


def elf_bomb(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.elf_bomb(mib=700)))
    return Expect(r"unpack|bomb|larger than")


def zip_bomb_actual(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.bomb_wheel(f"{NAME}/zeros.bin", mib=600)))
    return Expect(r"unpack|bomb|larger than")


def zip_bomb_declared(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.declared_size_lie(declared=0xFFFFFFF0)))
    return Expect(r"unpack|bomb|larger than|does not match RECORD")


def sdist_link_chain(sb: Sandbox) -> Expect:
    sb.escapes.append(sb.root / "proj" / "payload")
    top = f"{NAME}-{corpus.VERSION}"
    entries = [
        Entry(f"{top}/deep", "dir"),
        Entry(f"{top}/deep/d", "symlink", link=".."),
        Entry(f"{top}/deep/e", "symlink", link="d/../../../proj"),
        Entry(f"{top}/deep/e/payload", data=b"written through a link\n"),
    ]
    sb.project(_index_sdist(sb, corpus.sdist(entries)))
    return Expect(rf"{SDIST_NAME}.*deep/e")


def sdist_link_chain_no_write(sb: Sandbox) -> Expect:
    top = f"{NAME}-{corpus.VERSION}"
    entries = [
        Entry(f"{top}/deep", "dir"),
        Entry(f"{top}/deep/d", "symlink", link=".."),
        Entry(f"{top}/deep/e", "symlink", link="d/../../x"),
    ]
    sb.project(_index_sdist(sb, corpus.sdist(entries)))
    return Expect(rf"{SDIST_NAME}.*deep/e.*(link|outside)")


def duplicate_members(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.duplicate_member()))
    return Expect(r"duplicate member")


def sdist_device(sb: Sandbox) -> Expect:
    sb.project(_index_sdist(sb, corpus.sdist([Entry(f"{NAME}-{corpus.VERSION}/null", "chr")])))
    return Expect(r"device")


def sdist_fifo(sb: Sandbox) -> Expect:
    sb.project(_index_sdist(sb, corpus.sdist([Entry(f"{NAME}-{corpus.VERSION}/pipe", "fifo")])))
    return Expect(r"fifo")


def wheel_member_dotdot(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.wheel([("../../../../evil.pth", b"import os\n")])))
    return Expect(r"escapes")


def wheel_member_absolute(sb: Sandbox) -> Expect:
    target = Path(f"/tmp/slimline-hostile-{uuid.uuid4().hex}")
    sb.escapes.append(target)
    sb.project(_index_wheel(sb, corpus.wheel([(str(target), b"x\n")])))
    return Expect(r"escapes|absolute")


def wheel_data_scheme_escape(sb: Sandbox) -> Expect:
    member = f"{NAME}-{corpus.VERSION}.data/purelib/../../../../../etc/evil"
    sb.project(_index_wheel(sb, corpus.wheel([(member, b"x\n")])))
    return Expect(r"escapes|invalid")


def record_lists_traversal(sb: Sandbox) -> Expect:
    """A RECORD row naming a file the zip does not hold is never written: contained."""
    files = [(f"{NAME}/__init__.py", b"VALUE = 1\n"), *corpus.metadata()]
    record = "".join(corpus.record_line(p, d) for p, d in files) + "../../outside.py,sha256=AAAA,1\n"
    sb.project(_index_wheel(sb, corpus.wheel(record=record + f"{DIST}/RECORD,,\n")))

    def check(sb: Sandbox, _: Outcome) -> None:
        assert "outside.py\x00" not in image_text(sb)

    return Expect(None, check)


def record_hash_mismatch(sb: Sandbox) -> Expect:
    files = [(f"{NAME}/__init__.py", b"VALUE = 2\n"), *corpus.metadata()]
    record = "".join(corpus.record_line(p, d) for p, d in files) + f"{DIST}/RECORD,,\n"
    sb.project(_index_wheel(sb, corpus.wheel(record=record)))
    return Expect(r"does not match RECORD")


def record_size_mismatch(sb: Sandbox) -> Expect:
    data = b"VALUE = 1\n"
    rows = corpus.record_line(f"{NAME}/__init__.py", data).replace(f",{len(data)}\n", f",{len(data) + 5}\n")
    rows += "".join(corpus.record_line(p, d) for p, d in corpus.metadata())
    sb.project(_index_wheel(sb, corpus.wheel(record=rows + f"{DIST}/RECORD,,\n")))
    return Expect(r"does not match RECORD")


def member_not_in_record(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.wheel(unlisted=[(f"{NAME}/sneaky.py", b"import os\n")])))
    return Expect(r"not mentioned in RECORD|RECORD")


def name_not_metadata(sb: Sandbox) -> Expect:
    meta = corpus.metadata("other", corpus.VERSION)
    data = corpus.wheel(meta=meta, dist=f"other-{corpus.VERSION}.dist-info")
    sb.project(_index_wheel(sb, data))
    return Expect(r"invalid|dist-info|other")


def bad_wheel_filename(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.wheel(), name="evil.whl"))
    return Expect(r"no wheel the target can use|not a valid")


def sdist_dotdot(sb: Sandbox) -> Expect:
    sb.escapes.append(sb.root / "tmp" / "evil.py")
    sb.project(_index_sdist(sb, corpus.sdist([Entry(f"{NAME}-{corpus.VERSION}/../../evil.py", data=b"x")])))
    return Expect(r"escapes|outside")


def sdist_absolute(sb: Sandbox) -> Expect:
    target = Path(f"/tmp/slimline-hostile-{uuid.uuid4().hex}")
    sb.escapes.append(target)
    sb.project(_index_sdist(sb, corpus.sdist([Entry(str(target), data=b"x")])))
    return Expect(r"escapes|absolute|outside")


def sdist_symlink_out(sb: Sandbox) -> Expect:
    sb.project(
        _index_sdist(
            sb,
            corpus.sdist(
                [Entry(f"{NAME}-{corpus.VERSION}/passwd", "symlink", link="../../../../etc/passwd")]
            ),
        )
    )
    return Expect(r"escapes|outside")


def sdist_hardlink_out(sb: Sandbox) -> Expect:
    sb.project(
        _index_sdist(
            sb, corpus.sdist([Entry(f"{NAME}-{corpus.VERSION}/passwd", "hardlink", link="/etc/passwd")])
        )
    )
    return Expect(r"escapes|outside|absolute")


def sdist_gzip_bomb(sb: Sandbox) -> Expect:
    sb.project(_index_sdist(sb, corpus.gzip_bomb(mib=2000)))
    return Expect(r"unpack|bomb|larger than")


def url_subdirectory_escape(sb: Sandbox) -> Expect:
    data = corpus.sdist([])
    url = sb.serve(SDIST_NAME, data)
    source = {"type": "url", "url": url, "subdirectory": "../../.."}
    sb.project(Locked(files=[(SDIST_NAME, sha256(data))], source=source), slimline=HTTP_OK)
    return Expect(r"climbs out")


def record_rows_bomb(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.record_rows_bomb(mib=60)))
    return Expect(r"RECORD has more than \d+ rows")


def record_long_row(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.record_long_row(mib=60)))
    return Expect(r"RECORD")


def entry_points_bomb(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.entry_points(count=150_000)))
    return Expect(r"entry_points\.txt declares \d+ MiB unpacked, more than the 1 MiB")


def entry_points_duplicate(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.entry_points(count=2, duplicate=True)))
    return Expect(r"the wheel is invalid: .*s0000000.*already exists")


def zip_crc_lie(sb: Sandbox) -> Expect:
    sb.project(_index_wheel(sb, corpus.crc_lie()))
    return Expect(r"damaged|CRC")


def sdist_pax_bomb(sb: Sandbox) -> Expect:
    sb.project(_index_sdist(sb, corpus.pax_bomb(mib=1024)))
    return Expect(r"tar header record of \d+ bytes")


def sdist_hardlink_through_links(sb: Sandbox) -> Expect:
    """``e`` resolves to the sandbox through ``d``; a hard link through it would reach the
    project's own files."""
    top = f"{NAME}-{corpus.VERSION}"
    entries = [
        Entry(f"{top}/a", "dir"),
        Entry(f"{top}/a/d", "symlink", link=".."),
        Entry(f"{top}/a/e", "symlink", link="d/../../.."),
        Entry(f"{top}/a/h", "hardlink", link=f"{top}/a/e/proj/main.py"),
    ]
    sb.project(_index_sdist(sb, corpus.sdist(entries)))
    return Expect(r"hard link to .*not a file unpacked before it")


def lock_hash_not_a_digest(sb: Sandbox) -> Expect:
    data = corpus.wheel()
    sb.serve(WHEEL_NAME, data)
    sb.project(Locked(files=[(WHEEL_NAME, "../../../../etc/passwd")]))
    return Expect(r"files\[0\]\.hash.*sha256:<64 hex digits>")


CASES: dict[str, Setup] = {f.__name__: f for f in [
    url_filename_traversal, lock_filename_traversal, url_without_hash, url_hash_for_other_wheel,
    url_plain_http, url_unverified_opt_in, file_without_hash, url_credentials, url_credentials_in_errors,
    record_bomb, script_bomb, elf_bomb, zip_bomb_actual, zip_bomb_declared, sdist_link_chain,
    sdist_link_chain_no_write, duplicate_members, sdist_device, sdist_fifo, wheel_member_dotdot,
    wheel_member_absolute, wheel_data_scheme_escape, record_lists_traversal, record_hash_mismatch,
    record_size_mismatch, member_not_in_record, name_not_metadata, bad_wheel_filename, sdist_dotdot,
    sdist_absolute, sdist_symlink_out, sdist_hardlink_out, sdist_gzip_bomb, url_subdirectory_escape,
    record_rows_bomb, zip_crc_lie, sdist_pax_bomb, sdist_hardlink_through_links, lock_hash_not_a_digest,
    record_long_row, entry_points_bomb, entry_points_duplicate,
]}  # fmt: skip


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    for d in ("tmp", "home", "logs"):
        (tmp_path / d).mkdir()
    with serve(LocalIndex(files={NAME: {}})) as index:
        yield Sandbox(tmp_path, index)


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_artifact_is_refused_or_contained(case: str, sandbox: Sandbox, base_ref: str) -> None:
    expect = CASES[case](sandbox)
    before = sandbox.snapshot()
    started = time.monotonic()
    run = run_build(sandbox, base_ref, *expect.args)
    took = time.monotonic() - started
    shown = f"[{case}: exit {run.code}, {took:.1f} s, {run.max_rss >> 20} MiB]\n{run.err[-3000:]}"
    print(shown)  # pytest -rP shows what each case printed
    assert "Traceback" not in run.err and "MemoryError" not in run.err, shown
    if expect.error is None:
        assert run.code == 0, shown
    else:
        assert run.code in REFUSED, shown
        assert run.err.count("slimline: error:") == 1, shown
        error = run.err[run.err.index("slimline: error:") :]
        assert re.search(expect.error, error, re.S), shown
    if expect.check is not None:
        expect.check(sandbox, run)
    assert run.max_rss < MAX_RSS, shown
    assert sandbox.snapshot() == before, f"files outside slimline's directories changed\n{shown}"
    assert not [p for p in sandbox.escapes if os.path.lexists(p)], shown
    text = run.out + run.err + (image_text(sandbox) if (sandbox.root / "out" / "blobs").is_dir() else "")
    assert SECRET not in text, shown
