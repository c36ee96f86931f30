"""``slimline verify`` on freshly built images of the example apps (real locks, real wheels, a
real Debian base), and after one byte of one file in one layer was changed, every digest that
names the layer rewritten so that only the check of the contents can notice."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.support import ROOT, slimline
from tests.verify.helpers import edit_file, flip, layer_tar, manifest_of

pytestmark = pytest.mark.network

VERIFIED, FAILED = 0, 6  # errors.ExitStatus.VERIFICATION


def _build(app: str, tmp_path: Path, *more: str) -> tuple[Path, Path]:
    proj = tmp_path / app
    shutil.copytree(ROOT / "examples" / app, proj)
    out = tmp_path / "out"
    slimline("build", str(proj), "--to", f"oci:{out}:t", "-q", *more)
    return proj, out


def _verify(out: Path, *more: str) -> tuple[int, str, str]:
    proc = slimline("verify", f"oci:{out}:t", *more, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _members(out: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path of the layout's image -> (its topmost layer, its bytes when a small regular file)."""
    found: dict[str, tuple[int, bytes | None]] = {}
    manifest, _ = manifest_of(out)
    for position in range(len(manifest["layers"])):
        with tarfile.open(fileobj=io.BytesIO(layer_tar(out, position))) as tar:
            for m in tar:
                f = tar.extractfile(m) if m.isreg() and m.size < 1 << 20 else None
                found[m.name] = (position, f.read() if f is not None else None)
    return found


@pytest.mark.parametrize(
    "app",
    [
        "cli-app",
        "fastapi-app",
        "pandas-job",
        # its sdists are compiled in the builder (bubblewrap), as tests/e2e/test_compiled.py does
        pytest.param("compiled-app", marks=[pytest.mark.container, pytest.mark.slow]),
    ],
)
def test_a_fresh_build_of_each_example_verifies(app: str, tmp_path: Path) -> None:
    proj, out = _build(app, tmp_path)
    code, stdout, err = _verify(out, "--project", str(proj))
    assert code == VERIFIED, err
    assert stdout.strip().endswith(f"verified oci:{out}:t")
    assert "files matching their Debian package" in stdout and "distributions matching poetry.lock" in stdout
    if app != "compiled-app":  # its wheels are built from sdists: the lock holds no wheel to compare
        assert "whose RECORD matches the locked wheel's" in stdout and "RECORD trusted" not in stdout


def test_bytecode_of_the_image_verifies_against_its_sources(tmp_path: Path) -> None:
    proj, out = _build("cli-app", tmp_path, "--bytecode")
    code, stdout, err = _verify(out, "--project", str(proj))
    assert code == VERIFIED, err
    assert "bytecode matching its source" in stdout and "by name" not in stdout


def test_one_changed_file_is_named_with_its_package(tmp_path: Path) -> None:
    _, out = _build("cli-app", tmp_path)
    files = _members(out)
    click_init = next(p for p in files if p.endswith("site-packages/click/__init__.py"))
    click_core = next(p for p in files if p.endswith("site-packages/click/core.py"))
    tally_init = next(p for p in files if p.endswith("site-packages/tally/__init__.py"))
    click = next(p.rsplit("/", 1)[-1] for p in files if "/click-" in p and p.endswith(".dist-info"))
    click_label = click.removesuffix(".dist-info").replace("-", " ")
    os_py = next(p for p in files if p.startswith("usr/lib/python3.") and p.endswith("/os.py"))
    owner = next(
        p.rsplit("/", 1)[-1].removesuffix(".sha256sums")
        for p, (_, data) in files.items()
        if p.endswith(".sha256sums") and data is not None and f"  {os_py}\n".encode() in data
    )

    edit_file(out, click_core, flip)  # a venv file
    edit_file(out, os_py, flip)  # a base file
    other = files[tally_init][1]
    assert other is not None
    edit_file(out, click_init, lambda _: other)  # another wheel's file swapped in
    code, _, err = _verify(out)
    assert code == FAILED
    assert f"/{click_core} [{click_label}]: differs from its RECORD row" in err
    assert f"/{click_init} [{click_label}]: differs from its RECORD row" in err
    assert f"/{os_py} [{owner}]: differs from its package" in err
    # and the standard library's bytecode of os.py (compiled into the image by default) no longer
    # matches its source: the fourth problem
    problems = [line for line in err.splitlines() if "linux/amd64: /" in line]
    assert len(problems) == 4, err
    assert any("/__pycache__/os.cpython-" in line for line in problems), err
