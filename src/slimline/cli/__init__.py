"""Command line: argument parsing and wiring only.

    slimline build [PROJECT_DIR] [--base REF] [--platform P]... [--to REF]... [options]
    slimline base REF [--platform P]... [--to REF]...
    slimline inspect REF [--platform P]... [--json] [--html FILE]
    slimline diff A B [--platform P] [--json]
    slimline verify REF [--key PUB] [--project DIR] [--platform P]...
    slimline login|logout REGISTRY
    slimline cache info|prune
    poetry image build|base|inspect|diff|verify|login|logout|cache ...   (slimline inside Poetry)

Exit status (:class:`~slimline.errors.ExitStatus`): 0 on success, 2 for bad usage, 130 when
interrupted, else the ``exit_status`` of the :class:`~slimline.errors.SlimlineError` (its
message on stderr: input 3, network 4, build 5, verification 6, other 1), or 1 for an
:class:`OSError` no stage explained (what it means and on which path; its traceback too with
``-v``).  The image digest (or, for a registry, ``NAME@sha256:...``) is the only thing build and
base write to stdout, one line per output (with ``--json``, one JSON document instead); inspect,
diff and verify write their report there.

Modules: ``main`` (the entry point and the command table), ``options`` (shared options and
argument types), ``results`` (lines or the ``--json`` document), ``terminal`` (the reporter
with progress bars, when stderr is a terminal), one per command: ``build``, ``base``,
``inspect``, ``diff``, ``verify``, ``login`` (also logout), ``cache``; the Poetry plugin:
``poetry_plugin`` (the entry point Poetry loads at every start: it imports only the command
table and registers ``poetry image NAME`` for each command) and ``poetry_command`` (a command's
argparse table as a Poetry command; Poetry's verbosity, project and credentials).
"""

from __future__ import annotations

from slimline.cli.main import main

__all__ = ["main"]
