"""Command line: argument parsing and wiring only.

    slimline build [PROJECT_DIR] [--base REF] [--platform P]... [--to REF]... [options]
    slimline base REF [--platform P]... [--to REF]...

Exit status: 0 on success, 1 for a :class:`~slimline.errors.SlimlineError` (its message on
stderr) or an :class:`OSError` no stage explained (what it means and on which path; its
traceback too with ``-v``), 2 for bad usage, 130 when interrupted.  The image digest (or, for a registry,
``NAME@sha256:...``) is the only thing written to stdout, one line per output.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

# Only light modules here: `slimline build` starts the project's wheel before loading the rest.
from slimline import __version__
from slimline.cache.store import Cache, check_writable
from slimline.context import Context
from slimline.errors import SlimlineError, describe_os_error, os_hint
from slimline.report import Quiet, Reporter, Stderr

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slimline", description="Build OCI images from Poetry projects, without a container engine."
    )
    p.add_argument("--version", action="version", version=f"slimline {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

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
        type=_key_value,
        default=None,
        metavar="KEY=VALUE",
        help="image label, added to the labels setting (repeatable)",
    )
    b.add_argument(
        "--env",
        action="append",
        type=_key_value,
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
    _common(b)

    base = sub.add_parser("base", help="write a base image on its own")
    base.add_argument("ref", help="debian:SUITE[/pythonX.Y] (or any base reference)")
    base.add_argument("--mirror", help="Debian mirror URL (default: the host's apt sources)")
    base.add_argument("--package", action="append", default=[], help="extra Debian package (repeatable)")
    _common(base)

    login = sub.add_parser(
        "login", help="check and store credentials for a registry (in podman's/docker's file)"
    )
    login.add_argument("registry", help="registry host[:port], e.g. ghcr.io or 127.0.0.1:5000")
    login.add_argument("-u", "--username", help="user name (asked for when not given)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    login.add_argument("--insecure-registry", action="append", default=[], metavar="HOST")
    logout = sub.add_parser("logout", help="remove a registry's stored credentials")
    logout.add_argument("registry")
    for q in (login, logout):
        q.add_argument("-q", "--quiet", action="store_true")
        q.add_argument("-v", "--verbose", action="store_true")
        q.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)

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
        type=_size,
        metavar="SIZE",
        help="prune: then remove the least recently used until the cache holds at most SIZE (e.g. 5G, 500M)",
    )
    c.add_argument("--dry-run", action="store_true", help="prune: say what would go, remove nothing")
    c.add_argument("-q", "--quiet", action="store_true")
    c.add_argument("-v", "--verbose", action="store_true")
    c.add_argument(
        "--cache-dir", type=Path, help="cache directory (default: $SLIMLINE_CACHE_DIR or the user cache)"
    )
    return p


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
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


def _cmd_cache(args: argparse.Namespace, *, ctx: Context) -> list[str]:
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
        raise SlimlineError("--older-than must be 0 or more days", doing="pruning the cache")
    done = retention.prune(
        cache, older_than=args.older_than * retention.DAY, max_size=args.max_size, dry_run=args.dry_run
    )
    verb = "would remove" if done.dry_run else "removed"
    return [
        f"{verb} {done.files} blobs and wheels, {done.environments} build environments, "
        f"{done.bases} unpacked bases and {done.metadata} metadata files: {mib(done.freed)}; "
        f"{mib(done.left)} left in {cache.root}"
    ]


def _cmd_login(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    import getpass

    from slimline.oci import login

    path = login.auth_file()
    if args.command == "logout":
        removed = login.logout(args.registry, path=path)
        ctx.report.done(
            f"{'removed' if removed else 'there were no'} credentials for {args.registry} in {path}"
        )
        return []
    username = args.username or input("Username: ").strip()
    password = sys.stdin.read().rstrip("\r\n") if args.password_stdin else getpass.getpass("Password: ")
    if not username or not password:
        raise SlimlineError("a user name and a password are needed", doing=f"logging in to {args.registry}")
    login.login(
        args.registry,
        username=username,
        password=password,
        http=ctx.http,
        insecure=args.insecure_registry,
        path=path,
    )
    ctx.report.done(f"logged in to {args.registry}; credentials stored in {path}")
    return []


def _common(p: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP / unverified TLS for this registry host",
    )
    p.add_argument(
        "--refresh", action="store_true", help="re-read the Debian archive even if a pinned base is fresh"
    )
    p.add_argument(
        "--cache-dir", type=Path, help="cache directory (default: $SLIMLINE_CACHE_DIR or the user cache)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    p.add_argument("-v", "--verbose", action="store_true", help="say more about each step")


def _argv_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        value = json.loads(stripped)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SlimlineError(f"{text!r} is not a JSON list of strings", doing="reading the command line")
        return value
    return shlex.split(stripped)


def _key_value(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def _split(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("base", args.base),
        ("platforms", args.platform),
        ("with", _split(args.with_)),
        ("without", _split(args.without)),
        ("only", _split(args.only)),
        ("extras", _split(args.extras)),
        ("all-extras", args.all_extras),
        ("user", args.user),
        ("entrypoint", _argv_list(args.entrypoint)),
        ("cmd", _argv_list(args.cmd)),
        ("tag", args.tag),
        ("compression", args.compression),
        ("bytecode", args.bytecode),
        ("build-from-source", _split(args.build_from_source)),
        ("labels", dict(args.label) if args.label else None),
        ("env", dict(args.env) if args.env else None),
    ):
        if value is not None:
            out[key] = value
    return out


def _cmd_build(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.build import conductor

    request = conductor.Request(
        root=args.project.resolve(),
        overrides=_overrides(args),
        outputs=tuple(args.to or ()),
        load=args.load,
        refresh=args.refresh,
        # outputs do not change the images: they only name them (--to, --load)
        command={
            k: v for k, v in vars(args).items() if k not in ("quiet", "verbose", "cache_dir", "to", "load")
        },
    )
    return conductor.build(request, ctx)


def _cmd_base(args: argparse.Namespace, *, ctx: Context) -> list[str]:
    from slimline.build import conductor

    return conductor.base(
        args.ref,
        platforms=args.platform or ["linux/amd64"],
        packages=args.package,
        mirror=args.mirror,
        outputs=args.to or (),
        refresh=args.refresh,
        ctx=ctx,
    )


def _warnings_to(report: Reporter) -> Callable[..., None]:
    """Route Python warnings (slimline's, and those of build, installer, urllib3 ... that name the
    caller's file) to ``report`` as details, shown with -v, without file or line: a user sees
    what happened, never a source path.  Returns the previous ``warnings.showwarning``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        report.detail(f"warning: {category.__name__}: {message}")

    previous = warnings.showwarning
    warnings.showwarning = show
    return previous


def main(argv: Sequence[str] | None = None) -> int:
    # --insecure-registry is the user's explicit choice; do not repeat urllib3's warning per request
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    args = _parser().parse_args(argv)
    report: Reporter = Quiet() if args.quiet else Stderr(verbose=args.verbose)
    previous = _warnings_to(report)
    try:
        return _main(args, report)
    finally:
        warnings.showwarning = previous


def _main(args: argparse.Namespace, report: Reporter) -> int:
    cache = Cache(args.cache_dir) if args.cache_dir else Cache.default()
    ctx = Context(cache, report, insecure=tuple(getattr(args, "insecure_registry", ())))
    try:
        check_writable(cache.root)
        run = {
            "build": _cmd_build,
            "base": _cmd_base,
            "login": _cmd_login,
            "logout": _cmd_login,
            "cache": _cmd_cache,
        }[args.command]
        if args.command == "cache":
            lines = run(args, ctx=ctx)
        else:
            with cache.lock():  # shared: pruning waits until no build uses the cache
                lines = run(args, ctx=ctx)
        for line in lines:
            print(line, flush=True)
    except SlimlineError as err:
        print(f"slimline: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the last resort: one the stage meeting it did not explain
        hint = os_hint(err)
        print(
            f"slimline: error: {describe_os_error(err)}" + (f"\n  hint: {hint}" if hint else ""),
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exception(err)
        return 1
    except KeyboardInterrupt:
        print("slimline: interrupted; outputs were left as they were", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
