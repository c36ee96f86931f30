"""``slimline login`` and ``logout``: a registry's credentials, in podman's/docker's file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slimline.context import Context
from slimline.errors import UsageError

__all__ = ["NAMES", "add", "run"]

NAMES = ("login", "logout")


def add(sub: Any) -> None:
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


def run(args: argparse.Namespace, *, ctx: Context) -> list[str]:
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
        raise UsageError("a user name and a password are needed", doing=f"logging in to {args.registry}")
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
