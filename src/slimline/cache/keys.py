"""Cache keys and the cache's areas, named in one place.

Contract of :func:`key`: the same kind and parts give the same key on every host and run, and
any change of a part, of their order or of :data:`FORMAT` gives another.  Parts are strings,
numbers, booleans, None, or tuples/lists/dicts of those (dataclasses: pass their fields); each
part is fed to one hasher with its type and length, so ``("a|b",)`` and ``("a", "b")`` differ.

Areas: every directory directly under the cache root (see :mod:`slimline.cache.retention`,
which ages and prunes them).
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["FORMAT", "key"]

FORMAT = 1  # bump when the meaning of a key's parts changes: every keyed entry is made again

# content-addressed files
BLOBS = "blobs"  # blobs/sha256/<hex>: downloads, layers, configs
WHEELS = "wheels"  # wheels/<sha256>/<filename>: hard links to blobs under their wheel names
# directories kept per key
BUILD_ENVS = "build-envs"  # PEP 517 build environments, per requirement set
TARGET_ENVS = "target-envs"  # build requirements as wheels for a builder's interpreter
ROOTFS = "rootfs"  # bases unpacked once, for --bytecode
UNFINISHED = ".tmp-"  # a directory entry's name prefix while it is being made, before its rename
# small JSON records, one file per key
LAYERS = "layers"  # a layer job's key -> its layer
MEMO = "memo"  # a build's result below the project layer
DEBIAN_PINS = "debian-pins"  # an assembled Debian base, pinned for a day
DEBIAN_RESOLVE = "debian-resolve"  # a Debian package set resolved against an archive state
DEBIAN_CONTENTS = "debian-contents"  # sonames looked up in a Contents index, by its hash
DEBIAN_INDEXES = "debian-indexes"  # Packages indexes parsed and merged, by their verified hashes
DPKG_INSTALLED = "dpkg-installed"  # the Debian packages a base image holds
TARGETS = "targets"  # a base image's detected interpreter and libc
USERS = "users"  # a base image's non-root user
BASE_SONAMES = "base-sonames"  # the shared libraries a base image holds
WHEEL_INFO = "wheel-info"  # a wheel's size and the sonames it links
BUILT_WHEELS = "built-wheels"  # a PEP 517 build's inputs -> the wheel it made
BUILD_REQUIRES = "build-requires"  # a backend's dynamic build requirements
TREE_STAT = "tree-stat"  # file digests of a source tree by stat (not re-hashed when unchanged)
DERIVE = "derive"  # the last project wheel and its file list, for derived rebuilds
BYTECODE_PROBE = "bytecode-probe"  # what a base's interpreter said about itself
REGISTRY_TAGS = "registry-tags"  # a registry tag -> digest, and when it was resolved
REGISTRY_SOURCES = "registry-sources"  # a blob digest -> repositories known to hold it (mounts)
DIFF_IDS = "oci-diff-ids"  # a base layer's blob digest -> its diff_id, verified by decompressing it
ATTEST = "attest"  # an image's SBOM and provenance templates, by the facts they were made from
STDLIB_TOUCH = "stdlib-touch"  # whether a layer holds part of a base's standard library or interpreter
SLIM_DROPPED = "slim-dropped"  # a layer blob's digest -> the SLIMLINE-DROPPED lists it holds

METADATA = (
    LAYERS,
    MEMO,
    DEBIAN_PINS,
    DEBIAN_RESOLVE,
    DEBIAN_CONTENTS,
    DEBIAN_INDEXES,
    DPKG_INSTALLED,
    TARGETS,
    USERS,
    BASE_SONAMES,
    WHEEL_INFO,
    BUILT_WHEELS,
    BUILD_REQUIRES,
    TREE_STAT,
    DERIVE,
    BYTECODE_PROBE,
    REGISTRY_TAGS,
    REGISTRY_SOURCES,
    DIFF_IDS,
    STDLIB_TOUCH,
    ATTEST,
    SLIM_DROPPED,
)


def key(kind: str, *parts: object) -> str:
    """The sha256 (hex) of ``kind``, :data:`FORMAT` and ``parts`` (see the module's contract)."""
    h = hashlib.sha256()
    for part in (kind, FORMAT, *parts):
        encoded = json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        h.update(len(encoded).to_bytes(8, "big") + encoded)
    return h.hexdigest()
