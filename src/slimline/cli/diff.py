"""``slimline diff A B``: what changed from image A to image B."""

from __future__ import annotations

import argparse
from typing import Any

from slimline.cli.options import reading
from slimline.context import Context

__all__ = ["NAMES", "add", "run"]

NAMES = ("diff",)


def add(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="compare two images: packages, layers, files, sizes",
        description="Compare image B with image A: Python distributions and Debian packages added, removed "
        "or changed, layers reused or new, files added, removed or modified (by size and content), and the "
        "size delta per layer and in total.",
    )
    p.add_argument("a", help="the image before (any reference inspect reads)")
    p.add_argument("b", help="the image after")
    p.add_argument(
        "--platform", metavar="OS/ARCH", help="which image of multi-platform indexes (default: the host's)"
    )
    reading(p)


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.inspect import views

    return views.diff(args.a, args.b, platform=args.platform, as_json=args.json, ctx=ctx)
