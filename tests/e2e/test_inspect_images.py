"""End to end: ``slimline inspect`` and ``slimline diff`` against the unpacked trees of real images.

Two images: one slimline builds (the locked click CLI, from the package registries), and one
buildah builds from a Dockerfile on a Python base made with ``mmdebstrap`` from the Debian
archive (no container registry: ``FROM scratch`` + ``ADD`` of the base's tarball; the
Dockerfile's pip installs a wheel made here, with ``--no-index``).  Every expected figure is
computed without slimline: ``umoci unpack`` gives the file system a container sees, which is
walked on disk; Python distributions come from :mod:`importlib.metadata` over it, Debian
packages from ``dpkg-query --admindir`` (status file) or python-debian's deb822 (``status.d``);
each layer's size comes from Python's tarfile over the layout's blobs.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from debian.deb822 import Deb822

from slimline.base.debian import mirror
from slimline.inspect.summary import BASE_DIGEST, BASE_NAME
from tests.inspect.images import manifest, read_layout
from tests.support import cache_dir, run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]

SUITE = "bookworm"
BASE_MAX_AGE = 7 * 24 * 3600  # the mmdebstrap tarball is made again after a week


# --- what the unpacked tree holds, measured on disk ------------------------------------------


def _unpack(layout: Path, tag: str, dest: Path) -> Path:
    run([tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:{tag}", str(dest)], timeout=600)
    return dest / "rootfs"


def _regular(rootfs: Path, path: Path) -> tuple[Path, int] | None:
    """(real path, size) of ``path`` when it is a regular file inside ``rootfs`` (its directories'
    symlinks followed, the file itself not), else None."""
    parent = Path(os.path.realpath(path.parent))
    if not parent.is_relative_to(rootfs.resolve()):
        return None
    real = parent / path.name
    try:
        st = os.lstat(real)
    except OSError:
        return None
    return (real, st.st_size) if real.is_file() and not real.is_symlink() else None


def _files_size(rootfs: Path) -> int:
    """The bytes of the tree's regular files, each inode once (hard links share theirs)."""
    sizes: dict[tuple[int, int], int] = {}
    for dirpath, _, names in os.walk(rootfs):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                sizes[(st.st_dev, st.st_ino)] = st.st_size
    return sum(sizes.values())


def _sum(rootfs: Path, paths: list[Path]) -> int:
    """The bytes of the regular files among ``paths``, each inode once (hard links share theirs)."""
    found = {os.lstat(hit[0]).st_ino: hit[1] for p in paths if (hit := _regular(rootfs, p)) is not None}
    return sum(found.values())


def _dists(rootfs: Path) -> dict[tuple[str, str], int]:
    out = {}
    for dirpath, dirnames, _ in os.walk(rootfs):
        for d in dirnames:
            info = Path(dirpath, d)
            if not d.endswith(".dist-info") or info.is_symlink():
                continue
            dist = importlib.metadata.Distribution.at(info)
            files = dist.files
            paths = (
                [Path(str(dist.locate_file(f))) for f in files] if files is not None else list(info.iterdir())
            )
            out[(dist.metadata["Name"], dist.version)] = _sum(rootfs, paths)
    return out


def _debs_from_status(rootfs: Path) -> dict[str, tuple[str, int]]:
    admin = ["--admindir", str(rootfs / "var" / "lib" / "dpkg")]
    rows = run(
        [tool("dpkg-query"), *admin, "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"]
    ).stdout
    installed = [line.split("\t")[:2] for line in rows.splitlines() if line.split("\t")[2].startswith("ii")]
    listing = run([tool("dpkg-query"), *admin, "-L", *(name for name, _ in installed)]).stdout.split("\n\n")
    assert len(listing) == len(installed)
    return {
        name: (
            version,
            _sum(rootfs, [rootfs / line.strip().lstrip("/") for line in files.splitlines() if line]),
        )
        for (name, version), files in zip(installed, listing, strict=True)
    }


def _debs_from_status_d(rootfs: Path) -> dict[str, tuple[str, int]]:
    out = {}
    status_d = rootfs / "var" / "lib" / "dpkg" / "status.d"
    for control in sorted(status_d.iterdir()):
        if control.name.endswith((".md5sums", ".sha256sums")):  # file lists, not control files
            continue
        (para,) = list(Deb822.iter_paragraphs(control.read_text()))
        sums = status_d / f"{control.name}.md5sums"
        lines = sums.read_text().splitlines() if sums.exists() else []
        out[para["Package"]] = (
            para["Version"],
            _sum(rootfs, [rootfs / ln.split(None, 1)[1] for ln in lines]),
        )
    return out


# --- checks ----------------------------------------------------------------------------------


def _inspect(ref: str, *extra: str) -> dict[str, Any]:
    doc = json.loads(slimline("inspect", ref, "--json", "-q", *extra).stdout)
    (image,) = doc["images"]
    return dict(image)


