#!/usr/bin/env python3
"""Size and build time of the Debian Python base (``debian:bookworm`` = Python 3.11 by default).

Prints, measured on this machine against the real Debian archive:

* unpacked size: the bytes of all regular files in the image (what the root file system holds),
  and the size of the uncompressed layer tars;
* compressed size: the gzip layer blobs (what a registry stores and a pull downloads);
* warm build: median over ``--runs`` builds with everything cached (InRelease is still fetched
  and verified each time: that is the network round trip every build pays);
* assembly from cached downloads: median over ``--runs`` builds in a fresh cache holding only the
  verified indexes, the resolution and the ``.deb`` files, so every layer is unpacked and
  compressed again.

Targets (issue 3): <= 40 MB unpacked, <= 16 MB compressed, warm build <= 5 s.
Usage: ``.venv/bin/python bench/base.py [--ref debian:bookworm] [--platform linux/amd64] [--runs 5]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import measure, write_readme

from slimline import layers
from slimline.base.debian.base import BaseSettings, DebianRef, build, resolve
from slimline.cache import keys
from slimline.cache.store import Cache
from slimline.context import Context
from slimline.http import Http
from slimline.oci.image import Image, Platform


def sizes(image: Image) -> tuple[int, int, int]:
    """(bytes of regular files, bytes of uncompressed tars, bytes of compressed blobs)."""
    files = tars = 0
    for layer in image.layers:
        with layers.members(layer) as tar:
            for info in tar:
                if info.isfile():
                    files += info.size
        with layer.open() as raw:
            import gzip

            with gzip.GzipFile(fileobj=raw) as z:
                while chunk := z.read(1 << 20):
                    tars += len(chunk)
    return files, tars, sum(layer.size for layer in image.layers)


def seed(source: Cache, dest: Path, ref: DebianRef, platform: Platform, settings: BaseSettings) -> Cache:
    base = resolve(ref, platform=platform, settings=settings, ctx=Context(source))
    fresh = Cache(dest)
    for sha in [p.sha256 for p in base.resolution.packages] + [
        i.sha256 for s in base.archive.suites for i in s.indexes
    ]:
        fresh.blob_path(sha).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.blob_path(sha), fresh.blob_path(sha))
    shutil.copytree(source.root / keys.DEBIAN_RESOLVE, dest / keys.DEBIAN_RESOLVE)
    return fresh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="debian:bookworm")
    ap.add_argument("--platform", default="linux/amd64")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cache", type=Path, help="default: SLIMLINE_CACHE_DIR, else the user cache")
    ap.add_argument("--readme", action="store_true", help="write the figures into README.md")
    args = ap.parse_args()
    ref, platform, settings = DebianRef.parse(args.ref), Platform.parse(args.platform), BaseSettings()
    cache = Cache(args.cache) if args.cache else Cache.default()
    http = Http()  # one client for every run, as one command has

    def once(c: Cache) -> Image:
        image, _, _ = build(ref, platform=platform, settings=settings, ctx=Context(c, given_http=http))
        return image

    image = once(cache)  # fills the cache (downloads, layers) if needed
    files, tars, blobs = sizes(image)

    def warm_build(_i: int) -> None:
        once(cache)

    warm = measure("warm", args.runs, warm_build)
    with tempfile.TemporaryDirectory(prefix="slimline-bench-") as tmp:
        caches: list[Cache] = []

        def fresh(i: int) -> None:
            caches.append(seed(cache, Path(tmp) / str(i), ref, platform, settings))

        def assemble(i: int) -> None:
            once(caches[i])

        assembly = measure("assembly", args.runs, assemble, before=fresh)

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = [
        f"Base `{ref}` ({platform}), {len(image.layers)} layers, `bench/base.py --runs {args.runs}`:",
        "",
        "| measurement | value | target |",
        "|---|---|---|",
        f"| unpacked size | {files / 1e6:.1f} MB in files ({tars / 1e6:.1f} MB of uncompressed tar) "
        f"| <= 40 MB: {verdict(files <= 40e6)} |",
        f"| compressed size (gzip) | {blobs / 1e6:.1f} MB | <= 16 MB: {verdict(blobs <= 16e6)} |",
        f"| warm build (InRelease fetched and verified) | {warm.row()} "
        f"| <= 5 s: {verdict(warm.median <= 5)} |",
        "| assembly from cached .debs (every layer unpacked and compressed, its file system written "
        f"for the bytecode compiler) | {assembly.row()} | |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.readme:
        write_readme("base", text)


if __name__ == "__main__":
    main()
