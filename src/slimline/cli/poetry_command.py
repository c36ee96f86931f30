"""One slimline command as a Poetry command (``poetry image NAME``), made from slimline's own table.

Options: each command's argparse table (its module's ``add``) is read and turned into Cleo's
arguments and options, so ``poetry image build --help`` lists slimline's options and no list is
kept twice.  A positional becomes an argument; an option with no value a flag; ``append`` a
repeatable option.  ``-q/--quiet`` and ``-v/--verbose`` are Poetry's own: Poetry's ``-q`` gives
slimline's ``--quiet``, ``-v`` (and ``-vv``, ``-vvv``) its ``--verbose``.  An option whose long
name Poetry already uses for every command (``--help``, ``--directory``, ``--no-cache``, ...)
is left out, and a short name Poetry uses is dropped.  What Cleo read is written back as
slimline's argv and parsed by slimline's parser, which checks and converts the values (types,
choices), so an option means the same in both places; settings come from ``[tool.slimline]``
as always.

The project: a command with a ``project`` argument (``build``) builds the project Poetry found
(the current directory or a parent, or ``-C``/``-P``) unless one is named.

Credentials: for such a command, Poetry's own authenticator (the project's ``poetry.toml``
and the global config, ``auth.toml``, ``POETRY_HTTP_BASIC_*``, the keyring where Poetry uses
one) gives the credentials of every source the project declares and every repository in
``poetry config``; they are handed to slimline in memory (:class:`~slimline.context.SourceAuth`)
and are never written to a file, a log, an image or a message.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cleo.helpers import argument, option
from cleo.io.inputs.argument import Argument
from cleo.io.inputs.option import Option
from poetry.console.commands.command import Command

from slimline.cli.poetry_plugin import NAMESPACE
from slimline.context import SourceAuth
from slimline.errors import SlimlineError

if TYPE_CHECKING:
    from poetry.console.application import Application
    from poetry.poetry import Poetry

__all__ = ["SlimlineCommand", "command", "credentials"]

_MAPPED = {"quiet", "verbose"}  # slimline's options that Poetry's own verbosity flags set
_PROJECT = "project"  # the argument that names the project to read
_PROJECT_HELP = "project directory (default: the project Poetry finds: here or above, or -C/-P)"


@dataclass(frozen=True, slots=True)
class _Field:
    """One argparse action as Cleo sees it, and how its value goes back into slimline's argv."""

    name: str  # Cleo's name
    flag: str | None  # the option string (``--base``); None: a positional argument
    kind: str  # "flag", "value", "list" (repeatable option), "argument", "arguments"


@dataclass(frozen=True, slots=True)
class _Table:
    description: str
    arguments: tuple[Argument, ...]
    options: tuple[Option, ...]
    fields: tuple[_Field, ...]
    mapped: frozenset[str]  # which of slimline's -q/-v this command has


def _subparser(name: str) -> tuple[argparse.ArgumentParser, str]:
    from slimline.cli.main import parser

    root = parser(prog=f"poetry {NAMESPACE}")
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    described = next((c.help for c in sub._choices_actions if c.dest == name), None)
    return sub.choices[name], described or ""


def _describe(action: argparse.Action) -> str:
    text = "" if action.help in (None, argparse.SUPPRESS) else str(action.help)
    if action.choices is not None:
        text += f" (one of: {', '.join(map(str, action.choices))})"
    return text.strip()


def _table(name: str, *, taken: set[str], taken_short: set[str]) -> _Table:
    """Cleo's arguments and options for slimline's command ``name``; Poetry's global options
    (``taken`` long names, ``taken_short`` short ones) are not defined again."""
    sub, description = _subparser(name)
    arguments: list[Argument] = []
    options: list[Option] = []
    fields: list[_Field] = []
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in _MAPPED:
            continue
        if not action.option_strings:
            many = action.nargs in ("*", "+")
            optional = action.nargs in ("?", "*")
            text = _PROJECT_HELP if action.dest == _PROJECT else _describe(action)
            arguments.append(argument(action.dest, text, optional=optional, multiple=many))
            fields.append(_Field(action.dest, None, "arguments" if many else "argument"))
            continue
        long = next((s for s in action.option_strings if s.startswith("--")), None)
        if long is None or long[2:] in taken:
            continue
        short = next((s[1:] for s in action.option_strings if len(s) == 2 and s[1] != "-"), None)
        is_flag = action.nargs == 0
        many = isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+")
        options.append(
            option(
                long[2:],
                short if short not in taken_short else None,
                _describe(action),
                flag=is_flag,
                multiple=many and not is_flag,
            )
        )
        fields.append(_Field(long[2:], long, "flag" if is_flag else "list" if many else "value"))
    mapped = frozenset(a.dest for a in sub._actions if a.dest in _MAPPED)
    return _Table(description, tuple(arguments), tuple(options), tuple(fields), mapped)


