"""The Dockerfile side of the comparison: buildah and podman on a private image store.

:class:`Engine` runs the real ``buildah``/``podman`` with their own ``--root``/``--runroot``
under the bench's state directory (so pruning never touches the machine's other images) and
with ``TMPDIR`` there too (buildah keeps ``RUN --mount=type=cache`` directories in
``$TMPDIR/buildah-cache``).  The Python base is made with ``mmdebstrap`` from the Debian mirror
that slimline itself uses (the host's apt sources), cached as a tarball per suite and imported
once into the private store.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import sh

from slimline.base.debian import mirror

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RUN_FLAGS = ["--runtime", "runc", "--cgroup-manager=cgroupfs"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_MAX_AGE = 7 * 24 * 3600  # re-make the mmdebstrap tarball after a week (security updates)


@dataclass(frozen=True)
class Engine:
    state: Path  # the bench's state directory (kept across runs)

    @property
    def storage(self) -> list[str]:
        root = self.state / "containers"
        return ["--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "overlay"]

    @property
    def env(self) -> dict[str, str]:
        return {"TMPDIR": str(self.state / "tmp")}

    def buildah(self, *args: str, timeout: float = 1800) -> str:
        (self.state / "tmp").mkdir(parents=True, exist_ok=True)
        return sh(["buildah", *self.storage, *args], env=self.env, timeout=timeout)

    def podman(self, *args: str, timeout: float = 1800) -> str:
        (self.state / "tmp").mkdir(parents=True, exist_ok=True)
        return sh(["podman", *self.storage, *args], env=self.env, timeout=timeout)

    # -- the base ------------------------------------------------------------------------------

    def base_image(self, suite: str) -> tuple[str, float | None]:
        """``localhost/pybase:SUITE`` in the private store, made if needed.

        Returns the name and the seconds mmdebstrap took, or None when the cached tarball was used.
        """
        name = f"localhost/pybase:{suite}"
        tarball = self.state / "bases" / f"{suite}.tar"
        took: float | None = None
        fresh = tarball.is_file() and time.time() - tarball.stat().st_mtime < BASE_MAX_AGE
        if not fresh:
            took = self._mmdebstrap(suite, tarball)
        images = self._images()
        stamp = self.state / "bases" / f"{suite}.imported"
        if took is not None or name not in {n for _, n in images} or not stamp.is_file():
            if name in {n for _, n in images}:
                self.podman("rmi", "--force", name)
            self.podman("import", str(tarball), name)
            stamp.write_text(str(tarball.stat().st_mtime))
        return name, took

    def _mmdebstrap(self, suite: str, tarball: Path) -> float:
        mirrors = mirror.find(mirror=None, security_mirror=None)
        sources = [f"deb {mirrors.archive} {suite} main", f"deb {mirrors.archive} {suite}-updates main"]
        if mirrors.security:
            sources.append(f"deb {mirrors.security} {suite}-security main")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        part = tarball.with_suffix(".part.tar")
        t0 = time.perf_counter()
        sh(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                suite,
                str(part),
                *sources,
            ],
            timeout=900,
        )
        took = time.perf_counter() - t0
        part.replace(tarball)
        return took

    # -- images --------------------------------------------------------------------------------

    def _images(self) -> list[tuple[str, str]]:
        """(id, name) of every image in the private store, intermediate ones included."""
        out = self.buildah("images", "--all", "--json")
        rows = json.loads(out) if out.strip() else []
        return [(r["id"], n) for r in rows for n in (r.get("names") or ["<none>"])]

    def prune(self, *, keep: Sequence[str], cache_mounts: bool = True) -> None:
        """Remove every working container and image except ``keep`` (names); with
        ``cache_mounts``, empty buildah's ``RUN --mount=type=cache`` directories too."""
        self.buildah("rm", "--all")
        images = self._images()
        kept = {i for i, n in images if n in keep}
        doomed = sorted({i for i, _ in images} - kept)
        if doomed:
            self.buildah("rmi", "--force", *doomed)
        if cache_mounts:
            shutil.rmtree(self.state / "tmp" / "buildah-cache", ignore_errors=True)

    def build(
        self, context: Path, dockerfile: Path, tag: str, *, args: dict[str, str], no_cache: bool
    ) -> None:
        """``buildah bud --layers`` as TESTING.md describes for these machines."""
        flags = [
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--ulimit",
            "nofile=1024:1024",
            "-v",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "-f",
            str(dockerfile),
            "-t",
            tag,
        ]
        if no_cache:
            flags.append("--no-cache")
        for k, v in args.items():
            flags += ["--build-arg", f"{k}={v}"]
        self.buildah(*flags, str(context))

    def push(self, image: str, dest: str) -> None:
        self.podman("push", "--tls-verify=false", "--quiet", image, f"docker://{dest}")

    def run(self, image: str, *args: str, entrypoint: str, platform: str | None = None) -> str:
        """``podman run --rm`` with the runtime flags these machines need; returns stdout.
        ``platform`` (``linux/arm64``) runs another architecture's image under qemu-user."""
        return self.podman(
            *RUN_FLAGS,
            "run",
            "--rm",
            "--tls-verify=false",
            *ULIMITS,
            *(["--platform", platform] if platform else []),
            "--entrypoint",
            entrypoint,
            image,
            *args,
        )


def check_tools() -> None:
    """Fail early, naming what is missing (the README's set-up installs all of them)."""
    missing = [t for t in ("buildah", "podman", "runc", "mmdebstrap") if shutil.which(t) is None]
    if not Path("/usr/bin/docker-registry").is_file():
        missing.append("docker-registry")
    if missing:
        raise SystemExit(f"bench: missing {', '.join(missing)}: run scripts/setup.sh --system first")
    if os.geteuid() != 0:
        raise SystemExit("bench: buildah/podman here run as root (TESTING.md); run the bench as root")
