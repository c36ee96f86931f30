"""Hash-pinned requirements for a Poetry project's locked set, made with slimline's own modules.

``requirements(project_dir, target)`` selects, exactly as ``slimline build`` does, the locked
distributions for ``target`` (groups: main; markers evaluated for the target) and writes one
``name==version --hash=sha256:...`` line per distribution with the hash of every file the lock
lists for that version, so pip or uv can install the same set with hash checking.  Local (path,
git, url) dependencies are left out: the bench's example apps have none.

``host_target(python)`` describes an interpreter on this machine as a :class:`Target`, so the
set can be exported for the Python that ``uv`` installs into.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from slimline.oci.image import Platform
from slimline.plan import select
from slimline.project import lockfile
from slimline.project import pyproject as project_mod
from slimline.target import Target

__all__ = ["host_target", "requirements"]

_PROBE = (
    "import json, platform, sys; "
    "print(json.dumps([list(sys.version_info[:3]), platform.machine(), platform.libc_ver()]))"
)


def host_target(python: Path) -> Target:
    """The :class:`Target` of the CPython at ``python`` (glibc Linux only)."""
    out = subprocess.run([str(python), "-c", _PROBE], check=True, capture_output=True, text=True).stdout
    version, machine, (libc, libc_version) = json.loads(out)
    if libc != "glibc":
        raise SystemExit(f"bench: {python} does not run on glibc ({libc!r}); uv's anchor needs glibc")
    major, minor = (int(p) for p in libc_version.split(".")[:2])
    return Target(
        platform=Platform.parse(machine),
        python_version=(version[0], version[1], version[2]),
        interpreter=str(python),
        libc="glibc",
        libc_version=(major, minor),
    )


def requirements(project_dir: Path, target: Target) -> str:
    """The requirements file text (see the module contract)."""
    proj = project_mod.load(project_dir)
    lock = lockfile.load(project_dir / "poetry.lock")
    lockfile.check_fresh(proj, lock)
    plan = select.select(proj, lock, target)
    lines = []
    for p in plan.packages:
        if p.is_local or p.origin.kind != "index":
            continue
        locked = next(lp for lp in lock.named(p.name) if lp.version == p.version)
        hashes = sorted({f.sha256 for f in locked.files})
        lines.append(" \\\n    ".join([f"{p.name}=={p.version}", *(f"--hash=sha256:{h}" for h in hashes)]))
    return "\n".join(lines) + "\n"
