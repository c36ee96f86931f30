"""``slimline cache info|prune``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from slimline.cli.options import size
from slimline.context import Context
from slimline.errors import UsageError

__all__ = ["LOCKS_CACHE", "NAMES", "add", "run"]

NAMES = ("cache",)
LOCKS_CACHE = False  # prune takes the cache's exclusive lock itself


def add(sub: Any) -> None:
    c = sub.add_parser("cache", help="show or prune slimline's cache")
    c.add_argument(
        "action", choices=["info", "prune"], help="info: what it holds; prune: remove what went unused"
    )
    c.add_argument(
        "--older-than",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="prune: remove what no build used for this many days (default 30; 0 removes everything)",
    )
    c.add_argument(
        "--max-size",
        type=size,
        metavar="SIZE",
        help="prune: then remove the least recently used until the cache holds at most SIZE (e.g. 5G, 500M)",
    )
    c.add_argument("--dry-run", action="store_true", help="prune: say what would go, remove nothing")
    c.add_argument("-q", "--quiet", action="store_true")
    c.add_argument("-v", "--verbose", action="store_true")
    c.add_argument(
        "--cache-dir", type=Path, help="cache directory (default: $SLIMLINE_CACHE_DIR or the user cache)"
    )


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.cache import retention

    cache = ctx.cache

    def mib(n: int) -> str:
        return f"{n / (1 << 20):.1f} MiB"

    if args.action == "info":
        found = retention.survey(cache)
        lines = [f"cache {found.root}: {mib(found.size)}"]
        lines += [f"  {a.name}: {a.entries} ({mib(a.size)})" for a in found.areas]
        if found.oldest_use is not None:
            days = (time.time() - found.oldest_use) / retention.DAY
            lines.append(f"  least recently used entry: {days:.1f} days ago")
        return lines
    if args.older_than < 0:
        raise UsageError("--older-than must be 0 or more days", doing="pruning the cache")
    done = retention.prune(
        cache, older_than=args.older_than * retention.DAY, max_size=args.max_size, dry_run=args.dry_run
    )
    verb = "would remove" if done.dry_run else "removed"
    return [
        f"{verb} {done.files} blobs and wheels, {done.environments} build environments, "
        f"{done.bases} unpacked bases and {done.metadata} metadata files: {mib(done.freed)}; "
        f"{mib(done.left)} left in {cache.root}"
    ]
