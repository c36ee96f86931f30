"""``slimline inspect REF``: what an image holds and where its bytes go."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimline.cli.options import reading
from slimline.context import Context

__all__ = ["NAMES", "add", "run"]

NAMES = ("inspect",)


def add(sub: Any) -> None:
    p = sub.add_parser(
        "inspect",
        help="show an image's config, layers, packages, largest files and wasted bytes",
        description="Read an image (oci:PATH[:TAG], docker-archive:PATH, or a registry name) and show its "
        "config, base, layers, Python distributions, Debian packages, largest files and the bytes later "
        "layers replaced or removed.",
    )
    p.add_argument("ref", help="oci:PATH[:TAG], docker-archive:PATH[:NAME:TAG] or docker://NAME[:TAG]")
    p.add_argument(
        "--platform",
        action="append",
        default=None,
        metavar="OS/ARCH",
        help="which image of a multi-platform index (repeatable; default: the host's, or the only one)",
    )
    p.add_argument(
        "--html", type=Path, metavar="FILE", help="also write a self-contained HTML page with a size map"
    )
    reading(p)


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.inspect import views

    return views.inspect(args.ref, platforms=args.platform, as_json=args.json, html=args.html, ctx=ctx)
