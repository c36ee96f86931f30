"""Bytecode compiled by the base image's own interpreter: real Debian trixie bases (CPython 3.13,
while the tests run on 3.11), checked against what that interpreter writes inside the container,
under qemu for arm64, and end to end with ``slimline build --bytecode``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from slimline import layers
from slimline.base.debian.base import BaseSettings, DebianRef, build
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.oci.image import Image, Platform
from slimline.target import Target
from slimline.trees.bytecode import BytecodeError, compiler_for
from slimline.trees.compiler import Compiler, ImageCompiler
from tests.base.debian.helpers import write_layout
from tests.support import cache_dir, podman, podman_run, run, slimline, tool

pytestmark = pytest.mark.network

# What the image's compiler must reproduce: sets (marshal orders them), f-strings, a docstring,
# a nested function, a name that is interned elsewhere and a non-ASCII literal.
APP_SOURCE = (
    '"""An app module."""\n'
    "import json\n\n"
    "def classify(word):\n"
    '    kinds = {"alpha", "beta", "gamma", "delta"}\n'
    "    def inner(x):\n"
    '        return f"{x!r:>10} in {sorted(kinds)}"\n'
    '    return inner(word) if word in kinds else json.dumps({"word": word, "note": "caf\\u00e9 ☕"})\n'
).encode()
STDLIB_MODULE = "usr/lib/python3.13/json/decoder.py"

# Runs inside the base image: what its own py_compile writes (checked-hash), as hex per file.
PY_COMPILE = r"""
import py_compile, sys
for src, dfile in ((sys.argv[1], sys.argv[1]), ("/tmp/app.py", "/app/app.py")):
    if src == "/tmp/app.py":
        open(src, "wb").write(bytes.fromhex(sys.argv[2]))
    out = py_compile.compile(src, cfile="/tmp/out.pyc", dfile=dfile, doraise=True,
                             invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    print(open(out, "rb").read().hex())
"""


def _base(platform: str) -> tuple[Image, Target]:
    image, target, _ = build(
        DebianRef.parse("debian:trixie"),
        platform=Platform.parse(platform),
        settings=BaseSettings(),
        ctx=Context(Cache(cache_dir())),
    )
    return image, target


@pytest.fixture(scope="module")
def trixie() -> tuple[Image, Target]:
    return _base("linux/amd64")


def _read(image: Image, path: str) -> bytes:
    for name, member, tar in layers.walk(image.layers):
        if name == path and member.isfile():
            f = tar.extractfile(member)
            assert f is not None
            return f.read()
    raise AssertionError(f"{path} is not in the base")


def _compile_all(compiler: Compiler, files: dict[str, bytes]) -> dict[str, bytes | None]:
    return {path: compiler.compile(path, source) for path, source in files.items()}


@pytest.mark.container
def test_the_base_interpreter_writes_the_bytes_it_writes_itself(
    trixie: tuple[Image, Target], tmp_path: Path
) -> None:
    image, target = trixie
    assert target.python_version[:2] == (3, 13)
    compiler = compiler_for(image, target)
    try:
        assert isinstance(compiler, ImageCompiler) and compiler.cache_tag == "cpython-313"
        assert compiler.identity == f"image:{image.digest}:cpython-313"
        files = {"/" + STDLIB_MODULE: _read(image, STDLIB_MODULE), "/app/app.py": APP_SOURCE}
        ours = _compile_all(compiler, files)
        assert compiler.compile("/app/py2.py", b"print 'python 2'\n") is None
    finally:
        compiler.close()
    ref = write_layout(image, tmp_path / "layout")
    try:
        proc = podman_run(ref, "-c", PY_COMPILE, "/" + STDLIB_MODULE, APP_SOURCE.hex())
    finally:
        podman("rmi", "-f", image.config_descriptor.digest.split(":")[1], check=False)
    theirs = [bytes.fromhex(line) for line in proc.stdout.split()]
    assert [ours["/" + STDLIB_MODULE], ours["/app/app.py"]] == theirs
    # the 3.13 magic number and checked-hash flags, not this host's 3.11 ones
    assert theirs[0][:4] != importlib.util.MAGIC_NUMBER and theirs[0][4:8] == b"\x03\0\0\0"

    # a second process, files asked for in another order from two threads: the same bytes
    again = compiler_for(image, target)
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda p: (p, again.compile(p, files[p])), reversed(list(files))))
    finally:
        again.close()
    assert dict(results) == ours


def test_arm64_base_compiles_under_qemu_to_the_same_bytes(trixie: tuple[Image, Target]) -> None:
    tool("qemu-aarch64-static")  # installed with the test tools (TESTING.md); a missing one fails
    image, target = _base("linux/arm64")
    assert target.machine == "aarch64" and target.python_version == trixie[1].python_version
    files = {"/" + STDLIB_MODULE: _read(image, STDLIB_MODULE), "/app/app.py": APP_SOURCE}
    arm = compiler_for(image, target)
    amd = compiler_for(*trixie)
    try:
        assert isinstance(arm, ImageCompiler) and "under qemu-aarch64" in arm.description
        assert arm.identity == f"image:{image.digest}:cpython-313"
        # the same CPython release compiles to the same bytes on every architecture
        assert _compile_all(arm, files) == _compile_all(amd, files)
    finally:
        arm.close()
        amd.close()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def _private_cache(dest: Path) -> Path:
    """The shared cache's downloads and base pins (hard links), without its layers and unpacked
    bases: a build with it unpacks the base and compiles everything again in a new process."""
    shutil.copytree(
        cache_dir(),
        dest,
        copy_function=_link_or_copy,
        ignore=lambda folder, names: [
            n for n in names if folder == str(cache_dir()) and n in ("layers", "memo", "rootfs")
        ],
    )
    return dest


@pytest.mark.container
def test_build_with_bytecode_on_trixie_ships_pyc_the_image_uses(locked_cli: Path, tmp_path: Path) -> None:
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    layout = tmp_path / "out"
    first = slimline("build", str(proj), "--bytecode", "--to", f"oci:{layout}:one", "-v")
    assert "base debian:trixie: the newest known suite" in first.stderr  # no base named: it fits
    assert "compiled by the base's CPython 3.13 (/usr/bin/python3.13)" in first.stderr
    other = _private_cache(tmp_path / "cache2")
    second = slimline(
        "build",
        str(proj),
        "--bytecode",
        "--to",
        f"oci:{layout}:two",
        "-v",
        env={"SLIMLINE_CACHE_DIR": str(other)},
    )
    made = re.search(r"layers \(linux/amd64\): (\d+) of (\d+) made", second.stderr)
    assert made is not None and made[1] == made[2], second.stderr  # nothing reused: compiled anew
    digests = [p.stdout.strip().splitlines()[-1].split("@")[-1].strip() for p in (first, second)]
    assert digests[0].startswith("sha256:") and digests[0] == digests[1]

    # that build unpacked the base into its cache once; a rebuild after a code change compiles
    # the changed project with that copy (not unpacked again) and ships the new code's bytecode
    (unpacked,) = (other / "rootfs").iterdir()
    (unpacked / "slimline-test-sentinel").write_text("kept")
    cli = proj / "src" / "greet" / "cli.py"
    cli.write_text(cli.read_text().replace('MESSAGE = "hello"', 'MESSAGE = "howdy"'))
    third = slimline(
        "build", str(proj), "--bytecode", "--to", f"oci:{layout}:three", "-v",
        env={"SLIMLINE_CACHE_DIR": str(other)},
    )  # fmt: skip
    assert "as in the last build (nothing but the project changed), project layer new" in third.stderr
    assert [p.name for p in (other / "rootfs").iterdir()] == [unpacked.name]
    assert (unpacked / "slimline-test-sentinel").read_text() == "kept"
    ran = podman_run(
        f"oci:{layout}:three", "--name", "pyc", flags=["--read-only", "--env", "PYTHONVERBOSE=1"]
    )
    assert ran.stdout.strip() == "howdy, pyc!"
    pyc = "/app/.venv/lib/python3.13/site-packages/greet/__pycache__/cli.cpython-313.pyc"
    assert f"code object from '{pyc}'" in ran.stderr

    config = json.loads(run([tool("skopeo"), "inspect", "--config", f"oci:{layout}:one"]).stdout)
    assert not any(e.startswith("PYTHONDONTWRITEBYTECODE=") for e in config["config"]["Env"])
    probe = (
        "import importlib.util, os, sys, json.decoder, click, greet.cli\n"
        "mods = (json.decoder, click, greet.cli)\n"
        "print(sys.version_info[:2], sys.dont_write_bytecode)\n"
        "for m in mods:\n"
        "    assert m.__cached__ == importlib.util.cache_from_source(m.__file__), m\n"
        "    print(m.__name__, open(m.__cached__, 'rb').read(4) == importlib.util.MAGIC_NUMBER)\n"
    )
    flags = ["--entrypoint", "/app/.venv/bin/python", "--read-only"]
    out = podman_run(f"oci:{layout}:one", "-c", probe, flags=flags).stdout.split("\n")
    assert out[:4] == ["(3, 13) False", "json.decoder True", "click True", "greet.cli True"]
    # -v: each module's code object comes from its .pyc; nothing is compiled or written
    verbose = podman_run(
        f"oci:{layout}:one", "-v", "-c", "import greet.cli, json.decoder", flags=flags
    ).stderr
    for pyc in (
        "/app/.venv/lib/python3.13/site-packages/greet/__pycache__/cli.cpython-313.pyc",
        "/usr/lib/python3.13/json/__pycache__/decoder.cpython-313.pyc",
    ):
        assert f"code object from '{pyc}'" in verbose
    assert "could not create" not in verbose and "wrote" not in verbose
    assert podman_run(f"oci:{layout}:one", "--name", "pyc").stdout.strip() == "hello, pyc!"
    manifest = json.loads(run([tool("skopeo"), "inspect", "--raw", f"oci:{layout}:one"]).stdout)
    podman("rmi", "-f", manifest["config"]["digest"].split(":")[1], check=False)


@pytest.mark.network
def test_the_python_of_a_base_slimline_did_not_assemble_never_runs_here(
    trixie: tuple[Image, Target], locked_cli: Path, tmp_path: Path
) -> None:
    # the same trixie image, but as a build gets it from a layout (or a registry): its
    # interpreter is not run on the build host; this host's Python cannot write 3.13 bytecode
    image, target = trixie
    assert sys.version_info[:2] != (3, 13), "this test needs a host Python other than the image's"
    with pytest.raises(BytecodeError) as info:
        compiler_for(image, target, run_image=False)
    assert "debian: base" in str(info.value) and "python3.13" in str(info.value)
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    ref = write_layout(image, tmp_path / "layout")
    proc = slimline(
        "build", str(proj), "--base", ref, "--bytecode", "--to", f"oci:{tmp_path / 'out'}:b", check=False
    )
    assert proc.returncode == 1 and "debian: base" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.container
def test_by_default_the_standard_library_ships_compiled_in_a_layer_shared_with_bytecode_builds(
    locked_cli: Path, tmp_path: Path
) -> None:
    layout = tmp_path / "out"
    for tag, extra in (("def", []), ("none", ["--no-stdlib-bytecode"]), ("pyc", ["--bytecode"])):
        slimline("build", str(locked_cli), *extra, "--to", f"oci:{layout}:{tag}", "-q")
    layers = {
        tag: [
            la["digest"]
            for la in json.loads(run([tool("skopeo"), "inspect", "--raw", f"oci:{layout}:{tag}"]).stdout)[
                "layers"
            ]
        ]
        for tag in ("def", "none", "pyc")
    }
    base = next(i for i, (a, b) in enumerate(zip(layers["def"], layers["none"], strict=False)) if a != b)
    assert base == 3  # right above the base's layers
    assert layers["def"] == [*layers["none"][:base], layers["pyc"][base], *layers["none"][base:]]
    probe = (
        "import importlib.util, os, json.decoder, email.message, pydoc, click\n"
        "for m in (json.decoder, email.message, pydoc, click):\n"
        "    print(m.__name__, os.path.exists(importlib.util.cache_from_source(m.__file__)))\n"
    )
    flags = ["--entrypoint", "/app/.venv/bin/python", "--read-only"]
    out = podman_run(f"oci:{layout}:def", "-c", probe, flags=flags).stdout.split()
    assert out == ["json.decoder", "True", "email.message", "True", "pydoc", "False", "click", "False"]
    verbose = podman_run(f"oci:{layout}:def", "-v", "-c", "import json.decoder", flags=flags).stderr
    assert "code object from '/usr/lib/python3.13/json/__pycache__/decoder.cpython-313.pyc'" in verbose
    assert podman_run(f"oci:{layout}:def", "--name", "std").stdout.strip() == "hello, std!"
