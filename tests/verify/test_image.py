"""``slimline verify`` on images built in-process (a local index, a base laid out as slimline's
Debian assembly lays one), clean and after one file of one layer was changed with every digest
kept consistent: only the check of the contents can notice."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.verify.scan import MAX_SOURCE
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.build.helpers import make_base, tinydep_lock, write_project
from tests.verify.helpers import (
    add_file,
    build,
    edit_file,
    flip,
    layer_tar,
    manifest_of,
    recorded_base,
    replace_layer,
    run,
)

SITE = "app/.venv/lib/python3.11/site-packages"
TINYDEP = f"{SITE}/tinydep/__init__.py"
VERIFIED = 0
FAILED = 6  # errors.ExitStatus.VERIFICATION


@pytest.fixture
def index() -> Iterator[LocalIndex]:
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        yield idx


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str]:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    return tmp_path, cache_dir, recorded_base(Cache(cache_dir), tmp_path / "base")


def _verify(
    capsys: pytest.CaptureFixture[str], out: Path, cache_dir: Path, *more: str
) -> tuple[int, str, str]:
    return run(capsys, "verify", f"oci:{out}:t", "--cache-dir", str(cache_dir), *more)


@pytest.mark.parametrize("package", [True, False])
def test_a_fresh_build_verifies_against_its_lock(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str], package: bool
) -> None:
    tmp, cache_dir, base = world
    root = write_project(tmp / "proj", index.url, package=package)
    digest = build(capsys, root, base, tmp / "out", cache_dir)
    code, out, err = _verify(capsys, tmp / "out", cache_dir, "--project", str(root))
    assert code == VERIFIED, err
    assert digest in out and out.strip().endswith(f"verified oci:{tmp / 'out'}:t")
    assert "files matching their Debian package" in out and "distributions matching poetry.lock" in out


def test_a_docker_archive_verifies_too(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    root = write_project(tmp / "proj", index.url, package=True)
    archive = tmp / "app.tar"
    code, out, err = run(
        capsys, "build", str(root), "--base", base, "--to", f"docker-archive:{archive}:hello:1",
        "--cache-dir", str(cache_dir),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(
        capsys, "verify", f"docker-archive:{archive}", "--project", str(root), "--cache-dir", str(cache_dir)
    )
    assert code == VERIFIED, err
    assert "distributions whose RECORD matches the locked wheel's" in out


def test_one_flipped_byte_in_a_venv_file_names_the_file_and_its_distribution(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    build(capsys, write_project(tmp / "proj", index.url, package=True), base, tmp / "out", cache_dir)
    edit_file(tmp / "out", TINYDEP, flip)
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert f"/{TINYDEP} [tinydep 0.3.0]: differs from its RECORD row" in err
    assert err.count("linux/amd64: /") == 1


def test_one_flipped_byte_in_a_base_file_names_the_file_and_its_package(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    build(capsys, write_project(tmp / "proj", index.url, package=True), base, tmp / "out", cache_dir)
    assert edit_file(tmp / "out", "usr/lib/python3.11/os.py", flip) == 0
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert "/usr/lib/python3.11/os.py [python3.11-minimal]: differs from its package" in err


def test_a_generated_base_file_is_made_again_and_compared(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    build(capsys, write_project(tmp / "proj", index.url, package=True), base, tmp / "out", cache_dir)
    edit_file(tmp / "out", "etc/passwd", lambda d: d + b"evil:x:0:0::/:/bin/sh\n")
    edit_file(tmp / "out", "etc/ssl/certs/ca-certificates.crt", lambda d: d + d)
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert "/etc/passwd: differs from what slimline writes there" in err
    assert "/etc/ssl/certs/ca-certificates.crt: differs from what slimline writes there" in err


def test_a_file_no_package_owns_is_reported(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    build(capsys, write_project(tmp / "proj", index.url, package=True), base, tmp / "out", cache_dir)
    add_file(tmp / "out", f"{SITE}/sitecustomize.py", b"import os\n")
    add_file(tmp / "out", "usr/bin/backdoor", b"#!/bin/sh\n")
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert f"/{SITE}/sitecustomize.py: in the venv, but listed in no distribution's RECORD" in err
    assert "/usr/bin/backdoor: outside the venv" in err


def test_a_record_cannot_account_for_a_file_outside_the_venv(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed base file whose new hash is added to a RECORD is still the base's file."""
    tmp, cache_dir, base = world
    build(capsys, write_project(tmp / "proj", index.url, package=True), base, tmp / "out", cache_dir)
    record = f"{SITE}/tinydep-0.3.0.dist-info/RECORD"
    evil = b"import sys\nsep = '\\\\'\n"
    digest = base64.urlsafe_b64encode(hashlib.sha256(evil).digest()).rstrip(b"=")
    edit_file(tmp / "out", "usr/lib/python3.11/os.py", lambda _: evil)
    edit_file(
        tmp / "out",
        record,
        lambda d: d + b"../../../../../usr/lib/python3.11/os.py,sha256=" + digest + b",%d\n" % len(evil),
    )
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert f"/{record} [tinydep 0.3.0]: lists /usr/lib/python3.11/os.py, outside the venv" in err
    assert "/usr/lib/python3.11/os.py [python3.11-minimal]: differs from its package" in err


