"""The command itself: the console script and ``python -m slimline`` are one command, with the
exit statuses the cli module documents (0 done, 1 a slimline error, 2 bad usage)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from slimline import __version__
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
    assert error.returncode == 1, error.stderr
    assert error.stderr.startswith("slimline: error: ") and "pyproject.toml does not exist" in error.stderr
    assert error.stdout == ""


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
