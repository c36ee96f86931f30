"""``slimline build``: the project into an image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimline.cli.options import argv_list, common, key_value, split
from slimline.cli.results import add_json, dumps, shown
from slimline.context import Context

__all__ = ["NAMES", "add", "run"]

NAMES = ("build",)
_NOT_IN_IMAGE = (
    "quiet", "verbose", "cache_dir", "to", "load", "sbom_out", "sign_key", "json", "dry_run",
    "cache_repo", "cache_repo_readonly",
)  # fmt: skip


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
    b.add_argument(
        "--no-stdlib-bytecode",
        dest="stdlib_bytecode",
        action="store_false",
        default=None,
        help="do not ship the debian: base's standard library compiled (a layer of about 2.7 MiB above "
        "the base, shared by every image on it; without it every start compiles what it imports)",
    )
    b.add_argument(
        "--slim",
        action="store_true",
        default=None,
        help="leave out of dependency layers what a running app does not read: test suites, C/C++ "
        "headers and sources, static libraries, docs and examples (see the README; slim-keep keeps paths)",
    )
    b.add_argument(
        "--debug",
        action="store_true",
        default=None,
        help="also write a debug image, tagged TAG-debug: the same image plus busybox (a shell and "
        "tools) under /busybox",
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
    b.add_argument(
        "--lock",
        type=Path,
        metavar="PATH",
        help="the lock file to build from: poetry.lock, uv.lock, pylock.toml or pylock.NAME.toml "
        "(default: the one the project has)",
    )
    _sbom_options(b)
    signing(b)
    _shared_cache_options(b)
    common(b)
    add_json(b)
    b.add_argument(
        "--dry-run",
        action="store_true",
        help="show the plan (base, target, groups, each distribution's artifact, the layers) "
        "without downloading, building or writing anything; with --json as JSON",
    )


def _sbom_options(b: Any) -> None:
    b.add_argument(
        "--no-sbom",
        dest="sbom",
        action="store_false",
        default=None,
        help="attach no SBOM and provenance to the images (the sbom setting)",
    )
    b.add_argument(
        "--sbom-out",
        type=Path,
        metavar="DIR",
        help="also write each image's SBOM and provenance files to DIR",
    )


def signing(b: argparse.ArgumentParser) -> None:
    b.add_argument(
        "--sign-key",
        type=Path,
        metavar="PATH",
        help="sign each image with this ECDSA P-256 or Ed25519 PEM key, as cosign does "
        "(or set SLIMLINE_SIGNING_KEY; passphrase from SLIMLINE_SIGNING_PASSWORD or a prompt)",
    )


def _signing_key(args: argparse.Namespace) -> Any:
    """The key to sign with (read before the build, so a wrong passphrase costs no build), or None."""
    import os

    if args.sign_key is None and not os.environ.get("SLIMLINE_SIGNING_KEY"):
        return None
    from slimline.sign import keys

    return keys.load_private(args.sign_key)


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
        ("debug", args.debug),
        ("slim", args.slim),
        ("stdlib-bytecode", args.stdlib_bytecode),
        ("build-from-source", split(args.build_from_source)),
        ("labels", dict(args.label) if args.label else None),
        ("env", dict(args.env) if args.env else None),
        ("lock", args.lock.resolve() if args.lock else None),  # absolute: see settings._lock
        ("sbom", args.sbom),
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
        # outputs do not change the images: they only name them (--to, --load, --sbom-out); nor
        # do signatures, a shared cache, --json or --dry-run
        command={k: v for k, v in vars(args).items() if k not in _NOT_IN_IMAGE},
        sbom_out=args.sbom_out.resolve() if args.sbom_out is not None else None,
        signing_key=_signing_key(args),
    )
    if args.dry_run:
        planned = conductor.plan(request, ctx)
        return [dumps(planned.to_json())] if args.json else planned.lines()
    return shown(args, ctx, lambda c: conductor.build(request, c))
