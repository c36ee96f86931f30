"""Ahead-of-time bytecode without network: the host compiler, choosing a compiler, unpacking a base safely.

The base image's own interpreter is tested with real Debian bases in test_bytecode_image.py.
"""

from __future__ import annotations

import importlib.util
import io
import marshal
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from slimline.base import rootfs
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.errors import UnsafePath
from slimline.layers.filetree import TreeBuilder
from slimline.oci.image import LAYER_TAR, Image, Layer, Platform
from slimline.target import Target
from slimline.trees.bytecode import BytecodeError, compile_tree, compiler_for
from slimline.trees.compiler import HostCompiler


def _target(minor: int, arch: str = "amd64") -> Target:
    return Target(
        platform=Platform(arch),
        python_version=(3, minor, 0),
        interpreter=f"/usr/bin/python3.{minor}",
        libc="glibc",
        libc_version=(2, 36),
    )


def test_pyc_files_are_hash_based_and_name_the_image_path() -> None:
    b = TreeBuilder()
    b.data("app/.venv/lib/python3.11/site-packages/pkg/mod.py", b"def f():\n    return 42\n")
    b.data("app/.venv/lib/python3.11/site-packages/pkg/broken.py", b"print 'python 2'\n")
    b.data("app/.venv/lib/python3.11/site-packages/pkg/data.txt", b"not python\n")
    out = compile_tree(b.freeze(), compiler=HostCompiler(_target(sys.version_info.minor)))
    tag = sys.implementation.cache_tag
    pyc = out.get(f"app/.venv/lib/python3.11/site-packages/pkg/__pycache__/mod.{tag}.pyc")
    assert pyc is not None and pyc.source is not None
    data = pyc.source.open().read()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked (PEP 552)
    assert data[8:16] == importlib.util.source_hash(b"def f():\n    return 42\n")
    code = marshal.loads(data[16:])
    assert code.co_filename == "/app/.venv/lib/python3.11/site-packages/pkg/mod.py"
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["f"]() == 42  # type: ignore[operator]
    assert out.get(f"app/.venv/lib/python3.11/site-packages/pkg/__pycache__/broken.{tag}.pyc") is None
    assert len(out) == len(b.freeze()) + 2  # __pycache__ and one .pyc


