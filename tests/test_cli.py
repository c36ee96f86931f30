"""The command itself: the console script and ``python -m slimline`` are one command, with the
exit statuses the cli module documents (0 done, 2 bad usage, 3 an input error; every status is
made for real in tests/test_exit_statuses.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from slimline import __version__
from slimline.cache.store import Cache
from slimline.errors import ExitStatus
from slimline.project import pyproject as project_mod
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.build.helpers import make_base, tinydep_lock
from tests.support import run, tool

FORMS = {"console script": [tool("slimline")], "python -m": [sys.executable, "-m", "slimline"]}


@pytest.mark.parametrize("form", FORMS)
def test_version_usage_and_errors(form: str, tmp_path: Path) -> None:
    cmd = FORMS[form]
    version = run([*cmd, "--version"])
    assert version.stdout.strip() == f"slimline {__version__}"

    usage = run([*cmd, "bild"], check=False)
    assert usage.returncode == 2 and "invalid choice: 'bild'" in usage.stderr, usage.stderr
    no_value = run([*cmd, "build", "--label", "revision"], check=False)
    assert no_value.returncode == 2 and "argument --label: 'revision' is not KEY=VALUE" in no_value.stderr

    missing = tmp_path / "no-project"
    missing.mkdir()
    env = {"SLIMLINE_CACHE_DIR": str(tmp_path / "cache")}
    error = run([*cmd, "build", str(missing), "-q"], env=env, check=False)
    assert error.returncode == ExitStatus.INPUT, error.stderr
    assert error.stderr.startswith("slimline: error: ") and "pyproject.toml does not exist" in error.stderr
    assert error.stdout == ""


# A wheel with a __pycache__ file: pypa/installer skips it with a RuntimeWarning whose location
# is its caller, slimline's own wheel installer.
PYCACHE = "tinydep/__pycache__/__init__.cpython-311.pyc"
REPORT_LINE = re.compile(r"\[\s*\d+\.\d+s\] ")


def _pycache_project(root: Path, index_url: str, wheel: bytes) -> Path:
    root.mkdir()
    (root / "main.py").write_text("import tinydep\n")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "warned"\nversion = "1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["tinydep"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "local"\nurl = "{index_url}"\npriority = "primary"\n'
    )
    content_hash = project_mod.load(root).content_hash()
    wheel_name = "tinydep-0.3.0-py3-none-any.whl"
    (root / "poetry.lock").write_text(tinydep_lock(content_hash, index_url, wheel_name, sha256(wheel)))
    return root


def test_python_warnings_reach_only_the_verbose_report_without_file_paths(tmp_path: Path) -> None:
    wheel = make_wheel("tinydep", "0.3.0", extra={PYCACHE: b"not bytecode"})
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as index:
        root = _pycache_project(tmp_path / "app", index.url, wheel)
        for verbose in (False, True):
            cache = tmp_path / f"cache-{verbose}"
            base = make_base(Cache(cache), tmp_path / f"base-{verbose}")
            out = f"oci:{tmp_path / 'out'}:t"
            args = ["build", str(root), "--base", base, "--to", out, "--cache-dir", str(cache)]
            proc = run([tool("slimline"), *args, *(["-v"] if verbose else [])], cwd=tmp_path)
            assert all(REPORT_LINE.match(line) for line in proc.stderr.splitlines()), proc.stderr
            assert "slimline/" not in proc.stderr and ".py:" not in proc.stderr
            warned = [line for line in proc.stderr.splitlines() if f"Skip installing {PYCACHE}" in line]
            assert len(warned) == (1 if verbose else 0), proc.stderr
    assert "warning: RuntimeWarning: Skip installing" in warned[0]


@pytest.mark.parametrize("verbose", [False, True])
def test_an_os_error_no_stage_explained_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    """The last resort: what the error means, its path and a hint; the traceback only with -v."""
    import errno

    from slimline import cli
    from slimline.build import conductor

    def full(*args: object, **kwargs: object) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "somewhere"))

    monkeypatch.setattr(conductor, "build", full)
    argv = ["build", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), *(["-v"] if verbose else [])]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert (
        f"slimline: error: No space left on device ({tmp_path / 'somewhere'})\n  hint: the disk is full"
        in err
    )
    assert ("Traceback" in err) is verbose
