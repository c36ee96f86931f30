"""The build memo (slimline.build.memo) through the real command line.

The property under test: a rebuild served by the memo gives exactly the image a full build
gives for the same files (checked against a full build forced with SLIMLINE_NO_LAYER_CACHE=1),
and the memo is not used when an input it does not track could have changed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.support import cache_dir, podman_run, slimline

pytestmark = [pytest.mark.network]

MEMO_LINE = "as in the last build"
FULL_LINE = "distributions selected"


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _build(
    proj: Path, out: Path, tag: str, *flags: str, env: dict[str, str] | None = None
) -> tuple[str, str]:
    """(digest, stderr) of ``slimline build``."""
    proc = slimline("build", str(proj), *flags, "--to", f"oci:{out}:{tag}", env=env)
    return proc.stdout.strip().splitlines()[-1].split("@")[-1], proc.stderr


def _first_build(proj: Path, out: Path, *flags: str, env: dict[str, str]) -> tuple[str, Path]:
    """(digest, memo file) of the first build of ``proj`` (tag "a"): the memo it wrote."""
    before = set((cache_dir() / "memo").glob("*"))
    digest, _ = _build(proj, out, "a", *flags, env=env)
    (memo,) = set((cache_dir() / "memo").glob("*")) - before
    return digest, memo


def _full(proj: Path, out: Path, tag: str, env: dict[str, str], *flags: str) -> str:
    digest, err = _build(proj, out, tag, *flags, env={**env, "SLIMLINE_NO_LAYER_CACHE": "1"})
    assert MEMO_LINE not in err and FULL_LINE in err
    return digest


@pytest.fixture
def env() -> dict[str, str]:
    """Extra environment for the builds (the shared cache: memo keys include the project's path)."""
    return {}


@pytest.mark.container
def test_an_edit_is_rebuilt_from_the_memo_as_a_full_build_would(
    locked_cli: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    proj = _copy(locked_cli, tmp_path)
    out = tmp_path / "out"
    first, err = _build(proj, out, "a", env=env)
    assert FULL_LINE in err

    cli = proj / "src" / "greet" / "cli.py"
    # an edit no other test (sharing the cache) has made: the project layer must be made here
    text = cli.read_text().replace('MESSAGE = "hello"', 'MESSAGE = "howdy"')
    cli.write_text(text + f"# {time.time_ns()}\n")
    second, err = _build(proj, out, "b", env=env)
    assert MEMO_LINE in err and FULL_LINE not in err, err
    assert "project layer patched" in err  # made from the last one, not installed anew
    assert second != first
    assert _full(proj, out, "c", env) == second
    assert podman_run(f"oci:{out}:b").stdout.strip() == "howdy, world!"

    # nothing changed: the memo again, and the same digest
    again, err = _build(proj, out, "d", env=env)
    assert MEMO_LINE in err and again == second


@pytest.mark.parametrize("change", ["lock", "epoch", "option", "new module", "pyproject"])
def test_changes_the_memo_does_not_cover_take_the_full_path(
    locked_cli: Path, tmp_path: Path, env: dict[str, str], change: str
) -> None:
    proj = _copy(locked_cli, tmp_path)
    out = tmp_path / "out"
    _build(proj, out, "a", env=env)
    extra: list[str] = []
    if change == "lock":
        (proj / "poetry.lock").write_text((proj / "poetry.lock").read_text() + "\n# edited\n")
    elif change == "epoch":
        env = {**env, "SOURCE_DATE_EPOCH": "1700000000"}
    elif change == "option":
        extra = ["--with", "dev"]
    elif change == "new module":
        (proj / "src" / "greet" / "extra.py").write_text("X = 1\n")
    else:
        text = (proj / "pyproject.toml").read_text()
        (proj / "pyproject.toml").write_text(text + '\n[tool.slimline]\nlabels = { team = "a" }\n')
    proc = slimline("build", str(proj), "--to", f"oci:{out}:b", *extra, env=env)
    # (a new module: the key still matches, but the wheel needs its backend: the full path builds it)
    assert MEMO_LINE not in proc.stderr and FULL_LINE in proc.stderr, proc.stderr
    digest = proc.stdout.strip().splitlines()[-1]
    forced = slimline(
        "build", str(proj), "--to", f"oci:{out}:c", *extra, env={**env, "SLIMLINE_NO_LAYER_CACHE": "1"}
    )
    assert forced.stdout.strip().splitlines()[-1] == digest


def test_a_missing_blob_or_an_expired_base_takes_the_full_path(
    locked_cli: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    proj = _copy(locked_cli, tmp_path)
    out = tmp_path / "out"
    cache = cache_dir()
    first, memo = _first_build(proj, out, env=env)

    data = json.loads(memo.read_text())
    for entry in data["images"]:
        entry["fresh_until"] = 1.0  # the base's pin ran out long ago
    memo.write_text(json.dumps(data))
    digest, err = _build(proj, out, "b", env=env)
    assert MEMO_LINE not in err and digest == first
    _, err = _build(proj, out, "c", env=env)
    assert MEMO_LINE in err  # the full build wrote a fresh memo

    manifest = json.loads(json.loads(memo.read_text())["images"][0]["manifest"])
    (cache / "blobs" / "sha256" / manifest["layers"][-1]["digest"].removeprefix("sha256:")).unlink()
    digest, err = _build(proj, out, "d", env=env)
    assert MEMO_LINE not in err and digest == first


def test_script_apps_use_the_memo_and_path_dependencies_do_not(
    locked_script: Path, locked_web: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    # package-mode=false with a local path dependency: never memoised (the dependency's tree
    # can change without the key seeing it)
    script = _copy(locked_script, tmp_path)
    _build(script, tmp_path / "s", "a", env=env)
    (script / "libs" / "locallib" / "locallib" / "__init__.py").write_text("VALUE = 'changed'\n")
    digest, err = _build(script, tmp_path / "s", "b", env=env)
    assert MEMO_LINE not in err
    assert _full(script, tmp_path / "s", "c", env) == digest
    # its own files are keyed by content: an edit of the same size (ctime moves) is a new layer
    main = script / "main.py"
    main.write_text(main.read_text().replace('"args"', '"ARGS"'))
    edited, _ = _build(script, tmp_path / "s", "d", env=env)
    assert edited != digest and _full(script, tmp_path / "s", "e", env) == edited

    # the example web app: memoised; an edit to its module is served by the memo
    web = _copy(locked_web, tmp_path)
    _build(web, tmp_path / "w", "a", env=env)
    main = web / "src" / "hello" / "main.py"
    main.write_text(main.read_text() + "\n# edited\n")
    digest, err = _build(web, tmp_path / "w", "b", env=env)
    assert MEMO_LINE in err
    assert _full(web, tmp_path / "w", "c", env) == digest


@pytest.mark.container
def test_bytecode_builds_use_the_memo_while_the_compiler_is_the_same(
    locked_cli: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    # the default base for this project is trixie (CPython 3.13, not the host's): its own
    # interpreter compiles, from the base unpacked in the cache
    proj = _copy(locked_cli, tmp_path)
    out = tmp_path / "out"
    _, memo = _first_build(proj, out, "--bytecode", env=env)
    cli = proj / "src" / "greet" / "cli.py"
    cli.write_text(
        cli.read_text().replace('MESSAGE = "hello"', 'MESSAGE = "howdy"') + f"# {time.time_ns()}\n"
    )
    second, err = _build(proj, out, "b", "--bytecode", env=env)
    assert MEMO_LINE in err and "project layer new" in err, err  # compiled: not patched
    assert _full(proj, out, "c", env, "--bytecode") == second
    ran = podman_run(f"oci:{out}:b", flags=["--read-only", "--env", "PYTHONVERBOSE=1"])
    assert ran.stdout.strip() == "howdy, world!"
    assert (
        "code object from '/app/.venv/lib/python3.13/site-packages/greet/__pycache__/cli.cpython-313.pyc'"
        in ran.stderr
    )

    # the recorded compiler is not the one a full build would choose now: the full path
    data = json.loads(memo.read_text())
    for entry in data["images"]:
        entry["compiled"]["identity"] = "host:cpython-313:another interpreter"
    memo.write_text(json.dumps(data))
    cli.write_text(cli.read_text() + "# again\n")
    third, err = _build(proj, out, "d", "--bytecode", env=env)
    assert MEMO_LINE not in err and FULL_LINE in err
    assert _full(proj, out, "e", env, "--bytecode") == third
