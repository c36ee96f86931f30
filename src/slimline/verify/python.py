"""The virtual environment checked against its distributions' RECORDs.

Contract of :func:`check_venv`: every regular file under the venv's prefix is accounted for by
one of: a RECORD row of a distribution in ``site-packages`` whose sha256 (urlsafe base64, as
wheels write it) and size match the file's (a row naming a path outside the venv is a problem
and accounts for nothing); the RECORD itself; ``pyvenv.cfg`` equal to what
:func:`slimline.trees.venv.venv_tree` makes for the image's target (when its labels name one);
bytecode (:mod:`slimline.verify.bytecode`); slim mode's ``SLIMLINE-DROPPED`` when its rows
are the RECORD's own.  A file no rule explains, a mismatch, or a file a RECORD lists that the
image lacks (and slim mode's list does not) is a problem naming the file and its distribution.  The
venv's ``bin/python*`` links must point where the skeleton's do.
"""

from __future__ import annotations

import base64
import csv
import io
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from slimline.errors import SlimlineError
from slimline.layers.filetree import Kind
from slimline.oci.image import Image
from slimline.target import LABEL_INTERPRETER, LABEL_LIBC, LABEL_PYTHON, Target
from slimline.trees import artifactrecord
from slimline.trees.slim import DROPPED
from slimline.trees.venv import VenvLayout, venv_tree
from slimline.verify.findings import Findings
from slimline.verify.scan import Scan

__all__ = ["Dist", "check_venv", "dists", "target_of", "venv_prefix"]


@dataclass(frozen=True, slots=True)
class Dist:
    name: str  # as the dist-info directory spells it ("hello_app")
    version: str
    dist_info: str  # its path in the image, without a leading "/"
    rows: dict[str, tuple[str, int | None]]  # image path -> (RECORD hash field, size)
    artifact: artifactrecord.Recorded | None  # the locked artifact it says it came from
    # slim mode's list of the RECORD rows it left out (trees.slim.DROPPED), when there is one
    dropped: dict[str, tuple[str, int | None]] | None = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def venv_prefix(image: Image) -> str | None:
    """The venv's prefix without a leading "/" ("app/.venv"), from ``VIRTUAL_ENV``; None without one."""
    value = image.config.env_map().get("VIRTUAL_ENV", "")
    return value.strip("/") or None


def target_of(image: Image) -> Target | None:
    """The target slimline's labels describe, or None when the image lacks them."""
    labels = image.config.labels
    try:
        py = tuple(int(p) for p in labels[LABEL_PYTHON].split("."))
        libc, _, version = labels[LABEL_LIBC].partition("-")
        major, minor = (int(p) for p in version.split(".")[:2])
        return Target(
            platform=image.platform,
            python_version=(py[0], py[1], py[2]),
            interpreter=labels[LABEL_INTERPRETER],
            libc=libc,  # type: ignore[arg-type]
            libc_version=(major, minor),
        )
    except (KeyError, ValueError, IndexError):
        return None


def dists(s: Scan, site_packages: str) -> Iterator[Dist]:
    """Every distribution whose dist-info is directly in ``site_packages``, with its RECORD read."""
    for path in sorted(s.files):
        folder, _, name = path.rpartition("/")
        if (
            name != "RECORD"
            or posixpath.dirname(folder) != site_packages
            or not folder.endswith(".dist-info")
        ):
            continue
        stem = posixpath.basename(folder).removesuffix(".dist-info")
        dist_name, _, version = stem.rpartition("-")
        data = s.data(path)
        if data is None:
            raise SlimlineError(f"/{path} is too large to read", doing="verifying the venv")
        record = s.data(f"{folder}/{artifactrecord.FILENAME}")
        dropped = s.data(f"{folder}/{DROPPED}")
        yield Dist(
            name=dist_name,
            version=version,
            dist_info=folder,
            rows=_rows(data, site_packages),
            artifact=artifactrecord.parse(record) if record is not None else None,
            dropped=_rows(dropped, site_packages) if dropped is not None else None,
        )


