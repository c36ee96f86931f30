"""Command line: argument parsing and wiring only.

    slimline build [PROJECT_DIR] [--base REF] [--platform P]... [--to REF]... [options]
    slimline base REF [--platform P]... [--to REF]...
    slimline inspect REF [--platform P]... [--json] [--html FILE]
    slimline diff A B [--platform P] [--json]
    slimline verify REF [--key PUB] [--project DIR] [--platform P]...
    slimline login|logout REGISTRY
    slimline cache info|prune
    poetry image build|base|inspect|diff|verify|login|logout|cache ...   (slimline inside Poetry)

Exit status: 0 on success, 1 for a :class:`~slimline.errors.SlimlineError` (its message on
stderr) or an :class:`OSError` no stage explained (what it means and on which path; its
traceback too with ``-v``), 2 for bad usage, 3 when ``verify`` finds the image is not what it
should be (:class:`~slimline.errors.VerificationFailed`), 130 when interrupted.  The image digest
(or, for a registry, ``NAME@sha256:...``) is the only thing build and base write to stdout, one
line per output; inspect and diff write their report there.

Modules: ``main`` (the entry point and the command table), ``options`` (shared options and
argument types), one per command: ``build``, ``base``, ``inspect``, ``diff``, ``verify``,
``login`` (also logout), ``cache``; the Poetry plugin: ``poetry_plugin`` (the entry point Poetry
loads at every start: it imports only the command table and registers ``poetry image NAME`` for
each command) and ``poetry_command`` (a command's argparse table as a Poetry command; Poetry's
verbosity, project and credentials).
"""

from __future__ import annotations

from slimline.cli.main import main

__all__ = ["main"]
