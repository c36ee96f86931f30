"""``poetry image NAME``: every slimline command inside Poetry (entry point ``poetry.application.plugin``).

Poetry imports and activates its plugins at the start of every command, ``poetry --version``
too.  So this module imports only Poetry's plugin base class, and :meth:`ImagePlugin.activate`
only reads slimline's command table (``slimline.cli.main.names``: argument tables, no build
code) and registers one factory per command.  Cleo calls a factory only when it needs that
command (``poetry image build``, ``poetry list``); the factory then loads
:mod:`slimline.cli.poetry_command`, and slimline's build code loads when the command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from poetry.plugins.application_plugin import ApplicationPlugin

if TYPE_CHECKING:
    from cleo.commands.command import Command
    from poetry.console.application import Application

__all__ = ["NAMESPACE", "ImagePlugin"]

NAMESPACE = "image"  # poetry image build, poetry image base, ...


class ImagePlugin(ApplicationPlugin):
    def activate(self, application: Application) -> None:
        # Poetry does not guard its plugins: an exception here would break every Poetry command.
        try:
            from slimline.cli.main import names

            found = names()
        except Exception as err:
            print(
                f"slimline: `poetry {NAMESPACE}` is unavailable: slimline's commands did not load "
                f"({type(err).__name__}: {err}); reinstall slimline into Poetry's environment",
                file=sys.stderr,
            )
            return
        loader = application.command_loader
        for name in found:
            if loader.has(f"{NAMESPACE} {name}"):  # another plugin's: keep it, and say so
                print(f"slimline: `poetry {NAMESPACE} {name}` is taken by another plugin", file=sys.stderr)
                continue
            loader.register_factory(f"{NAMESPACE} {name}", _factory(application, name))


def _factory(application: Application, name: str) -> Callable[[], Command]:
    def make() -> Command:
        from slimline.cli import poetry_command

        return poetry_command.command(name, application=application)

    return make
