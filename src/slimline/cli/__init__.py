"""Command line: argument parsing and wiring only.

    slimline build [PROJECT_DIR] [--base REF] [--platform P]... [--to REF]... [options]
    slimline base REF [--platform P]... [--to REF]...
    slimline verify REF [--key PUB] [--project DIR] [--platform P]...
    slimline login|logout REGISTRY
    slimline cache info|prune

Exit status: 0 on success, 1 for a :class:`~slimline.errors.SlimlineError` (its message on
stderr) or an :class:`OSError` no stage explained (what it means and on which path; its
traceback too with ``-v``), 2 for bad usage, 3 when ``verify`` finds the image is not what it
should be (:class:`~slimline.errors.VerificationFailed`), 130 when interrupted.  The image digest (or, for a
registry, ``NAME@sha256:...``) is the only thing written to stdout, one line per output.

Modules: ``main`` (the entry point and the command table), ``options`` (shared options and
argument types), one per command: ``build``, ``base``, ``verify``, ``login`` (also logout), ``cache``.
"""

from __future__ import annotations

from slimline.cli.main import main

__all__ = ["main"]
