"""How ``build`` and ``base`` show their result on stdout: one line per output, or with
``--json`` one JSON document (``docs/build-result.schema.json``)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slimline.context import Context
from slimline.report import Collect

if TYPE_CHECKING:
    from slimline.build.result import Result

__all__ = ["add_json", "dumps", "shown"]


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout at the end instead of the digests "
        "(schema: docs/build-result.schema.json)",
    )


def shown(args: argparse.Namespace, ctx: Context, run: Callable[[Context], Result]) -> list[str]:
    """``run`` the command; its lines for stdout (with ``--json``, one JSON document)."""
    if not getattr(args, "json", False):
        return run(ctx).lines
    started = time.perf_counter()
    collect = Collect(ctx.report)
    result = run(ctx.with_report(collect))
    return [dumps(result.to_json(warnings=collect.warnings, total=time.perf_counter() - started))]


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False)
