"""``slimline verify``: check an image's files against its packages, its lock and its signature.

Exit statuses: 0 verified, 6 verification failed (a file, a distribution or a signature is
not what it should be: :class:`~slimline.errors.VerificationFailed`); any other failure has its
kind's status (:class:`~slimline.errors.ExitStatus`: 2 a bad option, 3 the project or lock
``--project`` names, 4 a registry, 1 anything else such as an image that cannot be read).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimline.cli.options import cache_dir, insecure_registry
from slimline.context import Context
from slimline.errors import ExitStatus, SlimlineError

__all__ = ["NAMES", "add", "run"]

NAMES = ("verify",)


def add(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check an image's files against its packages (and its lock, its signature)",
        description=f"Exit status: {ExitStatus.OK:d} verified, {ExitStatus.VERIFICATION:d} verification "
        f"failed, {ExitStatus.INPUT:d} a project or lock --project cannot use, {ExitStatus.NETWORK:d} a "
        f"registry, {ExitStatus.ERROR:d} other errors.",
    )
    p.add_argument("ref", help="oci:PATH[:TAG], docker-archive:PATH or a registry name")
    p.add_argument(
        "--key", type=Path, metavar="PUB", help="public key (PEM) the image's signature must verify with"
    )
    p.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="check distributions against DIR's lock (poetry.lock, uv.lock or pylock.toml)",
    )
    p.add_argument(
        "--skip-base",
        action="store_true",
        help="accept base files without per-file records (a base slimline did not assemble)",
    )
    p.add_argument(
        "--platform",
        action="append",
        default=None,
        metavar="OS/ARCH",
        help="platform (repeatable; default linux/amd64)",
    )
    insecure_registry(p)
    cache_dir(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    p.add_argument("-v", "--verbose", action="store_true", help="say more about each step")


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.oci.image import Platform
    from slimline.oci.reference import parse
    from slimline.project import locks
    from slimline.verify import image

    try:
        platforms = [Platform.parse(p) for p in args.platform or ["linux/amd64"]]
    except ValueError as err:
        raise SlimlineError(str(err), doing="reading the command line") from err
    if args.project is not None and not locks.candidates(args.project):  # before the image is read
        raise locks.LockChoiceError(
            f"{args.project} has no lock file (poetry.lock, uv.lock or pylock.toml)",
            doing="reading the command line (--project)",
            hint="give the project's directory, the one its image was built from",
        )
    ref = parse(args.ref, role="base")
    check = None
    if args.key is not None:
        from slimline.sign import keys

        check = image.signature_check(keys.load_public(args.key))
    lines = image.verify(
        ref,
        platforms=platforms,
        ctx=ctx,
        project=args.project,
        skip_base=args.skip_base,
        check_signature=check,
    )
    return lines[-1:] if args.quiet else lines
