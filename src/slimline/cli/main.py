"""The entry point: parse, run one command module, turn errors into exit statuses.

Each command is a module of this package with ``NAMES`` (its subcommand names), ``add(sub)``
(its argparse table) and ``run(args, ctx=) -> list[str]`` (the lines for stdout); an optional
``LOCKS_CACHE = False`` runs it without the cache's shared lock.  Adding a command is a module
and a line in :data:`COMMANDS`.

Exit statuses (:class:`slimline.errors.ExitStatus`, the README's table): 0 done; 2 usage
(argparse); a :class:`SlimlineError`'s ``exit_status`` (input 3, network 4, build 5,
verification 6, else 1); 1 for an ``OSError`` no stage explained; 130 when interrupted.
On failure nothing is printed on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TextIO

# Only light modules here: `slimline build` starts the project's wheel before loading the rest.
from slimline import __version__
from slimline.cache.store import Cache, check_writable
from slimline.context import Context, SourceAuth
from slimline.errors import ExitStatus, SlimlineError, describe_os_error, os_hint
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


INTERRUPT_GRACE = 2.0  # seconds the stages get to unwind after Ctrl-C before the process ends
_INTERRUPTED = "slimline: interrupted; outputs were left as they were"


def _on_interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: unwind as usual (KeyboardInterrupt), but end the process after
    :data:`INTERRUPT_GRACE` seconds if a worker thread still waits on the network.  Outputs and
    cache entries are written atomically, so ending there is as safe as a kill."""

    def end() -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h")  # the cursor a live progress display hid
        print(_INTERRUPTED, file=sys.stderr, flush=True)
        os._exit(int(ExitStatus.INTERRUPTED))

    timer = threading.Timer(INTERRUPT_GRACE, end)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def _handle_interrupts() -> Callable[[], None]:
    """Install :func:`_on_interrupt` (in the main thread, over Python's default); returns what
    puts the previous handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return lambda: None
    signal.signal(signal.SIGINT, _on_interrupt)

    def restore() -> None:
        signal.signal(signal.SIGINT, previous)

    return restore


def main(
    argv: Sequence[str] | None = None, *, prog: str = "slimline", credentials: Sequence[SourceAuth] = ()
) -> int:
    """Run one command; ``credentials`` are handed to it in memory (the Poetry plugin's: Poetry's own)."""
    # --insecure-registry is the user's explicit choice; do not repeat urllib3's warning per request
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    args = _parser(prog).parse_args(argv)
    restore = _handle_interrupts()
    report = _reporter(args)
    previous = _warnings_to(report)
    try:
        return _main(args, report, tuple(credentials))
    finally:
        warnings.showwarning = previous
        restore()


def _reporter(args: argparse.Namespace) -> Reporter:
    """Nothing with -q; on a terminal, lines and progress bars (rich, loaded only then); else lines."""
    if args.quiet:
        return Quiet()
    if sys.stderr.isatty() and os.environ.get("TERM", "") not in ("dumb", "unknown"):
        from slimline.cli.terminal import Terminal

        return Terminal(verbose=args.verbose, stream=sys.stderr)
    return Stderr(verbose=args.verbose)


def _close(report: Reporter) -> None:
    """End a live display (progress bars) before anything else is printed."""
    close = getattr(report, "close", None)
    if close is not None:
        close()


def _main(args: argparse.Namespace, report: Reporter, credentials: tuple[SourceAuth, ...] = ()) -> int:
    cache = Cache(args.cache_dir) if args.cache_dir else Cache.default()
    insecure = tuple(getattr(args, "insecure_registry", ()))
    ctx = Context(cache, report, insecure=insecure, credentials=credentials)
    try:
        check_writable(cache.root)
        command = _command(args.command)
        try:
            if not getattr(command, "LOCKS_CACHE", True):
                lines = command.run(args, ctx=ctx)
            else:
                with cache.lock():  # shared: pruning waits until no build uses the cache
                    lines = command.run(args, ctx=ctx)
        finally:
            _close(report)
        for line in lines:
            print(line, flush=True)
    except SlimlineError as err:
        print(f"slimline: error: {err}", file=sys.stderr)
        return int(err.exit_status)
    except OSError as err:  # the last resort: one the stage meeting it did not explain
        hint = os_hint(err)
        print(
            f"slimline: error: {describe_os_error(err)}" + (f"\n  hint: {hint}" if hint else ""),
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exception(err)
        return int(ExitStatus.ERROR)
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr, flush=True)
        return int(ExitStatus.INTERRUPTED)
    return int(ExitStatus.OK)


if __name__ == "__main__":
    raise SystemExit(main())