def _rows(data: bytes, site_packages: str) -> dict[str, tuple[str, int | None]]:
    rows: dict[str, tuple[str, int | None]] = {}
    text = data.decode("utf-8", errors="replace")
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0]:
            continue
        path = posixpath.normpath(posixpath.join(site_packages, row[0]))
        size = int(row[2]) if len(row) > 2 and row[2].isdigit() else None
        rows[path] = (row[1] if len(row) > 1 else "", size)
    return rows


def check_venv(s: Scan, prefix: str, found: Findings) -> list[Dist]:
    """Check the venv at ``prefix`` (see the module contract); returns its distributions."""
    target = target_of(s.image)
    xy = target.python_xy if target is not None else _python_xy(s, prefix)
    if xy is None:
        found.notes.append(f"no lib/pythonX.Y/site-packages under /{prefix}: no distribution to check")
        return []
    site = f"{prefix}/lib/python{xy}/site-packages"
    all_dists = list(dists(s, site))
    for dist in all_dists:
        _check_dist(s, dist, prefix, found)
    if target is not None:
        _check_skeleton(s, target, prefix, found)
    return all_dists


def _python_xy(s: Scan, prefix: str) -> str | None:
    for path in s.files:
        head = f"{prefix}/lib/python"
        if path.startswith(head) and path.endswith("/site-packages"):
            return path[len(head) :].partition("/")[0]
    return None


def _check_dist(s: Scan, dist: Dist, prefix: str, found: Findings) -> None:
    left_out = dist.dropped or {}
    if dist.dropped is not None:  # slim mode's list: its rows must be the RECORD's own
        listing = f"{dist.dist_info}/{DROPPED}"
        if all(dist.rows.get(path) == row for path, row in left_out.items()):
            found.account(listing, "lists of the files slim mode left out")
        else:
            found.problem(listing, "lists files its RECORD does not (or with other hashes)", dist.label)
    for path, (hash_field, size) in dist.rows.items():
        if not path.startswith(prefix + "/"):
            found.problem(f"{dist.dist_info}/RECORD", f"lists /{path}, outside the venv", dist.label)
            continue
        entry = s.files.get(path)
        digest = s.digest(path)
        if entry is None or entry.kind not in (Kind.FILE, Kind.HARDLINK) or digest is None:
            if path.endswith(".pyc") and entry is None:
                continue  # bytecode a RECORD lists but the image does not hold: harmless
            if entry is None and path in left_out:
                continue  # left out by slim mode, and listed as such
            found.problem(path, "listed in RECORD but missing from the image", dist.label)
            continue
        if not hash_field:
            if path == f"{dist.dist_info}/RECORD":
                found.account(path, "RECORD files")
            else:
                found.problem(path, "its RECORD row has no hash", dist.label)
            continue
        algorithm, _, value = hash_field.partition("=")
        got = base64.urlsafe_b64encode(bytes.fromhex(digest.sha256)).decode().rstrip("=")
        if algorithm != "sha256" or value != got or (size is not None and size != digest.size):
            found.problem(
                path,
                f"differs from its RECORD row (expected {hash_field}, {size} bytes; "
                f"got sha256={got}, {digest.size} bytes)",
                dist.label,
            )
        else:
            found.account(path, "files matching a RECORD")


def _check_skeleton(s: Scan, target: Target, prefix: str, found: Findings) -> None:
    """pyvenv.cfg and the interpreter links, against the skeleton slimline makes for ``target``."""
    try:
        layout = VenvLayout.of(target, "/" + prefix)
    except SlimlineError as err:
        found.notes.append(f"the venv prefix /{prefix} is not one slimline makes: {err.problem}")
        return
    skeleton = venv_tree(target, prefix=layout.prefix)
    for expected in skeleton.entries():
        got = s.files.get(expected.path)
        if expected.kind is Kind.FILE and expected.source is not None:
            with expected.source.open() as f:
                want = f.read()
            if got is None or got.data != want:
                found.problem(expected.path, "differs from the pyvenv.cfg slimline writes for this image")
            else:
                found.account(expected.path, "files slimline generates")
        elif expected.kind is Kind.SYMLINK and (got is None or got.target != expected.target):
            found.problem(expected.path, f"should be a symlink to {expected.target}")