def test_a_file_changed_with_its_record_row_is_caught_by_the_locked_wheel(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    root = write_project(tmp / "proj", index.url, package=True)
    build(capsys, root, base, tmp / "out", cache_dir)
    record = f"{SITE}/tinydep-0.3.0.dist-info/RECORD"
    evil = b"import os; os.system('id')\n"
    digest = base64.urlsafe_b64encode(hashlib.sha256(evil).digest()).rstrip(b"=")

    def rewrite(data: bytes) -> bytes:
        lines = [
            b"tinydep/__init__.py,sha256=" + digest + b",%d" % len(evil)
            if line.startswith(b"tinydep/__init__.py,")
            else line
            for line in data.splitlines()
        ]
        return b"\n".join(lines) + b"\n"

    edit_file(tmp / "out", TINYDEP, lambda _: evil)
    edit_file(tmp / "out", record, rewrite)
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == VERIFIED, err  # consistent on its own
    code, _, err = _verify(capsys, tmp / "out", cache_dir, "--project", str(root))
    assert code == FAILED
    assert f"/{TINYDEP} [tinydep 0.3.0]: its RECORD row differs from the locked wheel's" in err
    code, out, err = _verify(capsys, tmp / "out", tmp / "empty-cache", "--project", str(root))
    assert code == VERIFIED, err  # without the wheel, the RECORD is trusted, and it says so
    assert "1 distributions whose wheel is not in the cache (RECORD trusted)" in out


def test_a_removed_base_file_is_reported(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp, cache_dir, base = world
    build(capsys, write_project(tmp / "proj", index.url, package=True), base, tmp / "out", cache_dir)
    add_file(tmp / "out", "usr/lib/python3.11/.wh.os.py", b"")
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert "/usr/lib/python3.11/os.py [python3.11-minimal]: recorded by its package but missing" in err


def test_a_layer_of_another_wheel_is_caught_by_the_lock(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dependency layer of a build from another tinydep 0.3.0 wheel, swapped in whole: every
    RECORD is consistent, only the dist-info's record of its artifact tells."""
    tmp, cache_dir, base = world
    root = write_project(tmp / "proj", index.url, package=True)
    build(capsys, root, base, tmp / "out", cache_dir)
    other = make_wheel("tinydep", "0.3.0", body="VALUE = 2\nimport os; os.system('id')\n")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": other}})) as idx2:
        root2 = write_project(tmp / "proj2", idx2.url, package=True)
        lock = tinydep_lock(_content_hash(root2), idx2.url, "tinydep-0.3.0-py3-none-any.whl", sha256(other))
        (root2 / "poetry.lock").write_text(lock)
        build(capsys, root2, base, tmp / "out2", cache_dir)
    _, config = manifest_of(tmp / "out")
    deps = next(
        i for i, h in enumerate(config["history"]) if h["created_by"].startswith("slimline: dependencies")
    )
    replace_layer(tmp / "out", deps, layer_tar(tmp / "out2", deps))
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == VERIFIED, err  # consistent on its own
    code, _, err = _verify(capsys, tmp / "out", cache_dir, "--project", str(root))
    assert code == FAILED
    assert f"/{SITE}/tinydep-0.3.0.dist-info/RECORD [tinydep 0.3.0]: was installed from" in err
    assert sha256(other) in err


def _content_hash(root: Path) -> str:
    from slimline.project import pyproject

    return pyproject.load(root).content_hash()


def test_a_base_without_records_fails_unless_skipped(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    base = make_base(Cache(cache_dir), tmp_path / "base")
    build(
        capsys, write_project(tmp_path / "proj", index.url, package=True), base, tmp_path / "out", cache_dir
    )
    code, _, err = _verify(capsys, tmp_path / "out", cache_dir)
    assert code == FAILED and "the base records no file hashes" in err
    code, out, err = _verify(capsys, tmp_path / "out", cache_dir, "--skip-base")
    assert code == VERIFIED, err
    assert "base files (unchecked" in out


def test_an_image_that_cannot_be_read_is_an_error_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _verify(capsys, tmp_path / "absent", tmp_path / "cache")
    assert code == 1 and "slimline: error:" in err


def test_the_scan_hashes_sources_and_stops_at_the_cap() -> None:
    import importlib.util
    import io

    from slimline.verify.scan import summarise

    small = summarise("a.py", io.BytesIO(b"x = 1\n"), magic=importlib.util.MAGIC_NUMBER)
    assert small.sha256 == hashlib.sha256(b"x = 1\n").hexdigest()
    assert small.source_hash == importlib.util.source_hash(b"x = 1\n")
    big = summarise("b.py", io.BytesIO(b"#" * (MAX_SOURCE + 1)), magic=importlib.util.MAGIC_NUMBER)
    assert big.source_hash is None and big.size == MAX_SOURCE + 1
    assert summarise("a.py", io.BytesIO(b"x = 1\n")).source_hash is None  # no magic: no key


def test_bytecode_is_tied_to_its_source(
    world: tuple[Path, Path, str], index: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    """With bytecode = true (compiled here: the same CPython X.Y), each .pyc's PEP 552 header names
    its source's hash; bytecode of another source is reported with the source's owner."""
    tmp, cache_dir, base = world
    root = write_project(tmp / "proj", index.url, package=True)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.slimline]\n", "[tool.slimline]\nbytecode = true\n")
    )
    (root / "poetry.lock").write_text(
        (root / "poetry.lock").read_text().replace(_lock_hash(root / "poetry.lock"), _content_hash(root))
    )
    build(capsys, root, base, tmp / "out", cache_dir)
    code, out, err = _verify(capsys, tmp / "out", cache_dir, "--project", str(root))
    assert code == VERIFIED, err
    assert "bytecode matching its source" in out
    pyc = f"{SITE}/tinydep/__pycache__/__init__.cpython-311.pyc"
    stdlib_pyc = "usr/lib/python3.11/__pycache__/os.cpython-311.pyc"
    edit_file(tmp / "out", pyc, lambda d: d[:8] + bytes(8) + d[16:])
    edit_file(tmp / "out", stdlib_pyc, lambda d: d[:8] + bytes(8) + d[16:])
    code, _, err = _verify(capsys, tmp / "out", cache_dir)
    assert code == FAILED
    assert f"/{pyc} [tinydep 0.3.0]: bytecode compiled from another source" in err
    assert f"/{stdlib_pyc} [python3.11-minimal]: bytecode compiled from another source" in err


def _lock_hash(lock: Path) -> str:
    return next(
        line.split('"')[1] for line in lock.read_text().splitlines() if line.startswith("content-hash")
    )


def test_a_slim_image_verifies_and_a_file_slim_mode_did_not_list_is_still_missed(
    world: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Slim mode drops tinydep's tests and header, lists their RECORD rows in SLIMLINE-DROPPED;
    verify accounts for the list and for the missing files, and still reports a file that is
    missing without being listed."""
    tmp, cache_dir, base = world
    extra = {"tinydep/tests/test_it.py": b"def test(): pass\n", "tinydep/include/t.h": b"int x;\n"}
    wheel = make_wheel("tinydep", "0.3.0", extra=extra)
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        root = write_project(tmp / "proj", idx.url, package=True)
        lock = root / "poetry.lock"  # locked with the plain tinydep wheel's hash: this one's instead
        lock.write_text(lock.read_text().replace(sha256(make_wheel("tinydep", "0.3.0")), sha256(wheel)))
        args = ["--base", base, "--to", f"oci:{tmp / 'out'}:t", "--cache-dir", str(cache_dir), "--slim"]
        code, _, err = run(capsys, "build", str(root), *args)
        assert code == 0, err
    _, config = manifest_of(tmp / "out")
    position = len(config["rootfs"]["diff_ids"]) - 2  # the dependencies' layer, below the project's
    assert f"{SITE}/tinydep/tests/test_it.py".encode() not in layer_tar(tmp / "out", position)
    code, out, err = _verify(capsys, tmp / "out", cache_dir, "--project", str(root))
    assert code == VERIFIED, err
    assert "lists of the files slim mode left out" in out

    dropped = f"{SITE}/tinydep-0.3.0.dist-info/SLIMLINE-DROPPED"
    edit_file(tmp / "out", dropped, lambda data: b"".join(data.splitlines(keepends=True)[1:]))
    code, _, err = _verify(capsys, tmp / "out", cache_dir, "--project", str(root))
    assert code == FAILED and "listed in RECORD but missing from the image" in err, err
