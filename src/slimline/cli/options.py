"""Options and argument types that several commands share."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from slimline.errors import UsageError

__all__ = ["argv_list", "cache_dir", "common", "insecure_registry", "key_value", "reading", "size", "split"]


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--platform",
        action="append",
        default=None,
        metavar="OS/ARCH",
        help="target platform, e.g. linux/amd64 or linux/arm64 (repeatable; default linux/amd64)",
    )
    p.add_argument(
        "--to",
        action="append",
        default=None,
        metavar="REF",
        help="output: oci:PATH[:TAG], docker-archive:PATH[:NAME:TAG], docker://NAME[:TAG], "
        "docker-daemon:NAME:TAG (repeatable)",
    )
    p.add_argument("--load", action="store_true", help="also load the image into podman or docker")
    insecure_registry(p)
    p.add_argument(
        "--refresh", action="store_true", help="re-read the Debian archive even if a pinned base is fresh"
    )
    cache_dir(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    p.add_argument("-v", "--verbose", action="store_true", help="say more about each step")


def reading(p: argparse.ArgumentParser) -> None:
    """The options of commands that only read images (inspect, diff)."""
    insecure_registry(p)
    cache_dir(p)
    p.add_argument("--json", action="store_true", help="print a JSON document (keys: see the README)")
    p.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    p.add_argument("-v", "--verbose", action="store_true", help="say more about each step")


def argv_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        value = json.loads(stripped)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{text!r} is not a JSON list of strings", doing="reading the command line")
        return value
    return shlex.split(stripped)


def key_value(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def split(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(text: str) -> int:
    """``5G``, ``500M``, ``1.5GiB``, ``123`` (bytes) -> bytes (binary units)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    try:
        value = float(raw[: len(raw) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 5G, 500M or 1048576") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return int(value * _UNITS[unit])


def insecure_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP / unverified TLS for this registry host",
    )


def cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir", type=Path, help="cache directory (default: $SLIMLINE_CACHE_DIR or the user cache)"
    )