def _agree(
    img: dict[str, Any], layout: Path, tag: str, rootfs: Path, debs: dict[str, tuple[str, int]]
) -> None:
    blobs = read_layout(layout, tag)
    unpacked = [sum(size for size, _ in layer.values()) for layer in blobs.layers]
    assert [x["unpacked"] for x in img["layers"]] == unpacked
    assert [x["compressed"] for x in img["layers"]] == blobs.compressed
    files = _files_size(rootfs)
    assert img["size"] == {
        "compressed": sum(blobs.compressed),
        "unpacked": sum(unpacked),
        "files": files,
        "wasted": sum(unpacked) - files,  # each layer's file is seen, or was replaced or removed
    }
    assert {(d["name"], d["version"]): d["size"] for d in img["python"]} == _dists(rootfs)
    assert {d["name"]: (d["version"], d["size"]) for d in img["debian"]} == debs
    biggest = img["largest_files"][0]
    assert _regular(rootfs, rootfs / biggest["path"].lstrip("/")) == (
        rootfs / biggest["path"].lstrip("/"),
        biggest["size"],
    )


def test_a_slimline_image_and_a_diff_agree_with_the_unpacked_trees(locked_cli: Path, tmp_path: Path) -> None:
    layout = tmp_path / "out"
    slimline("build", str(locked_cli), "--to", f"oci:{layout}:plain", "-q")
    slimline("build", str(locked_cli), "-E", "color", "--to", f"oci:{layout}:color", "-q")
    img = _inspect(f"oci:{layout}:plain")
    rootfs = _unpack(layout, "plain", tmp_path / "plain")
    _agree(img, layout, "plain", rootfs, _debs_from_status_d(rootfs))
    assert img["base"]["name"].startswith("debian:") and img["base"]["digest"].startswith("sha256:")
    assert img["config"]["entrypoint"] == ["/app/.venv/bin/greet"] and img["config"]["user"] == "65532"
    assert [x["created_by"].split(" ")[0] for x in img["layers"][-2:]] == ["slimline:", "slimline:"]

    doc = json.loads(slimline("diff", f"oci:{layout}:plain", f"oci:{layout}:color", "--json", "-q").stdout)
    color = _unpack(layout, "color", tmp_path / "color")
    before, after = _dists(rootfs), _dists(color)
    assert doc["python"]["added"] == [
        {"name": n.lower(), "version": v} for n, v in sorted(after.keys() - before.keys())
    ]
    assert doc["python"]["removed"] == doc["python"]["changed"] == []
    on_disk = {p: _tree(root) for p, root in (("a", rootfs), ("b", color))}
    changed = {k for k in on_disk["a"].keys() & on_disk["b"].keys() if on_disk["a"][k] != on_disk["b"][k]}
    assert {f["path"] for f in doc["files"]["added"]} == {
        f"/{p}" for p in on_disk["b"].keys() - on_disk["a"].keys()
    }
    assert {f["path"] for f in doc["files"]["removed"]} == {
        f"/{p}" for p in on_disk["a"].keys() - on_disk["b"].keys()
    }
    assert {f["path"] for f in doc["files"]["modified"]} == {f"/{p}" for p in changed}
    assert doc["layers"][0]["reused"]  # the base
    total = {
        tag: sum(s for layer in read_layout(layout, tag).layers for s, _ in layer.values())
        for tag in ("plain", "color")
    }
    assert doc["size"]["unpacked"] == {
        "a": total["plain"],
        "b": total["color"],
        "delta": total["color"] - total["plain"],
    }


def _tree(rootfs: Path) -> dict[str, str]:
    """Every non-directory entry: a regular file's sha256, a symlink's target."""
    out = {}
    for dirpath, dirnames, names in os.walk(rootfs):
        for name in names + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, rootfs)
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
            elif os.path.isfile(full):
                out[rel] = hashlib.sha256(Path(full).read_bytes()).hexdigest()
    return out


# --- the Dockerfile image ----------------------------------------------------------------------


def _pybase() -> Path:
    """Debian minbase with python3 and python3-venv, as a tarball (made at most once a week)."""
    tarball = cache_dir() / "inspect" / f"pybase-{SUITE}.tar"
    if tarball.is_file() and time.time() - tarball.stat().st_mtime < BASE_MAX_AGE:
        return tarball
    mirrors = mirror.find(mirror=None, security_mirror=None)
    sources = [f"deb {mirrors.archive} {SUITE} main"]
    if mirrors.security:
        sources.append(f"deb {mirrors.security} {SUITE}-security main")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    part = tarball.with_suffix(f".{os.getpid()}.part.tar")  # (mmdebstrap picks its format by the name too)
    run(
        [
            tool("mmdebstrap"),
            "--quiet",
            "--format=tar",
            "--variant=minbase",
            "--include=python3,python3-venv",
            SUITE,
            part,
            *sources,
        ],
        timeout=900,
    )
    part.replace(tarball)
    return tarball


