"""Load images into a local engine (``docker-daemon:NAME:TAG`` and ``--load``).

The image is written as a docker-archive (:func:`slimline.oci.archive.write`, the form both
engines read) and fed to ``podman load`` or ``docker load`` on stdin.  Engine choice: the one
asked for, else ``podman`` when installed (it needs no daemon), else ``docker``.  An engine
holds one platform per name, so of several images the one for the host's architecture is
loaded.

Contract: the archive lives in a private temporary directory that is removed afterwards (the
archive writer renames into place, so it cannot write into a pipe directly; when it can, this
module streams instead).  The engine's output is shown only when it fails, trimmed.
"""

from __future__ import annotations

import contextlib
import platform as host_platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from slimline.errors import SlimlineError
from slimline.oci import archive
from slimline.oci.image import Image, Platform
from slimline.oci.reference import ArchiveRef, DaemonRef
from slimline.report import Quiet, Reporter

__all__ = ["ENGINES", "DaemonError", "find_engine", "host_image", "load"]

ENGINES = ("podman", "docker")
_COPY = 1 << 20


class DaemonError(SlimlineError):
    """Loading into a local engine failed; ``engine`` is the program (or "" if none was found)."""

    def __init__(self, problem: str, *, engine: str, doing: str, hint: str = "") -> None:
        super().__init__(problem, doing=doing, hint=hint)
        self.engine = engine


def find_engine(engine: str | None = None) -> str:
    """The path of ``engine`` (a name or path), else of the first of :data:`ENGINES` installed."""
    names = [engine] if engine else list(ENGINES)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    wanted = engine or " or ".join(ENGINES)
    raise DaemonError(
        f"{wanted} is not installed (not found on PATH)",
        engine=engine or "",
        doing="looking for a container engine to load the image into",
        hint="install podman or docker, or write the image with --to docker-archive:PATH "
        "and load it elsewhere",
    )


def host_image(images: Sequence[Image]) -> Image:
    """Of ``images``, the one for this machine's architecture (the only one, if just one)."""
    if len(images) == 1:
        return images[0]
    arch = Platform.parse(host_platform.machine()).architecture
    for img in images:
        if img.platform.architecture == arch:
            return img
    have = ", ".join(str(i.platform) for i in images)
    raise DaemonError(
        f"none of the images ({have}) is for this machine ({arch})",
        engine="",
        doing="choosing the image to load",
        hint="build for this machine's platform too, or push the images to a registry instead",
    )


def load(
    images: Sequence[Image],
    ref: DaemonRef,
    *,
    engine: str | None = None,
    report: Reporter | None = None,
) -> str:
    """Load the host's image of ``images`` into the engine as ``ref.name``; return the manifest digest."""
    report = report or Quiet()
    if "@" in ref.name:
        raise DaemonError(
            f"{ref.name} names a digest; an engine loads images by NAME:TAG",
            engine=engine or "",
            doing=f"loading {ref}",
            hint="use docker-daemon:NAME:TAG",
        )
    image = host_image(images)
    exe = find_engine(engine)
    doing = f"loading {ref.name} into {Path(exe).name}"
    report.step(doing)
    with tempfile.TemporaryDirectory(prefix="slimline-load-") as tmp:
        tar = Path(tmp) / "image.tar"
        digest = archive.write(image, ArchiveRef(tar, ref.name))
        with tar.open("rb") as src, tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.Popen([exe, "load"], stdin=subprocess.PIPE, stdout=out, stderr=out)
            except OSError as err:
                raise DaemonError(f"cannot run {exe}: {err.strerror}", engine=exe, doing=doing) from err
            assert proc.stdin is not None
            try:
                while chunk := src.read(_COPY):
                    proc.stdin.write(chunk)
            except BrokenPipeError:
                pass  # the engine stopped reading; its exit status and output say why
            finally:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            code = proc.wait()
            out.seek(0)
            output = out.read().decode(errors="replace").strip()
    if code != 0:
        hint = "check the engine's output above"
        if Path(exe).name == "docker":
            hint = "is the Docker daemon running and may you use it? (docker info)"
        raise DaemonError(
            f"{Path(exe).name} load exited with status {code}: {output[-1500:]}",
            engine=exe,
            doing=doing,
            hint=hint,
        )
    report.done(f"loaded {ref.name} ({digest}) into {Path(exe).name}")
    return digest
