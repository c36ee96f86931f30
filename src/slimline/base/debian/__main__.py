"""Manual check: ``python -m slimline.base.debian debian:bookworm [--platform linux/arm64] [--build]``.

Prints the resolved package set and what was left out; with ``--build`` also assembles the base
and prints its digest.  Not the product's command line (that is ``slimline``).
"""

from __future__ import annotations

import argparse
import sys

from slimline.base.debian.base import BaseSettings, DebianRef, build, resolve
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import SlimlineError
from slimline.oci.image import Platform
from slimline.report import Stderr


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m slimline.base.debian")
    ap.add_argument("ref", help="debian:SUITE[/pythonX.Y]")
    ap.add_argument("--platform", default="linux/amd64")
    ap.add_argument("--package", action="append", default=[], help="extra package (repeatable)")
    ap.add_argument("--build", action="store_true")
    args = ap.parse_args()

    try:
        ref, platform = DebianRef.parse(args.ref), Platform.parse(args.platform)
        settings = BaseSettings(packages=tuple(args.package))
        ctx = Context(Cache.default(), Stderr(verbose=True))
        base = resolve(ref, platform=platform, settings=settings, ctx=ctx)
        for p in base.resolution.packages:
            print(f"{p.name} {p.version} {p.architecture} ({p.installed_size} KiB)")
        if args.build:
            image, target, _ = build(ref, platform=platform, settings=settings, ctx=ctx)
            print(f"{image.digest} {target}")
    except SlimlineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
