"""Command line: argument parsing and wiring only.

    slimline build [PROJECT_DIR] [--base REF] [--platform P]... [--to REF]... [options]
    slimline base REF [--platform P]... [--to REF]...
    slimline login|logout REGISTRY
    slimline cache info|prune
    poetry image build|base|login|logout|cache ...   (slimline installed into Poetry's environment)

Exit status: 0 on success, 1 for a :class:`~slimline.errors.SlimlineError` (its message on
stderr) or an :class:`OSError` no stage explained (what it means and on which path; its
traceback too with ``-v``), 2 for bad usage, 130 when interrupted.  The image digest (or, for a
registry, ``NAME@sha256:...``) is the only thing written to stdout, one line per output.

Modules: ``main`` (the entry point and the command table), ``options`` (shared options and
argument types), one per command: ``build``, ``base``, ``login`` (also logout), ``cache``; the
Poetry plugin: ``poetry_plugin`` (the entry point Poetry loads at every start: it imports only
the command table and registers ``poetry image NAME`` for each command) and ``poetry_command``
(a command's argparse table as a Poetry command; Poetry's verbosity, project and credentials).
"""

from __future__ import annotations

from slimline.cli.main import main

__all__ = ["main"]
