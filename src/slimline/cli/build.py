"""``slimline build``: the project into an image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimline.cli.options import argv_list, common, key_value, split
from slimline.context import Context

__all__ = ["NAMES", "add", "run"]

NAMES = ("build",)
_NOT_IN_IMAGE = ("quiet", "verbose", "cache_dir", "to", "load", "cache_repo", "cache_repo_readonly")


def add(sub: Any) -> None:
    b = sub.add_parser("build", help="build the project into an image")
    b.add_argument("project", nargs="?", default=".", type=Path, help="project directory (default: .)")
    b.add_argument(
        "--base",
        help="base image: debian:SUITE[/pythonX.Y], oci:PATH[:TAG], docker-archive:PATH, "
        "or a registry name (default: the Debian suite matching requires-python)",
    )
    b.add_argument(
        "--with",
        dest="with_",
        action="append",
        default=None,
        metavar="GROUP",
        help="also install this dependency group (repeatable, or comma-separated)",
    )
    b.add_argument("--without", action="append", default=None, metavar="GROUP", help="leave out this group")
    b.add_argument("--only", action="append", default=None, metavar="GROUP", help="install only these groups")
    b.add_argument(
        "-E", "--extras", action="append", default=None, metavar="EXTRA", help="install this extra"
    )
    b.add_argument("--all-extras", action="store_true", default=None, help="install all extras")
    b.add_argument("--user", help="user the image runs as (default: the base's non-root user)")
    b.add_argument("--entrypoint", help="entrypoint, as a JSON list or a shell-quoted string")
    b.add_argument("--cmd", help="default arguments, as a JSON list or a shell-quoted string")
    b.add_argument("--tag", help="image name[:tag] recorded in outputs (default: PROJECT:VERSION)")
    b.add_argument(
        "--label",
        action="append",
        type=key_value,
        default=None,
        metavar="KEY=VALUE",
        help="image label, added to the labels setting (repeatable)",
    )
    b.add_argument(
        "--env",
        action="append",
        type=key_value,
        default=None,
        metavar="NAME=VALUE",
        help="environment variable of the image, added to the env setting (repeatable)",
    )
    b.add_argument(
        "--bytecode",
        action="store_true",
        default=None,
        help="ship .pyc files compiled ahead of time by the image's own Python (or, for other bases, "
        "by slimline's when it is the image's X.Y)",
    )
    b.add_argument("--compression", choices=["gzip", "zstd"], help="layer compression (default gzip)")
    b.add_argument(
        "--build-from-source",
        action="append",
        default=None,
        metavar="PACKAGE",
        help="let slimline build PACKAGE from source where the named base has no wheel for it but "
        "another Debian suite has (repeatable, or comma-separated; :all: for every package)",
    )
    _shared_cache_options(b)
    common(b)


def _shared_cache_options(b: Any) -> None:
    b.add_argument(
        "--cache-repo",
        metavar="REGISTRY/REPOSITORY",
        help="a registry repository holding a build cache shared by many machines "
        "(default: the cache-repo setting, else $SLIMLINE_CACHE_REPO)",
    )
    b.add_argument(
        "--cache-repo-readonly",
        action="store_true",
        default=None,
        help="use the shared cache without writing to it (for untrusted jobs)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("base", args.base),
        ("platforms", args.platform),
        ("with", split(args.with_)),
        ("without", split(args.without)),
        ("only", split(args.only)),
        ("extras", split(args.extras)),
        ("all-extras", args.all_extras),
        ("user", args.user),
        ("entrypoint", argv_list(args.entrypoint)),
        ("cmd", argv_list(args.cmd)),
        ("tag", args.tag),
        ("compression", args.compression),
        ("bytecode", args.bytecode),
        ("build-from-source", split(args.build_from_source)),
        ("labels", dict(args.label) if args.label else None),
        ("env", dict(args.env) if args.env else None),
        ("cache-repo", args.cache_repo),
        ("cache-repo-readonly", args.cache_repo_readonly),
    ):
        if value is not None:
            out[key] = value
    return out


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.build import conductor

    request = conductor.Request(
        root=args.project.resolve(),
        overrides=_overrides(args),
        outputs=tuple(args.to or ()),
        load=args.load,
        refresh=args.refresh,
        # outputs do not change the images: they only name them (--to, --load); nor does a cache
        command={k: v for k, v in vars(args).items() if k not in _NOT_IN_IMAGE},
    )
    return conductor.build(request, ctx)
