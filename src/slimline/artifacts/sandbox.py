"""Running a program inside a builder's root file system, without a daemon: bubblewrap.

Contract of :func:`run`: the program sees ``root`` read-only as ``/``, the host directories
``binds`` maps to at their inside paths (read-write) and ``ro_binds`` (read-only), a private
``/tmp``, ``/dev`` and ``/proc``, and nothing else of the host; no network unless ``network``; an
environment of exactly ``env``.  It runs natively, or through the kernel's binfmt_misc and
qemu-user for another architecture.  It works as root and, where the kernel allows user
namespaces, as any user (bubblewrap makes one).  Where neither works, :class:`SandboxError`
says what to enable.  Output (stdout and stderr together) is returned, never printed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from slimline.errors import SlimlineError

__all__ = ["SandboxError", "check", "run"]

_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
_QEMU = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class SandboxError(SlimlineError):
    """The builder's sandbox cannot run here."""


def check(arch: str) -> list[str]:
    """The command prefix that runs programs in a sandbox for ``arch`` (an OCI architecture);
    raises :class:`SandboxError` naming what to install or enable."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError(
            "bubblewrap (bwrap) is not installed",
            doing="preparing the builder that compiles packages for the image",
            hint="install it (apt-get install bubblewrap, dnf install bubblewrap, apk add bubblewrap)",
        )
    if _MACHINES.get(arch) != platform.machine():
        name = _QEMU.get(arch, arch)
        entry = Path(f"/proc/sys/fs/binfmt_misc/qemu-{name}")
        flags = next((ln for ln in _lines(entry) if ln.startswith("flags:")), "")
        if "F" not in flags:
            raise SandboxError(
                f"this {platform.machine()} host cannot run {arch} programs in a sandbox "
                f"(no binfmt_misc entry qemu-{name} with the F flag)",
                doing=f"preparing the builder for linux/{arch}",
                hint="install qemu-user-static and binfmt-support (apt-get install qemu-user-static "
                f"binfmt-support), then check /proc/sys/fs/binfmt_misc/qemu-{name}",
            )
    return [bwrap]


def run(
    root: Path,
    argv: Sequence[str],
    *,
    arch: str,
    binds: Mapping[str, Path] | None = None,
    ro_binds: Mapping[str, Path] | None = None,
    cwd: str = "/",
    env: Mapping[str, str] | None = None,
    network: bool = False,
    timeout: float = 3600,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the sandbox (see the module's contract); never raises for the program's
    exit status (the caller reads ``returncode``)."""
    cmd = check(arch)
    cmd += ["--ro-bind", str(root), "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    cmd += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user", "--uid", "0", "--gid", "0"]
    if not network:
        cmd.append("--unshare-net")
    elif Path("/etc/resolv.conf").is_file():  # the builder has an empty one to mount over
        cmd += ["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]
    for inside, host in (ro_binds or {}).items():
        cmd += ["--ro-bind", str(host), inside]
    for inside, host in (binds or {}).items():
        cmd += ["--bind", str(host), inside]
    cmd += ["--chdir", cwd, "--clearenv"]
    for name, value in sorted((env or {}).items()):
        cmd += ["--setenv", name, value]
    cmd += ["--", *argv]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 and proc.stderr.startswith("bwrap:"):
        raise SandboxError(
            proc.stderr.strip(), doing="starting the builder's sandbox", hint=_hint(proc.stderr)
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout + proc.stderr, "")


def _hint(said: str) -> str:
    if "namespace" in said or "uid map" in said or "Operation not permitted" in said:
        return (
            "run as root, or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; "
            "on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0)"
        )
    return "check that this user can read the cache directory (SLIMLINE_CACHE_DIR) and the project"


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []
