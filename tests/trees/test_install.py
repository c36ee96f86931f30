"""The venv skeleton and wheels installed into file trees (slimline.trees.venv, slimline.trees.install)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import posixpath
import shutil
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

from slimline import layers
from slimline.cache.store import Cache
from slimline.errors import UnsafePath
from slimline.layers.filetree import Bytes, FileTree, Kind
from slimline.oci.image import Platform
from slimline.trees.install import InstallError, InvalidWheel, wheel_tree
from slimline.trees.venv import venv_tree
from tests.support import cache_dir
from tests.trees.helpers import HOST_TARGET, download_wheel, make_wheel, read

SP = "app/.venv/lib/python3.11/site-packages"
ENTRY_POINTS = "[console_scripts]\ndemo = demo_pkg.cli:main\n[gui_scripts]\ndemo-gui = demo_pkg.gui:run\n"


def full_wheel(directory: Path, **kwargs: object) -> Path:
    return make_wheel(
        directory,
        files={
            "demo_pkg/__init__.py": b"VALUE = 1\n",
            "demo_pkg/cli.py": b"def main() -> int:\n    return 0\n",
            "demo_pkg/run.sh": b"#!/bin/sh\necho hi\n",
        },
        executable=frozenset({"demo_pkg/run.sh"}),
        data={
            "scripts/tool": b"#!python\nprint('tool')\n",
            "scripts/plain.sh": b"#!/bin/sh\necho plain\n",
            "headers/demo.h": b"int demo;\n",
            "data/share/demo/readme.txt": b"hello\n",
            "purelib/demo_extra.py": b"X = 2\n",
        },
        entry_points=ENTRY_POINTS,
        **kwargs,  # type: ignore[arg-type]
    )


def verify_record(tree: FileTree, site_packages: str, dist_info: str) -> list[str]:
    """Check every RECORD row against the tree; return the image paths it lists."""
    record = read(tree, f"{site_packages}/{dist_info}/RECORD").decode()
    listed: list[str] = []
    for path, digest, size in csv.reader(io.StringIO(record)):
        full = posixpath.normpath(posixpath.join(site_packages, path))
        listed.append(full)
        if path == f"{dist_info}/RECORD":
            assert (digest, size) == ("", "")
            continue
        content = read(tree, full)
        algo, _, value = digest.partition("=")
        assert algo == "sha256"
        assert value == base64.urlsafe_b64encode(hashlib.sha256(content).digest()).decode().rstrip("=")
        assert int(size) == len(content)
    return listed


def test_venv_tree_layout() -> None:
    tree = venv_tree(HOST_TARGET)
    cfg = read(tree, "app/.venv/pyvenv.cfg").decode()
    full = ".".join(map(str, HOST_TARGET.python_version))
    assert cfg.splitlines() == [
        "home = /usr/bin",
        "include-system-site-packages = false",
        f"version = {full}",
        "executable = /usr/bin/python3.11",
        "command = /usr/bin/python3.11 -m venv /app/.venv",
    ]
    for name in ("python", "python3", "python3.11"):
        entry = tree.get(f"app/.venv/bin/{name}")
        assert entry is not None and entry.kind is Kind.SYMLINK and entry.target == "/usr/bin/python3.11"
    site = tree.get(SP)
    assert site is not None and site.kind is Kind.DIR and site.mode == 0o755
    lib64 = tree.get("app/.venv/lib64")
    assert lib64 is not None and lib64.kind is Kind.SYMLINK and lib64.target == "lib"
    assert not any(p.endswith(("activate", "pip", "pip3")) for p in tree.paths())


def test_venv_tree_custom_prefix_owner_and_32_bit() -> None:
    target = replace(
        HOST_TARGET, platform=Platform("arm", variant="v7"), interpreter="/usr/local/bin/python3.11"
    )
    tree = venv_tree(target, prefix="/opt/venv/", uid=65532, gid=65532)
    assert "opt/venv/lib64" not in tree
    assert read(tree, "opt/venv/pyvenv.cfg").decode().startswith("home = /usr/local/bin\n")
    assert {(e.uid, e.gid) for e in tree.entries()} == {(65532, 65532)}


@pytest.mark.parametrize("prefix", ["app/.venv", "/", "/my venv", "/" + "x" * 120])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(Exception, match="venv prefix") as info:
        venv_tree(HOST_TARGET, prefix=prefix)
    assert "hint:" in str(info.value)


def test_wheel_schemes_paths_and_modes(tmp_path: Path) -> None:
    tree = wheel_tree(full_wheel(tmp_path), target=HOST_TARGET, uid=1000, gid=1001)
    files = {e.path: e for e in tree.entries() if e.kind is Kind.FILE}
    expected_modes = {
        f"{SP}/demo_pkg/__init__.py": 0o644,
        f"{SP}/demo_pkg/run.sh": 0o755,  # executable bit kept
        f"{SP}/demo_extra.py": 0o644,  # .data/purelib
        "app/.venv/bin/tool": 0o755,  # .data/scripts
        "app/.venv/bin/plain.sh": 0o755,
        "app/.venv/bin/demo": 0o755,  # entry points
        "app/.venv/bin/demo-gui": 0o755,
        "app/.venv/include/site/python3.11/demo_pkg/demo.h": 0o644,  # .data/headers
        "app/.venv/share/demo/readme.txt": 0o644,  # .data/data goes to the prefix
        f"{SP}/demo_pkg-1.0.dist-info/INSTALLER": 0o644,
    }
    for path, mode in expected_modes.items():
        assert files[path].mode == mode, path
    assert not any(".data/" in p for p in files)
    assert {(e.uid, e.gid) for e in tree.entries()} == {(1000, 1001)}
    assert all(e.mode == 0o755 for e in tree.entries() if e.kind is Kind.DIR)
    # wheel members are read lazily from the wheel, not held in memory
    source = files[f"{SP}/demo_pkg/cli.py"].source
    assert source is not None and not isinstance(source, Bytes)
    for script in ("plain.sh", "tool"):  # #!python or not: streamed too
        assert not isinstance(files[f"app/.venv/bin/{script}"].source, Bytes), script


def test_platlib_wheel_goes_to_site_packages(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, purelib=False, tag="cp311-cp311-manylinux_2_17_x86_64")
    tree = wheel_tree(wheel, target=HOST_TARGET)
    assert read(tree, f"{SP}/demo_pkg/__init__.py") == b"VALUE = 1\n"


def test_shebangs_name_the_venv_python_inside_the_image(tmp_path: Path) -> None:
    wheel = full_wheel(tmp_path)
    tree = wheel_tree(wheel, target=HOST_TARGET)
    demo = read(tree, "app/.venv/bin/demo").decode()
    assert demo.startswith("#!/app/.venv/bin/python\n")
    assert "from demo_pkg.cli import main" in demo and "sys.exit(main())" in demo
    assert read(tree, "app/.venv/bin/demo-gui").decode().startswith("#!/app/.venv/bin/python\n")
    assert read(tree, "app/.venv/bin/tool") == b"#!/app/.venv/bin/python\nprint('tool')\n"
    assert read(tree, "app/.venv/bin/plain.sh") == b"#!/bin/sh\necho plain\n"  # not a #!python script
    other = wheel_tree(wheel, target=HOST_TARGET, prefix="/opt/venv")
    assert read(other, "opt/venv/bin/demo").startswith(b"#!/opt/venv/bin/python\n")
    assert "opt/venv/lib/python3.11/site-packages/demo_pkg/cli.py" in other


def test_record_matches_contents(tmp_path: Path) -> None:
    tree = wheel_tree(full_wheel(tmp_path), target=HOST_TARGET, requested=True)
    listed = verify_record(tree, SP, "demo_pkg-1.0.dist-info")
    files = sorted(e.path for e in tree.entries() if e.kind is Kind.FILE)
    assert sorted(listed) == files
    record = read(tree, f"{SP}/demo_pkg-1.0.dist-info/RECORD").decode()
    assert "../../../bin/demo," in record
    assert "../../../include/site/python3.11/demo_pkg/demo.h," in record
    assert "../../../share/demo/readme.txt," in record


def test_installer_metadata(tmp_path: Path) -> None:
    wheel = full_wheel(tmp_path)
    plain = wheel_tree(wheel, target=HOST_TARGET)
    di = f"{SP}/demo_pkg-1.0.dist-info"
    assert read(plain, f"{di}/INSTALLER") == b"slimline\n"
    assert f"{di}/REQUESTED" not in plain
    assert f"{di}/direct_url.json" not in plain
    url = {"url": "file:///src/lib", "dir_info": {"editable": False}}
    direct = wheel_tree(wheel, target=HOST_TARGET, requested=True, direct_url=url)
    assert read(direct, f"{di}/REQUESTED") == b""
    assert json.loads(read(direct, f"{di}/direct_url.json")) == url
    verify_record(direct, SP, "demo_pkg-1.0.dist-info")


def test_tampered_member_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, files={"demo_pkg/__init__.py": b"x = 1\n", "demo_pkg/a.py": b"a\n"}, corrupt="demo_pkg/a.py"
    )
    # members are checked against RECORD as they are read: once, when the layer is written
    tree = wheel_tree(wheel, target=HOST_TARGET)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(InvalidWheel) as info:
        layers.write(tree, cache=cache)
    assert "demo_pkg/a.py" in str(info.value) and "RECORD" in str(info.value)
    assert info.value.wheel == wheel.name and "hint:" in str(info.value)
    assert list((cache.root / "blobs" / "sha256").iterdir()) == []  # nothing half-written is kept


def test_tampered_script_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, data={"scripts/tool": b"#!python\n"}, corrupt="demo_pkg-1.0.data/scripts/tool"
    )
    with pytest.raises(InvalidWheel, match="scripts/tool"):
        wheel_tree(wheel, target=HOST_TARGET)


def test_python_scripts_are_streamed_not_read_whole(tmp_path: Path) -> None:
    body = b"print('tool')\n" * 2_400_000  # 33 MB: the old rewrite held it three times
    wheel = make_wheel(tmp_path, data={"scripts/tool": b"#!python -u\n" + body})
    expected = b"#!/app/.venv/bin/python\n" + body
    tracemalloc.start()
    try:
        tree = wheel_tree(wheel, target=HOST_TARGET)
        entry = {e.path: e for e in tree.entries()}["app/.venv/bin/tool"]
        assert entry.source is not None
        h, size = hashlib.sha256(), 0
        with entry.source.open() as stream:
            while chunk := stream.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size == entry.size == len(expected) and h.digest() == hashlib.sha256(expected).digest()
    assert peak < 8 << 20, f"{peak >> 20} MiB traced"


def test_member_missing_from_record_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, files={"demo_pkg/__init__.py": b"", "demo_pkg/b.py": b"b\n"}, unlisted="demo_pkg/b.py"
    )
    with pytest.raises(InvalidWheel, match=r"demo_pkg/b\.py is not mentioned in RECORD"):
        wheel_tree(wheel, target=HOST_TARGET)


def test_not_a_wheel_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(InvalidWheel, match="not a zip"):
        wheel_tree(bogus, target=HOST_TARGET)


@pytest.mark.parametrize(
    "member",
    ["../evil.py", "demo_pkg-1.0.data/data/../../../../../etc/passwd", "demo_pkg-1.0.data/scripts/../x"],
)
def test_members_escaping_their_scheme_are_refused(tmp_path: Path, member: str) -> None:
    wheel = make_wheel(tmp_path, files={"demo_pkg/__init__.py": b"", member: b"evil\n"})
    with pytest.raises(UnsafePath):
        wheel_tree(wheel, target=HOST_TARGET)


def test_script_clashing_with_entry_point_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path, data={"scripts/demo": b"#!python\n"}, entry_points="[console_scripts]\ndemo = a:b\n"
    )
    with pytest.raises(InstallError, match="written twice"):
        wheel_tree(wheel, target=HOST_TARGET)


def test_pycache_members_are_skipped(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, files={"demo_pkg/__init__.py": b"", "demo_pkg/__pycache__/x.pyc": b"\0"})
    with pytest.warns(RuntimeWarning, match="__pycache__"):
        tree = wheel_tree(wheel, target=HOST_TARGET)
    assert not any("__pycache__" in p for p in tree.paths())


def test_cache_blob_needs_the_wheel_file_name(tmp_path: Path) -> None:
    wheel = full_wheel(tmp_path)
    blob = tmp_path / hashlib.sha256(wheel.read_bytes()).hexdigest()
    shutil.copyfile(wheel, blob)
    tree = wheel_tree(blob, target=HOST_TARGET, filename=wheel.name)
    assert f"{SP}/demo_pkg/cli.py" in tree
    with pytest.raises(InvalidWheel, match="wheel filename"):
        wheel_tree(blob, target=HOST_TARGET)


def test_same_wheel_gives_the_same_layer(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = full_wheel(tmp_path / "a")
    # same contents, other member order and zip timestamps
    second = full_wheel(tmp_path / "b", reverse=True, date_time=(2024, 6, 1, 12, 30, 0))
    assert first.read_bytes() != second.read_bytes()
    one = layers.write(wheel_tree(first, target=HOST_TARGET), cache=cache)
    two = layers.write(wheel_tree(second, target=HOST_TARGET), cache=cache)
    again = layers.write(wheel_tree(first, target=HOST_TARGET), cache=cache)
    assert one.digest == two.digest == again.digest
    assert one.diff_id == two.diff_id
    other_owner = layers.write(wheel_tree(first, target=HOST_TARGET, uid=65532, gid=65532), cache=cache)
    assert other_owner.diff_id != one.diff_id
    venv_a = layers.write(venv_tree(HOST_TARGET), cache=cache)
    venv_b = layers.write(venv_tree(HOST_TARGET), cache=cache)
    assert venv_a.digest == venv_b.digest


@pytest.mark.network
def test_real_wheels_from_the_index() -> None:
    cache = Cache(cache_dir())
    idna, idna_name = download_wheel("idna", "3.10", cache=cache)
    tree = wheel_tree(idna, target=HOST_TARGET, filename=idna_name)
    assert f"{SP}/idna/__init__.py" in tree
    verify_record(tree, SP, "idna-3.10.dist-info")

    pyflakes, pyflakes_name = download_wheel("pyflakes", "3.2.0", cache=cache)
    tree = wheel_tree(pyflakes, target=HOST_TARGET, filename=pyflakes_name, requested=True)
    script = read(tree, "app/.venv/bin/pyflakes").decode()
    assert script.startswith("#!/app/.venv/bin/python\n") and "from pyflakes.api import main" in script
    entry = tree.get("app/.venv/bin/pyflakes")
    assert entry is not None and entry.mode == 0o755
    listed = verify_record(tree, SP, "pyflakes-3.2.0.dist-info")
    assert "app/.venv/bin/pyflakes" in listed
    assert sorted(listed) == sorted(e.path for e in tree.entries() if e.kind is Kind.FILE)
