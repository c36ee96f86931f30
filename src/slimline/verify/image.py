"""``slimline verify``: an image's contents checked against where they came from.

Contract of :func:`verify`: for each platform, the image ``ref`` names is read through
:mod:`slimline.oci.transports` (its blobs verified against their digests as they come in),
its layers streamed once (:mod:`slimline.verify.scan`), and every regular file of its final
file system accounted for, in this order: a Debian package's record
(:mod:`slimline.verify.debian`), bytecode of an accounted source
(:mod:`slimline.verify.bytecode`), a RECORD row of a distribution in the venv
(:mod:`slimline.verify.python`), the project's app files (:mod:`slimline.verify.lock`), a file
slimline's base assembly generates.  With ``project``, the distributions are checked against its
``poetry.lock`` and the app files against its files; with ``key``, the image's signature
(``check_signature``, given by the caller).  Any problem raises
:class:`~slimline.errors.NotVerified` listing them all; else the lines to print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from slimline.cache.store import Cache
from slimline.context import Context
from slimline.errors import NotVerified, SlimlineError
from slimline.layers.filetree import Kind
from slimline.oci import transports
from slimline.oci.image import Image, Platform
from slimline.oci.reference import Ref
from slimline.sign import cosign
from slimline.sign.keys import PublicKey
from slimline.verify import bytecode, debian, lock, python
from slimline.verify.findings import Findings, Problem
from slimline.verify.scan import Scan, scan

__all__ = ["check_image", "signature_check", "verify"]

SignatureCheck = Callable[[Ref, Image, Context], list[str]]  # lines of what it checked; raises on failure


def signature_check(key: PublicKey) -> SignatureCheck:
    """The check of an image's cosign signature with ``key`` (:func:`slimline.sign.cosign.check`)."""

    def check(ref: Ref, image: Image, ctx: Context) -> list[str]:
        return [cosign.check(ref, image.origin or image.digest, key, ctx=ctx)]

    return check


def verify(
    ref: Ref,
    *,
    platforms: Sequence[Platform],
    ctx: Context,
    project: Path | None = None,
    skip_base: bool = False,
    check_signature: SignatureCheck | None = None,
) -> list[str]:
    reader = transports.TRANSPORTS.get(type(ref))
    if reader is None or reader.read is None:
        raise SlimlineError(
            f"{ref} cannot be read back",
            doing=f"verifying {ref}",
            hint="verify an oci:, docker-archive: or registry image",
        )
    lines: list[str] = []
    problems: list[str] = []
    for platform in platforms:
        ctx.report.step(f"reading {ref} ({platform})")
        image = transports.read(ref, platform=platform, ctx=ctx)
        digest = image.origin or image.digest
        if check_signature is not None:
            try:
                lines += check_signature(ref, image, ctx)
            except NotVerified as err:
                problems += [f"{platform}: {p}" for p in err.problems]
        ctx.report.step(f"checking the files of {digest} ({len(image.layers)} layers)")
        found = check_image(image, project=project, skip_base=skip_base, cache=ctx.cache)
        problems += [f"{platform}: {p}" for p in found.problems]
        lines.append(f"{ref} ({platform}) {digest}: {sum(found.counts.values())} files accounted for")
        lines += [f"  {n} {how}" for how, n in sorted(found.counts.items())]
        lines += [f"  {n} {how}" for how, n in sorted(found.dists.items())]
        lines += [f"  note: {note}" for note in found.notes]
    if problems:
        raise NotVerified(problems, doing=f"verifying {ref}")
    return [*lines, f"verified {ref}"]


def check_image(
    image: Image, *, project: Path | None = None, skip_base: bool = False, cache: Cache | None = None
) -> Findings:
    """Every regular file of ``image`` accounted for or reported (see the module contract)."""
    s = scan(image)
    found = Findings()
    prefix = python.venv_prefix(image)
    dists = python.check_venv(s, prefix, found) if prefix is not None else []
    recorded = debian.records(s)
    debian.check_missing(s, recorded, found)
    owners = {path: dist.label for dist in dists for path in dist.rows}
    owners.update({path: pkgs[0][0] for path, pkgs in recorded.items()})
    if not recorded and not skip_base and _base_files(s):
        found.problems.append(
            Problem(
                "var/lib/dpkg/status.d",
                f"the base records no file hashes (it was not assembled by slimline from Debian "
                f"packages): its {len(_base_files(s))} files cannot be checked (--skip-base checks the rest)",
            )
        )
    app: list[str] = []
    for path in sorted(s.files):
        entry = s.files[path]
        if entry.kind not in (Kind.FILE, Kind.HARDLINK) or path in found.accounted:
            continue
        _account(s, path, entry.layer, found, recorded=recorded, owners=owners, prefix=prefix, app=app)
    lock.check_app_files(s, app, project, found)
    if project is not None:
        lock.check_lock(project, dists, found, cache=cache)
    return found


def _account(
    s: Scan,
    path: str,
    layer: int,
    found: Findings,
    *,
    recorded: dict[str, list[tuple[str, str]]],
    owners: dict[str, str],
    prefix: str | None,
    app: list[str],
) -> None:
    made_by = s.created_by[layer] if 0 <= layer < len(s.created_by) else ""
    in_base = not made_by.startswith("slimline: ")
    if path in recorded:
        debian.check_file(s, path, recorded[path], found)
    elif bytecode.check(s, path, owners, found):
        pass
    elif prefix is not None and path.startswith(prefix + "/"):
        found.problem(path, "in the venv, but listed in no distribution's RECORD")
    elif made_by.startswith("slimline: app files"):
        app.append(path)
    elif in_base and not recorded:
        found.account(path, "base files (unchecked: the base has no file records)")
    elif in_base and debian.check_generated(s, path, found):
        pass
    elif in_base:
        found.problem(path, "in the base, but no Debian package owns it and slimline does not write it")
    else:
        found.problem(path, f"outside the venv, in a layer ({made_by}) that writes only the venv")


def _base_files(s: Scan) -> list[str]:
    return [
        p
        for p, e in s.files.items()
        if e.kind is Kind.FILE
        and not (s.created_by[e.layer] if 0 <= e.layer < len(s.created_by) else "").startswith("slimline: ")
    ]
