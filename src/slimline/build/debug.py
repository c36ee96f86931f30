"""The debug variant (``debug = true`` / ``--debug``): the image plus one layer of busybox.

Contract:

* :func:`busybox_layer` is Debian's ``busybox-static`` for the image's architecture, fetched
  through the signed archive code (:mod:`slimline.base.debian`: InRelease signature, Packages
  hash, ``.deb`` hash) from the base's suite (a ``debian:`` base) or :data:`DEFAULT_SUITE`
  (the binary is static: any base can run it).  The layer holds ``/busybox/busybox`` and one
  symlink ``/busybox/APPLET -> busybox`` per applet the binary names, root-owned, mtime 0; it is
  keyed by the ``.deb``'s SHA256 and pinned for a day like a base (a warm build reads no archive).
* :func:`variant` is the image with that layer on top and ``/busybox`` at the end of ``PATH``
  (the app's own programs still win); every other layer, and the layers' digests, are the
  image's.  So ``podman run --entrypoint sh IMAGE-debug`` gives a shell, and nothing in the
  system's directories is shadowed (as distroless's ``:debug`` images do).
* :func:`debug_ref` names the debug image of an output: ``TAG-debug`` in an OCI layout, a
  registry or the engine; a docker-archive ``PATH`` gets a second archive ``STEM-debug.tar``
  beside it (an archive is one image for ``podman load``).

This module is on the memo's path: what only a full build needs is imported when it runs.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from slimline.oci.image import History, Image, Layer
from slimline.oci.reference import ArchiveRef, DaemonRef, OciRef, Ref, RegistryRef, parse_name

if TYPE_CHECKING:
    from pathlib import Path

    from slimline.base.resolve import Base
    from slimline.context import Context
    from slimline.layers.compress import Compression
    from slimline.layers.filetree import FileTree
    from slimline.oci.image import Platform
    from slimline.project.settings import DebianSettings

__all__ = [
    "DEFAULT_SUITE",
    "PACKAGE",
    "applets",
    "busybox_layer",
    "busybox_tree",
    "debug_name",
    "debug_ref",
    "variant",
]

PACKAGE = "busybox-static"
DEFAULT_SUITE = "debian:bookworm"  # for bases slimline did not assemble
DIR = "busybox"
FORMAT = "1"  # the layer's tree from the same .deb (bump when busybox_tree changes)
_DAY = 24 * 3600
_APPLET = re.compile(rb"[a-z0-9_.\[\]-]{1,64}")


def variant(image: Image, layer: Layer, *, created: str) -> Image:
    """``image`` with the busybox ``layer`` on top and ``/busybox`` last on ``PATH``."""
    config = image.config
    path = config.env_map().get("PATH", "")
    config = config.with_env(PATH=f"{path}:/{DIR}" if path else f"/{DIR}")
    debug = image.append((layer,), (History(created_by="slimline: debug tools (busybox)", created=created),))
    return debug.with_config(config)


def debug_ref(ref: Ref) -> Ref:
    """Where the debug image of output ``ref`` goes (see the module's contract)."""
    if isinstance(ref, OciRef):
        return replace(ref, tag=f"{ref.tag}-debug" if ref.tag else "debug")
    if isinstance(ref, RegistryRef):
        return replace(ref, tag=f"{ref.tag or 'latest'}-debug", digest=None)
    if isinstance(ref, DaemonRef):
        return DaemonRef(_debug_name(ref.name))
    if isinstance(ref, ArchiveRef):
        path = ref.path.with_name(f"{ref.path.stem}-debug{ref.path.suffix or '.tar'}")
        return ArchiveRef(path, None if ref.name is None else _debug_name(ref.name))
    raise TypeError(f"no debug variant for the output {ref}")


def debug_name(name: str) -> str:
    """``app:1.0`` (the name outputs record) -> ``app:1.0-debug``; ``app`` -> ``app:latest-debug``."""
    stem, colon, tag = name.rpartition(":")
    return f"{stem}:{tag}-debug" if colon and "/" not in tag else f"{name}:latest-debug"


def _debug_name(text: str) -> str:
    """``registry/repo:TAG`` (fully qualified, as outputs hold names) -> ``registry/repo:TAG-debug``."""
    name = parse_name(text)
    return str(replace(name, tag=f"{name.tag or 'latest'}-debug", digest=None))


def applets(binary: bytes) -> list[str]:
    """The applet names a busybox binary holds: its sorted, NUL-separated name table, which
    begins ``[``, ``[[`` (what ``busybox --list`` prints); [] when there is none."""
    start = binary.find(b"[\0[[\0")
    if start < 0:
        return []
    names: list[bytes] = []
    for raw in binary[start : start + (1 << 16)].split(b"\0"):
        if not _APPLET.fullmatch(raw) or (names and raw <= names[-1]):
            break
        names.append(raw)
    return [n.decode() for n in names]


def busybox_tree(deb: Path) -> FileTree:
    """The debug layer's tree from the ``busybox-static`` package at ``deb``."""
    from slimline.base.debian import deb as deb_mod
    from slimline.errors import SlimlineError
    from slimline.layers.filetree import Kind, TreeBuilder

    unpacked = TreeBuilder(archive=f"{PACKAGE}.deb")
    deb_mod.unpack(deb, unpacked, package=PACKAGE, keep=lambda p: p in ("bin/busybox", "usr/bin/busybox"))
    found = unpacked.get("usr/bin/busybox") or unpacked.get("bin/busybox")
    if found is None or found.kind is not Kind.FILE or found.source is None:
        raise SlimlineError(
            f"{PACKAGE} holds no bin/busybox", doing="making the debug layer", hint="report this to slimline"
        )
    with found.source.open() as f:
        binary = f.read()
    names = applets(binary)
    if "sh" not in names:
        raise SlimlineError(
            f"the busybox of {PACKAGE} names no sh applet", doing="making the debug layer", hint="report this"
        )
    out = TreeBuilder()
    out.dir(DIR)
    out.data(f"{DIR}/busybox", binary, mode=0o755)
    for name in names:
        if name != "busybox":
            out.symlink(f"{DIR}/{name}", "busybox")
    return out.freeze()


def busybox_layer(
    base: Base,
    platform: Platform,
    *,
    debian: DebianSettings,
    compression: Compression,
    refresh: bool,
    ctx: Context,
) -> tuple[Layer, float]:
    """The debug layer for ``platform`` and until when its pin serves (see the module's contract)."""
    from slimline import layers
    from slimline.cache import keys

    suite = base.name if base.assembled else DEFAULT_SUITE
    settings = replace(debian.for_image(), packages=(PACKAGE,), exclude=())
    pin_key = _pin_key(suite, platform, settings, compression)
    pin = ctx.cache.read_meta(keys.DEBIAN_PINS, pin_key)
    if pin is not None and not refresh:
        d = json.loads(pin)
        layer = layers.from_record(d["layer"], cache=ctx.cache)
        if layer.path.is_file() and d["pinned_at"] + _DAY > time.time():
            return layer, d["pinned_at"] + _DAY
    layer = _fetched_layer(suite, platform, settings, compression=compression, ctx=ctx)
    pinned_at = time.time()
    record = {"layer": layers.record(layer), "pinned_at": pinned_at}
    ctx.cache.write_meta(keys.DEBIAN_PINS, pin_key, json.dumps(record).encode())
    return layer, pinned_at + _DAY


def _pin_key(suite: str, platform: Platform, settings: DebianSettings, compression: Compression) -> str:
    """The key of the busybox layer's pin (in the Debian pins' area)."""
    from slimline import __version__
    from slimline.cache import keys

    parts = (FORMAT, __version__, suite, str(platform), repr(settings), compression.name, compression.level)
    return keys.key("debug-busybox-pin", *parts)


def _fetched_layer(
    suite: str, platform: Platform, settings: DebianSettings, *, compression: Compression, ctx: Context
) -> Layer:
    from slimline import layers
    from slimline.base.debian import archive, base
    from slimline.base.debian.ref import DebianRef
    from slimline.cache import keys
    from slimline.layers.job import Job

    resolved = base.resolve(DebianRef.parse(suite), platform=platform, settings=settings, ctx=ctx)
    stanza = resolved.package(PACKAGE)
    ctx.report.step(f"debug layer: {PACKAGE} {stanza.version} ({stanza.architecture}) from {suite}")

    def make() -> FileTree:
        debs = archive.fetch_debs(resolved, [PACKAGE], ctx=ctx)
        return busybox_tree(debs[PACKAGE])

    job = Job(
        keys.key("debug-busybox", FORMAT, stanza.sha256),
        make,
        f"slimline: debug tools ({PACKAGE} {stanza.version})",
        0,
    )
    return layers.realise([job], cache=ctx.cache, compression=compression).layers[0]
