"""Command line: argument parsing and wiring only.

    slimline build [PROJECT_DIR] [--base REF] [--platform P]... [--to REF]... [options]
    slimline base REF [--platform P]... [--to REF]...
    slimline login|logout REGISTRY
    slimline cache info|prune

Exit status (:class:`~slimline.errors.ExitStatus`): 0 on success, 2 for bad usage, 130 when
interrupted, else the ``exit_status`` of the :class:`~slimline.errors.SlimlineError` (its
message on stderr: input 3, network 4, build 5, verification 6, other 1), or 1 for an
:class:`OSError` no stage explained (what it means and on which path; its traceback too with
``-v``).  The image digest (or, for a registry, ``NAME@sha256:...``) is the only thing written
to stdout, one line per output; with ``--json``, one JSON document instead.

Modules: ``main`` (the entry point and the command table), ``options`` (shared options and
argument types), ``results`` (lines or the ``--json`` document), ``terminal`` (the
reporter with progress bars, when stderr is a terminal), one per command: ``build``,
``base``, ``login`` (also logout), ``cache``.
"""

from __future__ import annotations

from slimline.cli.main import main

__all__ = ["main"]
