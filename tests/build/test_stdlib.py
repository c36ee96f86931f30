"""The standard library's layer begun early, and reused when the base is extended with libraries."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

from slimline import layers
from slimline.base.resolve import Base
from slimline.build import stdlib
from slimline.build.jobs import Placement
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.oci.image import LAYER_TAR, Config, Image, Layer, Platform
from slimline.target import Target

MINOR = sys.version_info.minor
LIB = f"usr/lib/python3.{MINOR}"


def _target() -> Target:
    return Target(
        platform=Platform("amd64"),
        python_version=(3, MINOR, 0),
        interpreter=f"/usr/bin/python3.{MINOR}",
        libc="glibc",
        libc_version=(2, 36),
    )


def _layer(tmp_path: Path, files: dict[str, bytes]) -> Layer:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    blob = tmp_path / digest.removeprefix("sha256:")
    blob.write_bytes(raw)
    return Layer(digest, digest, len(raw), LAYER_TAR, blob)


def _base(*stack: Layer) -> Base:
    image = Image(platform=Platform("amd64"), layers=stack, config=Config())
    return Base("debian:test", image, _target())


def _context(tmp_path: Path) -> Context:
    return Context(Cache(tmp_path / "cache"))


def test_a_layer_of_libraries_leaves_the_standard_library_as_it_was(tmp_path: Path) -> None:
    python = _layer(tmp_path, {f"{LIB}/os.py": b"X = 1\n", f"usr/bin/python3.{MINOR}": b"ELF"})
    libs = _layer(tmp_path, {"usr/lib/x86_64-linux-gnu/libpq.so.5": b"ELF"})
    module = _layer(tmp_path, {f"{LIB}/venv/__init__.py": b"X = 2\n"})
    whiteout = _layer(tmp_path, {"usr/lib/.wh.python3": b""})
    interpreter = _layer(tmp_path, {f"usr/bin/python3.{MINOR}": b"other ELF"})
    plain, cache, target = _base(python).image, Cache(tmp_path / "cache"), _target()
    assert stdlib._same_stdlib(plain, _base(python, libs).image, target=target, cache=cache)
    for other in (module, whiteout, interpreter):
        assert not stdlib._same_stdlib(plain, _base(python, libs, other).image, target=target, cache=cache)
    # what a layer holds is read once, then remembered by its digest
    assert any((cache.root / keys.STDLIB_TOUCH).iterdir())
    libs.path.unlink()
    assert stdlib._same_stdlib(plain, _base(python, libs).image, target=target, cache=cache)


def test_an_extended_base_reuses_the_layer_begun_for_the_plain_one(tmp_path: Path) -> None:
    python = _layer(tmp_path, {f"{LIB}/os.py": b"X = 1\n", f"{LIB}/json/__init__.py": b"Y = 2\n"})
    libs = _layer(tmp_path, {"usr/lib/x86_64-linux-gnu/libpq.so.5": b"ELF"})
    ctx, plain = _context(tmp_path), _base(python)
    place = Placement("/app/.venv", _target())
    early = stdlib.begin(plain, place, compression=layers.Compression(), ctx=ctx)
    try:
        job = early.job_for(_base(python, libs), place)
        # the image's "interpreter" is no program: this interpreter compiles, chosen on the thread
        assert job is not None and job is early.job
        again = layers.realise([job], cache=ctx.cache, compression=layers.Compression(), base_like=True)
        assert again.reused == 1  # made on the thread, before job_for returned
        changed = _layer(tmp_path, {f"{LIB}/os.py": b"X = 3\n"})
        other = early.job_for(_base(python, changed), place)
        assert other is not None and other.key != job.key
    finally:
        early.close()