def _wheel(dest: Path) -> Path:
    """A real wheel (RECORD with hashes) for the Dockerfile's pip to install without an index."""
    files = {
        "tinyapp/__init__.py": b"VALUE = 3\n" + b"# padding\n" * 500,
        "tinyapp-0.3.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinyapp\nVersion: 0.3\n",
        "tinyapp-0.3.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = (
        "".join(
            f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
            for p, d in files.items()
        )
        + "tinyapp-0.3.dist-info/RECORD,,\n"
    )
    wheel = dest / "tinyapp-0.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
        z.writestr("tinyapp-0.3.dist-info/RECORD", record)
    return wheel


DOCKERFILE = """\
FROM scratch
ADD pybase.tar /
RUN python3 -m venv /app/.venv && rm -rf /usr/share/doc/* /usr/share/man/*
COPY tinyapp-0.3-py3-none-any.whl /tmp/
RUN /app/.venv/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\
      /tmp/tinyapp-0.3-py3-none-any.whl && rm /tmp/tinyapp-0.3-py3-none-any.whl
COPY main.py /app/main.py
ENV APP_MODE=test
EXPOSE 8080
USER 1000
ENTRYPOINT ["/app/.venv/bin/python", "/app/main.py"]
"""


def test_an_image_buildah_built_from_a_dockerfile_agrees_with_its_unpacked_tree(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    shutil.copyfile(_pybase(), context / "pybase.tar")
    _wheel(context)
    (context / "main.py").write_text("import tinyapp\nprint(tinyapp.VALUE)\n")
    (context / "Dockerfile").write_text(DOCKERFILE)
    runroot = Path(tempfile.mkdtemp(prefix="slimline-buildah-", dir="/tmp"))
    storage = ["--root", str(tmp_path / "storage"), "--runroot", str(runroot), "--storage-driver", "overlay"]
    buildah = [tool("buildah"), *storage]
    env = {"TMPDIR": str(tmp_path)}
    try:
        run([*buildah, "bud", "--layers", "--isolation", "chroot", "--ulimit", "nofile=1024:1024",
             "-t", "localhost/inspect-test:1", str(context)], env=env, timeout=900)  # fmt: skip
        layout, archive = tmp_path / "layout", tmp_path / "image.tar"
        run([*buildah, "push", "localhost/inspect-test:1", f"oci:{layout}:v1"], env=env, timeout=600)
        run(
            [
                *buildah,
                "push",
                "localhost/inspect-test:1",
                f"docker-archive:{archive}:localhost/inspect-test:1",
            ],
            env=env,
            timeout=600,
        )
    finally:
        run([*buildah, "rmi", "--all", "--force"], env=env, check=False)
        run(["rm", "-rf", str(runroot), str(tmp_path / "storage")], check=False)

    img = _inspect(f"oci:{layout}:v1")
    rootfs = _unpack(layout, "v1", tmp_path / "bundle")
    debs = _debs_from_status(rootfs)
    assert "python3" in debs and "libc6" in debs
    _agree(img, layout, "v1", rootfs, debs)
    assert ("tinyapp", "0.3") in {(d["name"], d["version"]) for d in img["python"]}
    assert img["config"]["user"] == "1000" and img["config"]["ports"] == ["8080/tcp"]
    assert "APP_MODE=test" in img["config"]["env"]
    notes = manifest(layout, "v1").get("annotations", {})  # buildah notes a base digest even FROM scratch
    base = {"name": notes.get(BASE_NAME, ""), "digest": notes.get(BASE_DIGEST, "")}
    assert img["base"] == (base if any(base.values()) else None)
    assert all(x["created_by"] for x in img["layers"])  # buildah's history, empty layers skipped
    assert img["size"]["wasted"] > 0 and any(
        w["by"] == "removed" and w["path"].startswith("/usr/share/doc/") for w in img["wasted"]
    )

    from_archive = _inspect(f"docker-archive:{archive}")  # the same image through another medium
    assert from_archive["python"] == img["python"] and from_archive["debian"] == img["debian"]
    same = ("unpacked", "files", "wasted")  # (an archive's layers are not compressed)
    assert {k: from_archive["size"][k] for k in same} == {k: img["size"][k] for k in same}
    html = tmp_path / "dockerfile.html"
    slimline("inspect", f"oci:{layout}:v1", "-q", "--html", str(html))
    from tests.inspect.chromium import open_page
    from tests.inspect.test_page import artifacts, check_page

    with open_page(html) as page:
        check_page(page, img["size"]["unpacked"])
        shot = page.screenshot(artifacts() / "sizemap-dockerfile.png")
    print(f"\nsize map of the Dockerfile image: {shot}")