def command(name: str, *, application: Application) -> SlimlineCommand:
    """``poetry image NAME``: slimline's command ``name`` with Poetry's global options kept Poetry's."""
    defined = application.definition.options
    taken = {o.name for o in defined}
    taken_short = {s for o in defined if o.shortcut for s in o.shortcut.split("|")}
    return SlimlineCommand(name, _table(name, taken=taken, taken_short=taken_short))


class SlimlineCommand(Command):
    """Runs ``slimline NAME`` with the values Cleo read, Poetry's verbosity and credentials."""

    def __init__(self, name: str, table: _Table) -> None:
        self.name = f"{NAMESPACE} {name}"
        self.description = table.description
        self.help = (
            f"Runs <c1>slimline {name}</> with the options below, the project's "
            "<c1>[tool.slimline]</> settings, and Poetry's sources and credentials."
        )
        self._slimline_name = name
        self._table = table
        super().__init__()

    def configure(self) -> None:
        for a in self._table.arguments:
            self._definition.add_argument(a)
        for o in self._table.options:
            self._definition.add_option(o)

    def handle(self) -> int:
        from slimline.cli.main import main

        reads_project = any(f.name == _PROJECT and f.flag is None for f in self._table.fields)
        poetry, project = self._project() if reads_project else (None, None)
        try:
            given = credentials(poetry) if reads_project else ()
        except SlimlineError as err:
            self.line_error(f"slimline: error: {err}")
            return 1
        return main(
            [self._slimline_name, *self._argv(project)], prog=f"poetry {NAMESPACE}", credentials=given
        )

    def _project(self) -> tuple[Poetry | None, str | None]:
        """The Poetry project to read (and, when none was named, the directory to pass)."""
        named = self.argument(_PROJECT)
        if named:
            return _poetry_at(Path(named)), None
        try:
            poetry = self.poetry
        except RuntimeError:  # no pyproject.toml here or above, or Poetry cannot read it:
            return None, None  # slimline reads the directory and says what is wrong
        return poetry, str(poetry.pyproject_path.parent)

    def _argv(self, project: str | None) -> list[str]:
        options: list[str] = []
        positionals: list[str] = []
        for field in self._table.fields:
            if field.flag is None:
                value = self.argument(field.name)
                if field.name == _PROJECT and not value and project is not None:
                    value = project
                if value:
                    positionals += value if isinstance(value, list) else [value]
            elif field.kind == "flag":
                options += [field.flag] if self.option(field.name) else []
            elif field.kind == "list":
                options += [f"{field.flag}={v}" for v in self.option(field.name) or ()]
            elif self.option(field.name) is not None:
                options.append(f"{field.flag}={self.option(field.name)}")
        if "quiet" in self._table.mapped and self.io.output.is_quiet():
            options.append("--quiet")
        elif "verbose" in self._table.mapped and self.io.output.is_verbose():
            options.append("--verbose")
        # "--": a positional that starts with "-" is still a positional
        return options + (["--", *positionals] if positionals else [])


def _poetry_at(path: Path) -> Poetry | None:
    from poetry.factory import Factory

    try:
        return Factory().create_poetry(cwd=path.resolve(), disable_plugins=True)
    except Exception:  # not a project Poetry can read: slimline reads it and says what is wrong
        return None


def credentials(poetry: Poetry | None) -> tuple[SourceAuth, ...]:
    """Poetry's credentials for the project's sources and the repositories in its config (the
    global config alone when ``poetry`` is None), as Poetry's authenticator finds them."""
    from poetry.config.config import Config
    from poetry.utils.authenticator import Authenticator
    from poetry.utils.password_manager import PoetryKeyringError

    from slimline.http import BasicAuth

    authenticator = Authenticator(
        poetry.config if poetry is not None else Config.create(), disable_cache=True
    )
    for source in poetry.get_sources() if poetry is not None else ():
        if source.url:
            authenticator.add_repository(source.name, source.url)
    found = []
    for name, repository in authenticator.configured_repositories.items():
        try:
            credential = authenticator.get_http_auth(name)
        except PoetryKeyringError as err:
            raise SlimlineError(
                f"the keyring did not answer: {err}",
                doing=f"reading Poetry's credentials for the source {name!r}",
                hint="unlock the keyring, or give them as POETRY_HTTP_BASIC_<NAME>_USERNAME/_PASSWORD",
            ) from err
        if credential is None or credential.password is None:
            continue  # Poetry sends nothing without a password, and neither does slimline
        auth = BasicAuth(credential.username or "", credential.password, source=f"Poetry's source {name!r}")
        found.append(SourceAuth(name, repository.url, auth))
    return tuple(found)
