"""``slimline base``: a base image on its own."""

from __future__ import annotations

import argparse
from typing import Any

from slimline.cli.options import common
from slimline.cli.results import add_json, shown
from slimline.context import Context

__all__ = ["NAMES", "add", "run"]

NAMES = ("base",)


def add(sub: Any) -> None:
    base = sub.add_parser("base", help="write a base image on its own")
    base.add_argument("ref", help="debian:SUITE[/pythonX.Y] (or any base reference)")
    base.add_argument("--mirror", help="Debian mirror URL (default: the host's apt sources)")
    base.add_argument("--package", action="append", default=[], help="extra Debian package (repeatable)")
    common(base)
    add_json(base)


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.build import conductor

    return shown(
        args,
        ctx,
        lambda c: conductor.base(
            args.ref,
            platforms=args.platform or ["linux/amd64"],
            packages=args.package,
            mirror=args.mirror,
            outputs=args.to or (),
            refresh=args.refresh,
            ctx=c,
        ),
    )
