"""Fixtures for the install tests: real wheel files written in tmp_path, and a test target.

Wheels are written with ``zipfile`` and a correct RECORD (sha256, sizes), exactly as the
wheel spec lays them out, so installer reads them like any wheel from an index.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import sys
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from slimline.cache.store import Cache
from slimline.http import INDEX_PAGE_CAP, Http
from slimline.layers.filetree import FileTree, Kind
from slimline.oci.image import Platform
from slimline.target import Target

HOST_TARGET = Target(
    platform=Platform("amd64"),
    python_version=(sys.version_info[0], sys.version_info[1], sys.version_info[2]),
    interpreter=f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}",
    libc="glibc",
    libc_version=(2, 36),
)


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def make_wheel(
    directory: Path,
    name: str = "demo_pkg",
    version: str = "1.0",
    *,
    files: Mapping[str, bytes] | None = None,
    data: Mapping[str, bytes] | None = None,
    entry_points: str = "",
    executable: frozenset[str] = frozenset(),
    purelib: bool = True,
    tag: str = "py3-none-any",
    corrupt: str = "",
    unlisted: str = "",
    reverse: bool = False,
    date_time: tuple[int, int, int, int, int, int] = (2020, 1, 1, 0, 0, 0),
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` into ``directory``.

    ``files`` go to the archive root, ``data`` to ``{name}-{version}.data/`` (keys such as
    ``scripts/tool`` or ``headers/demo.h``).  ``executable`` names members that get 0755.
    ``corrupt`` names a member whose RECORD hash is made wrong; ``unlisted`` one left out
    of RECORD.  ``reverse`` and ``date_time`` change only the zip's member order and times.
    """
    files = dict(files or {f"{name}/__init__.py": b"VALUE = 1\n"})
    dist_info = f"{name}-{version}.dist-info"
    members: dict[str, bytes] = dict(files)
    for key, content in (data or {}).items():
        members[f"{name}-{version}.data/{key}"] = content
    members[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    members[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: slimline-tests\n"
        f"Root-Is-Purelib: {'true' if purelib else 'false'}\nTag: {tag}\n"
    ).encode()
    if entry_points:
        members[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for path, content in members.items():
        if path == unlisted:
            continue
        digest = record_hash(content if path != corrupt else content + b"tampered")
        writer.writerow([path, digest, len(content)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    members[f"{dist_info}/RECORD"] = out.getvalue().encode()
    wheel = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        items = list(members.items())
        for path, content in reversed(items) if reverse else items:
            info = zipfile.ZipInfo(path, date_time=date_time)
            info.external_attr = (0o100755 if path in executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return wheel


def read(tree: FileTree, path: str) -> bytes:
    entry = tree.get(path)
    assert entry is not None, f"{path} not in tree"
    assert entry.kind is Kind.FILE and entry.source is not None
    with entry.source.open() as stream:
        return stream.read()


def extract(trees: list[FileTree], dest: Path) -> None:
    """Lay trees out on disk in order (later wins), the way a runtime stacks layers."""
    for tree in trees:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in tree.entries():
                info = tarfile.TarInfo(entry.path)
                info.mode = entry.mode
                if entry.kind is Kind.DIR:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind is Kind.SYMLINK:
                    info.type = tarfile.SYMTYPE
                    info.linkname = entry.target
                    tar.addfile(info)
                else:
                    assert entry.source is not None
                    info.size = entry.size
                    with entry.source.open() as stream:
                        tar.addfile(info, stream)
        buf.seek(0)
        with tarfile.open(fileobj=buf, mode="r") as tar:
            tar.extractall(dest, filter="tar")


def download_wheel(project: str, version: str, *, cache: Cache) -> tuple[Path, str]:
    """The pure-Python wheel of ``project`` ``version`` from the configured index (PEP 691
    JSON), hash-checked and cached; returns the blob path and the wheel's file name."""
    from tests.support import index_url

    http = Http()
    base = index_url().rstrip("/")
    page = http.get_bytes(
        f"{base}/{project}/", cap=INDEX_PAGE_CAP, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    files = json.loads(page)["files"]
    wheels = [
        f
        for f in files
        if f["filename"].startswith(f"{project}-{version}-") and f["filename"].endswith("-none-any.whl")
    ]
    assert wheels, f"no pure wheel of {project} {version} on the index"
    chosen = wheels[0]
    url = chosen["url"]
    if not url.startswith(("http://", "https://")):
        from urllib.parse import urljoin

        url = urljoin(f"{base}/{project}/", url)
    path = http.download(url, cache=cache, sha256=chosen["hashes"]["sha256"], what=chosen["filename"])
    return path, str(chosen["filename"])