def _layer(tmp_path: Path, name: str, members: list[tuple[str, str, bytes | str]]) -> Layer:
    """An uncompressed layer: (path, "file"|"dir"|"symlink"|"hardlink", data or link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, kind, value in members:
            info = tarfile.TarInfo(path)
            if kind == "file":
                assert isinstance(value, bytes)
                info.size, info.mode = len(value), 0o4755  # setuid must not survive
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[
                kind
            ]
            info.mode = 0o755
            info.linkname = str(value)
            tar.addfile(info)
    blob = tmp_path / name
    blob.write_bytes(buf.getvalue())
    return Layer(f"sha256:{name}", f"sha256:{name}", len(buf.getvalue()), LAYER_TAR, blob)


def test_a_foreign_arch_without_qemu_and_another_python_is_refused_naming_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a host without any qemu-user emulator
    other = sys.version_info.minor + 2
    with pytest.raises(BytecodeError) as err:
        compiler_for(Image(Platform("arm64")), _target(other, "arm64"))
    text = str(err.value)
    assert f"the base's CPython 3.{other} cannot run on this host" in text
    assert "qemu-aarch64 is not installed" in text
    assert "install qemu-user-static (qemu-aarch64)" in text and f"run slimline with python3.{other}" in text
    assert "bytecode = false" in text
    # the same image with this host's Python X.Y: this interpreter compiles instead
    fallback = compiler_for(Image(Platform("arm64")), _target(sys.version_info.minor, "arm64"))
    assert isinstance(fallback, HostCompiler) and sys.version in fallback.identity


def test_a_base_whose_interpreter_does_not_start_is_refused_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a native base whose "interpreter" is not an ELF program: the probe fails with a reason
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    image = Image(
        Platform("amd64"), (_layer(tmp_path, "l1", [("usr/bin/python3.99", "file", b"#!/bin/sh\n")]),)
    )
    bad = Target(Platform("amd64"), (3, 99, 0), "/usr/bin/python3.99", "glibc", (2, 36))
    with pytest.raises(BytecodeError, match="the interpreter is not an ELF file") as err:
        compiler_for(image, bad)
    assert "run slimline with python3.99" in str(err.value)
    assert not list((tmp_path / "tmp").iterdir())  # the unpacked base is gone


def test_unpack_never_writes_outside_its_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host file")
    root = tmp_path / "a" / "root"
    root.mkdir(parents=True)
    lower = _layer(
        tmp_path,
        "lower",
        [
            ("usr/lib/x86_64-linux-gnu/ld.so", "file", b"loader"),
            ("lib64", "symlink", "/usr/lib/x86_64-linux-gnu"),  # absolute: rewritten inside the root
            ("to-root", "symlink", "/"),
            ("up", "symlink", "../../../../.."),
            ("victim", "symlink", "../../outside.txt"),  # relative, reaching out
            ("hard", "hardlink", "usr/lib/x86_64-linux-gnu/ld.so"),
            ("gone", "file", b"removed by a whiteout"),
            ("opq/old", "file", b"hidden by an opaque whiteout"),
        ],
    )
    upper = _layer(
        tmp_path,
        "upper",
        [
            ("to-root/etc/passwd", "file", b"inside"),  # through "/" -> the root's etc
            ("up/tmp/x", "file", b"clamped"),  # ".." stops at the root
            ("victim", "file", b"replaces the link"),  # never written through the link
            ("lib64/extra.so", "file", b"through the rewritten link"),
            (".wh.gone", "file", b""),
            ("opq/.wh..wh..opq", "file", b""),
            ("opq/new", "file", b"kept"),
        ],
    )
    rootfs.unpack(Image(Platform("amd64"), (lower, upper)), root)
    assert outside.read_text() == "host file" and sorted(os.listdir(tmp_path / "a")) == ["root"]
    assert (root / "etc" / "passwd").read_bytes() == b"inside"
    assert (root / "tmp" / "x").read_bytes() == b"clamped"
    assert not (root / "victim").is_symlink() and (root / "victim").read_bytes() == b"replaces the link"
    assert os.readlink(root / "lib64") == "usr/lib/x86_64-linux-gnu"
    assert (root / "usr/lib/x86_64-linux-gnu/extra.so").read_bytes() == b"through the rewritten link"
    assert os.readlink(root / "to-root") == "."
    assert (root / "hard").stat().st_ino == (root / "usr/lib/x86_64-linux-gnu/ld.so").stat().st_ino
    assert (root / "hard").stat().st_mode & 0o7777 == 0o755
    assert not (root / "gone").exists() and sorted(os.listdir(root / "opq")) == ["new"]
    assert rootfs.resolve(root, "/lib64/ld.so") == root / "usr/lib/x86_64-linux-gnu/ld.so"

    evil = _layer(tmp_path, "evil", [("usr/../../escaped", "file", b"no")])
    with pytest.raises(UnsafePath):
        rootfs.unpack(Image(Platform("amd64"), (evil,)), tmp_path / "a" / "root")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "escaped").exists()


def test_a_cached_base_is_unpacked_once_appears_whole_and_is_marked_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cache")
    one = Image(Platform("amd64"), (_layer(tmp_path, "one", [("usr/bin/python3", "file", b"py")]),))
    root = rootfs.cached(one, cache=cache)
    assert root.parent == cache.root / keys.ROOTFS and (root / "usr/bin/python3").read_bytes() == b"py"
    assert root.stat().st_mode & 0o777 == 0o755
    (root / "sentinel").write_text("not unpacked again")
    os.utime(root, (1, 1))
    assert rootfs.cached(one, cache=cache) == root  # the same copy, now marked used
    assert (root / "sentinel").exists() and root.stat().st_mtime > 1

    # other layers, another copy.  Two builds unpacking it at once: the one whose rename comes
    # second drops its own copy and uses the first one's
    two = Image(Platform("amd64"), (_layer(tmp_path, "two", [("usr/bin/python3", "file", b"two")]),))
    first = rootfs.cached(two, cache=Cache(tmp_path / "other-build"))
    real_unpack = rootfs.unpack

    def finished_meanwhile(image: Image, dest: Path) -> None:
        real_unpack(image, dest)
        shutil.copytree(first, dest.parent / first.name, symlinks=True)
        (dest.parent / first.name / "from-the-other-build").touch()

    monkeypatch.setattr(rootfs, "unpack", finished_meanwhile)
    won = rootfs.cached(two, cache=cache)
    assert won.name == first.name and (won / "from-the-other-build").exists()
    assert (won / "usr/bin/python3").read_bytes() == b"two"
    assert sorted(p.name for p in (cache.root / keys.ROOTFS).iterdir()) == sorted([root.name, won.name])

    # an unsafe layer: an error, and nothing left behind, finished or not
    monkeypatch.setattr(rootfs, "unpack", real_unpack)
    evil = Image(Platform("amd64"), (_layer(tmp_path, "evil", [("a/../../escaped", "file", b"no")]),))
    with pytest.raises(UnsafePath):
        rootfs.cached(evil, cache=cache)
    assert sorted(p.name for p in (cache.root / keys.ROOTFS).iterdir()) == sorted([root.name, won.name])


def test_the_standard_library_is_compiled_but_for_what_a_service_never_imports(tmp_path: Path) -> None:
    from slimline.oci.image import Config
    from slimline.trees.bytecode import stdlib_tree

    minor = sys.version_info.minor
    lib = f"usr/lib/python3.{minor}"
    sources = {
        "json/__init__.py": b"X = 1\n",
        "os.py": b"X = 2\n",
        "pydoc.py": b"X = 3\n",  # a development tool
        "unittest/__init__.py": b"X = 4\n",
        "_pydecimal.py": b"X = 5\n",  # the fallback of _decimal
        "encodings/__init__.py": b"X = 6\n",
        "encodings/utf_8.py": b"X = 7\n",
        "encodings/cp1252.py": b"X = 8\n",  # a rare codec
        "site-packages/pkg.py": b"X = 9\n",  # not the standard library
    }
    layer = _layer(tmp_path, "lib", [(f"{lib}/{name}", "file", data) for name, data in sources.items()])
    image = Image(platform=Platform("amd64"), layers=(layer,), config=Config())
    tree = stdlib_tree(image, target=_target(minor), compiler=HostCompiler(_target(minor)))
    tag = sys.implementation.cache_tag
    compiled = {p.removeprefix(f"{lib}/") for p in tree.paths() if p.endswith(".pyc")}
    assert compiled == {
        f"json/__pycache__/__init__.{tag}.pyc",
        f"__pycache__/os.{tag}.pyc",
        f"encodings/__pycache__/__init__.{tag}.pyc",
        f"encodings/__pycache__/utf_8.{tag}.pyc",
    }
    assert not any(p.endswith(".py") for p in tree.paths())  # the sources stay in the base's layers
