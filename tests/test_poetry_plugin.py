"""The Poetry plugin against the real Poetry of this venv (offline): what it loads at Poetry's
start, the options it reads from slimline's tables, the project and credentials it hands over.

tests/e2e/test_poetry_plugin.py installs slimline's wheel into a fresh Poetry and builds an image.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cleo.testers.application_tester import ApplicationTester
from poetry.console.application import Application

from slimline.cli import poetry_command
from slimline.cli.main import main, names, parser
from slimline.cli.poetry_plugin import ImagePlugin
from tests.support import ROOT

# Poetry's Application() loads pbs_installer, which uses a deprecated importlib.resources call
pytestmark = pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning")

# What activating the plugin may load besides the standard library: the command table only.
LIGHT = (
    "slimline",
    "slimline.cli",
    "slimline.context",
    "slimline.cache",
    "slimline.errors",
    "slimline.report",
)

ACTIVATE = """
import json, sys
from poetry.console.application import Application
from poetry.plugins.application_plugin import ApplicationPlugin  # Poetry imports it to load plugins
app = Application()
before = set(sys.modules)
from slimline.cli.poetry_plugin import ImagePlugin
ImagePlugin().activate(app)
print(json.dumps({"loaded": sorted(set(sys.modules) - before), "commands": app.command_loader.names}))
"""


def _python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_activating_the_plugin_loads_only_the_command_table() -> None:
    found = json.loads(_python(ACTIVATE))
    loaded: list[str] = found["loaded"]
    ours = [m for m in loaded if m == "slimline" or m.startswith("slimline.")]
    heavy = [m for m in ours if not any(m == ok or m.startswith(f"{ok}.") for ok in LIGHT)]
    assert not heavy, f"activating the plugin loaded {heavy}"
    assert "slimline.cli.poetry_command" not in loaded  # made only when Poetry needs the command
    others = [m for m in loaded if m not in ours and m.split(".")[0] not in sys.stdlib_module_names]
    assert not others, f"activating the plugin loaded third-party modules {others}"
    assert [c for c in found["commands"] if c.startswith("image ")] == [f"image {n}" for n in names()]


def test_a_broken_install_leaves_poetrys_own_commands_working(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = sys.modules["slimline.cli.main"]
    monkeypatch.setattr(table, "COMMANDS", (*table.COMMANDS, "no_such_command_module"))
    app = Application()
    ImagePlugin().activate(app)
    err = capsys.readouterr().err
    assert "`poetry image` is unavailable" in err and "no_such_command_module" in err
    assert not [c for c in app.command_loader.names if c.startswith("image ")]
    assert app.command_loader.has("install")
    monkeypatch.undo()
    second = Application()
    ImagePlugin().activate(second)
    ImagePlugin().activate(second)  # a second copy (two installs) keeps the first's commands
    assert "`poetry image build` is taken by another plugin" in capsys.readouterr().err
    assert [c for c in second.command_loader.names if c.startswith("image ")] == [
        f"image {n}" for n in names()
    ]


def _slimline_table(name: str) -> list[argparse.Action]:
    root = parser()
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices[name]._actions)


@pytest.mark.parametrize("name", names())
def test_each_command_has_slimlines_options_and_poetrys_globals(name: str) -> None:
    app = Application()
    cmd = poetry_command.command(name, application=app)
    mine = {o.name: o for o in cmd.definition.options}
    table = _slimline_table(name)
    expected = {s[2:]: a for a in table for s in a.option_strings if s.startswith("--")}
    for option in ("help", "quiet", "verbose"):  # Poetry's own; -q and -v are mapped onto slimline's
        expected.pop(option, None)
    # a long name Poetry itself defines for every command (verify's --project) stays Poetry's
    poetrys = {o.name for o in app.definition.options}
    assert set(mine) == set(expected) - poetrys
    for long, action in expected.items():
        if long in poetrys:
            continue
        assert mine[long].is_list() == isinstance(action, argparse._AppendAction)
        assert mine[long].is_flag() == (action.nargs == 0)
    assert [a.name for a in cmd.definition.arguments] == [a.dest for a in table if not a.option_strings]


@pytest.fixture
def app() -> Iterator[ApplicationTester]:
    application = Application()
    application.auto_exits(False)
    ImagePlugin().activate(application)
    yield ApplicationTester(application)


def test_a_command_runs_slimline_with_the_values_cleo_read(
    app: ApplicationTester, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    status = main(["cache", "info", "--cache-dir", str(cache)])
    direct = capsys.readouterr().out
    assert status == 0 and direct
    assert app.execute(f"image cache --no-plugins --cache-dir {cache} info") == 0
    assert capsys.readouterr().out == direct


def test_build_reads_the_project_poetry_found_and_maps_quiet(
    app: ApplicationTester, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "1"\n')
    status = app.execute(f"image build --no-plugins -q -P {project} --cache-dir {tmp_path / 'c'}")
    captured = capsys.readouterr()
    assert status == 3 and captured.out == ""  # an input error (errors.ExitStatus.INPUT)
    assert f"reading {project}: " in captured.err and "has no lock file" in captured.err


def test_credentials_come_from_poetrys_config_for_sources_and_repositories(tmp_path: Path) -> None:
    config = tmp_path / "poetry-config"
    config.mkdir()
    (config / "config.toml").write_text('[repositories.corp]\nurl = "https://corp.example.invalid/simple"\n')
    (config / "auth.toml").write_text(
        '[http-basic.corp]\nusername = "carol"\npassword = "corp-pw"\n'
        '[http-basic.nopass]\nusername = "nobody"\n'
    )
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "1"\n'
        + "".join(
            f'[[tool.poetry.source]]\nname = "{n}"\nurl = "https://{n}.example.invalid/simple"\n'
            f'priority = "supplemental"\n'
            for n in ("private", "nopass", "open")
        )
    )
    code = f"""
import json
from poetry.factory import Factory
from slimline.cli.poetry_command import credentials
found = credentials(Factory().create_poetry({str(project)!r}))
print(json.dumps([[g.name, g.url, g.auth.username, g.auth.password, g.auth.source] for g in found]))
"""
    env = {
        "POETRY_CONFIG_DIR": str(config),
        "POETRY_KEYRING_ENABLED": "false",
        "POETRY_HTTP_BASIC_PRIVATE_USERNAME": "alice",
        "POETRY_HTTP_BASIC_PRIVATE_PASSWORD": "env-pw",
    }
    found = {row[0]: row[1:] for row in json.loads(_python(code, **env))}
    assert found == {
        "corp": ["https://corp.example.invalid/simple", "carol", "corp-pw", "Poetry's source 'corp'"],
        "private": ["https://private.example.invalid/simple", "alice", "env-pw", "Poetry's source 'private'"],
    }
