"""The entry point: parse, run one command module, turn errors into exit statuses.

Each command is a module of this package with ``NAMES`` (its subcommand names), ``add(sub)``
(its argparse table) and ``run(args, ctx=) -> list[str]`` (the lines for stdout); an optional
``LOCKS_CACHE = False`` runs it without the cache's shared lock.  Adding a command is a module
and a line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TextIO

# Only light modules here: `slimline build` starts the project's wheel before loading the rest.
from slimline import __version__
from slimline.cache.store import Cache, check_writable
from slimline.context import Context, SourceAuth
from slimline.errors import SlimlineError, describe_os_error, os_hint
from slimline.report import Quiet, Reporter, Stderr

__all__ = ["COMMANDS", "main", "names", "parser"]

# modules of slimline.cli, in --help's order
COMMANDS = ("build", "base", "inspect", "diff", "verify", "login", "cache")


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"slimline.cli.{name}") for name in COMMANDS]


def _command(name: str) -> ModuleType:
    return next(m for m in _modules() if name in m.NAMES)


def names() -> list[str]:
    """Every command's name (aliases too), in --help's order."""
    return [name for module in _modules() for name in module.NAMES]


def parser(prog: str = "slimline") -> argparse.ArgumentParser:
    """The command line's parser; each command's table is ``parser().<subparsers>.choices[NAME]``."""
    return _parser(prog)


def _parser(prog: str = "slimline") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Build OCI images from Poetry projects, without a container engine."
    )
    p.add_argument("--version", action="version", version=f"slimline {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in _modules():
        module.add(sub)
    return p


def _warnings_to(report: Reporter) -> Callable[..., None]:
    """Route Python warnings (slimline's, and those of build, installer, urllib3 ... that name the
    caller's file) to ``report`` as details, shown with -v, without file or line: a user sees
    what happened, never a source path.  Returns the previous ``warnings.showwarning``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        report.detail(f"warning: {category.__name__}: {message}")

    previous = warnings.showwarning
    warnings.showwarning = show
    return previous


def main(
    argv: Sequence[str] | None = None, *, prog: str = "slimline", credentials: Sequence[SourceAuth] = ()
) -> int:
    """Run one command; ``credentials`` are handed to it in memory (the Poetry plugin's: Poetry's own)."""
    # --insecure-registry is the user's explicit choice; do not repeat urllib3's warning per request
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    args = _parser(prog).parse_args(argv)
    report: Reporter = Quiet() if args.quiet else Stderr(verbose=args.verbose)
    previous = _warnings_to(report)
    try:
        return _main(args, report, tuple(credentials))
    finally:
        warnings.showwarning = previous


def _main(args: argparse.Namespace, report: Reporter, credentials: tuple[SourceAuth, ...] = ()) -> int:
    cache = Cache(args.cache_dir) if args.cache_dir else Cache.default()
    insecure = tuple(getattr(args, "insecure_registry", ()))
    ctx = Context(cache, report, insecure=insecure, credentials=credentials)
    try:
        check_writable(cache.root)
        command = _command(args.command)
        if not getattr(command, "LOCKS_CACHE", True):
            lines = command.run(args, ctx=ctx)
        else:
            with cache.lock():  # shared: pruning waits until no build uses the cache
                lines = command.run(args, ctx=ctx)
        for line in lines:
            print(line, flush=True)
    except SlimlineError as err:
        print(f"slimline: error: {err}", file=sys.stderr)
        return int(getattr(err, "exit_status", 1))  # VerificationFailed: 3
    except OSError as err:  # the last resort: one the stage meeting it did not explain
        hint = os_hint(err)
        print(
            f"slimline: error: {describe_os_error(err)}" + (f"\n  hint: {hint}" if hint else ""),
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exception(err)
        return 1
    except KeyboardInterrupt:
        print("slimline: interrupted; outputs were left as they were", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
