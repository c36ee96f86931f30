"""From mirrors to a resolved, verified package set: the I/O half of base assembly.

:func:`resolve_base` fetches and verifies the ``InRelease`` of the suite, ``<suite>-updates``
and ``<suite>-security``, and returns the package closure.  The closure is cached under a
key made of the *verified* index hashes (plus the roots and excludes), so a warm build costs
three small signed downloads and one cache read; only a cache miss downloads the (hash-checked)
Packages indexes and parses them.  Each package comes from the archive with its highest version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import PkgRelation

from slimline.base.debian import packages, policy
from slimline.base.debian import release as release_mod
from slimline.base.debian.errors import ResolveError
from slimline.base.debian.mirror import Mirrors
from slimline.base.debian.packages import Stanza
from slimline.base.debian.release import IndexFile, Keyring, Release
from slimline.base.debian.resolve import Resolution, resolve
from slimline.cache import keys
from slimline.context import Context
from slimline.errors import redact
from slimline.http import Http, HttpError

__all__ = ["Archive", "BaseResolution", "Suite", "fetch_debs", "resolve_base", "upstream_version"]

MERGED_KIND = "debian-merged-index-2"  # bump when the record of parsed indexes changes
RESOLVE_FORMAT = "2"  # bump when the cached resolution's shape or rules change (2: stdlib roots)
_RELEASED = ("stable", "oldstable", "oldoldstable")
_ROLLING = ("sid", "unstable", "experimental", "rc-buggy")


@dataclass(frozen=True, slots=True)
class Suite:
    """One verified suite: where it is served and its Release."""

    name: str  # "bookworm-security"
    mirror: str
    release: Release
    indexes: tuple[IndexFile, ...]  # main/binary-<arch> (and main/binary-all where needed)
    inrelease_sha256: str = ""  # of the verified InRelease text: the archive state it names


@dataclass(frozen=True, slots=True)
class Archive:
    suites: tuple[Suite, ...]  # [0] is the suite itself; Stanza.origin indexes this tuple

    def url(self, st: Stanza) -> str:
        return f"{self.suites[st.origin].mirror}/{st.filename}"


@dataclass(frozen=True, slots=True)
class BaseResolution:
    archive: Archive
    arch: str
    python_xy: str  # "3.11"
    resolution: Resolution

    @property
    def main(self) -> Release:
        return self.archive.suites[0].release

    def package(self, name: str) -> Stanza:
        for p in self.resolution.packages:
            if p.name == name:
                return p
        raise KeyError(name)


def upstream_version(version: str) -> str:
    """``1:3.11.2-6+deb12u8`` -> ``3.11.2`` (epoch and Debian revision removed)."""
    v = version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def _fetch_suite(
    http: Http, mirror: str, name: str, *, arch: str, keyring: Keyring, check_valid_until: bool
) -> Suite:
    rel, body = release_mod.fetch(http, mirror, name, keyring=keyring, check_valid_until=check_valid_until)
    if rel.architectures and arch not in rel.architectures:
        raise ResolveError(
            f"architecture {arch}",
            f"Debian {name} does not offer it (it has {', '.join(rel.architectures)})",
            hint="choose another --platform or suite",
        )
    return Suite(
        name=name,
        mirror=mirror,
        release=rel,
        indexes=rel.packages_indexes("main", arch),
        inrelease_sha256=hashlib.sha256(body).hexdigest(),
    )


def fetch_archive(
    http: Http,
    mirrors: Mirrors,
    suite: str,
    *,
    arch: str,
    keyring: Keyring,
    check_valid_until: bool,
    report: Callable[[str], None],
) -> Archive:
    """Verified Releases of ``suite`` and, where they exist, its -updates and -security suites.

    For a released suite (stable, oldstable ...) the extra suites are required; for others a
    missing one (HTTP 404) is reported and skipped.
    """

    def one(mirror: str, name: str) -> Suite:
        return _fetch_suite(
            http, mirror, name, arch=arch, keyring=keyring, check_valid_until=check_valid_until
        )

    wanted: list[tuple[str, str]] = [(mirrors.archive, suite)]
    if suite not in _ROLLING:
        wanted.append((mirrors.archive, f"{suite}-updates"))
        if mirrors.security:
            wanted.append((mirrors.security, f"{suite}-security"))
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = [pool.submit(one, m, n) for m, n in wanted]
        main = futures[0].result()
        out = [main]
        for (mirror, name), fut in zip(wanted[1:], futures[1:], strict=True):
            try:
                out.append(fut.result())
            except HttpError as err:
                if err.status != 404 or main.release.suite in _RELEASED or suite in _RELEASED:
                    raise
                report(f"Debian {name} is not served by {redact(mirror)} (HTTP 404); skipped")
    return Archive(suites=tuple(out))


def _default_python(index: Mapping[str, Stanza], suite: str) -> str:
    st = index.get("python3-minimal")
    if st is not None:
        m = re.search(r"\bpython(3\.\d+)-minimal\b", f"{st.pre_depends}, {st.depends}")
        if m:
            return m.group(1)
    raise ResolveError(
        "python3-minimal",
        f"Debian {suite} has no default Python 3",
        hint="name the Python explicitly: debian:SUITE/python3.X",
    )


def _check_python(index: Mapping[str, Stanza], xy: str, suite: str) -> None:
    if f"python{xy}-minimal" not in index:
        have = sorted(
            n.removesuffix("-minimal")[6:] for n in index if re.fullmatch(r"python3\.\d+-minimal", n)
        )
        raise ResolveError(
            f"python{xy}-minimal",
            f"Debian {suite} has no Python {xy}",
            hint=f"Debian {suite} offers Python {', '.join(have) or 'none'}: debian:{suite}/python3.X",
        )


def _provides(st: Stanza | None, virtual: str) -> bool:
    """Does the package ``st`` (None: not in the index) provide ``virtual``?"""
    if st is None or not st.provides:
        return False
    return any(alt["name"] == virtual for group in PkgRelation.parse_relations(st.provides) for alt in group)


def resolve_base(
    archive: Archive,
    *,
    ctx: Context,
    arch: str,
    suite: str,
    python: str | None,
    extras: Sequence[str],
    excludes: Mapping[str, str],
) -> BaseResolution:
    """The closure for the base (cached by verified index hashes; see the module contract);
    progress goes to ``ctx.report`` as details."""
    cache, report = ctx.cache, ctx.report.detail
    key_doc = {
        "format": RESOLVE_FORMAT,
        "arch": arch,
        "python": python,
        "extras": list(extras),
        "excludes": sorted(excludes.items()),
        "indexes": [(s.name, [i.sha256 for i in s.indexes]) for s in archive.suites],
    }
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()
    hit = cache.read_meta(keys.DEBIAN_RESOLVE, key)
    if hit is not None:
        try:
            d = json.loads(hit)
            return BaseResolution(archive, arch, d["python_xy"], Resolution.from_json(d["resolution"]))
        except (ValueError, KeyError, TypeError):
            report("ignoring an unreadable cached resolution; resolving again")

    index = _merged(archive, arch, ctx)
    xy = python or _default_python(index, suite)
    _check_python(index, xy, suite)
    stdlib = [pkg for pkg, virtual in policy.stdlib_packages(xy) if _provides(index.get(pkg), virtual)]
    roots = [f"python{xy}-minimal", f"libpython{xy}-stdlib", *stdlib, "ca-certificates", "tzdata", "netbase"]
    roots += extras
    res = resolve(index, roots, arch=arch, excludes=excludes, suites=f"Debian {suite} ({arch})")
    cache.write_meta(
        keys.DEBIAN_RESOLVE, key, json.dumps({"python_xy": xy, "resolution": res.to_json()}).encode()
    )
    return BaseResolution(archive, arch, xy, res)


_merged_memo: dict[str, Mapping[str, Stanza]] = {}  # this process's merged indexes, by their key


def _merged(archive: Archive, arch: str, ctx: Context) -> Mapping[str, Stanza]:
    """The suites' Packages indexes for ``arch``, merged (:func:`packages.merge`).

    Kept in this process (a build that assembles a builder and then completes its base reads
    them once) and in the cache under the *verified* index hashes: the compact record holds the
    stanzas parsed from bytes that the signed Release vouched for, so a cold build with a pinned
    base neither decompresses nor parses the indexes again.  An unreadable record is parsed anew.
    """
    cache, report = ctx.cache, ctx.report.detail
    jobs = [(i, s, index) for i, s in enumerate(archive.suites) for index in s.indexes]
    key = keys.key(MERGED_KIND, arch, *(index.sha256 for _, _, index in jobs))
    if key in _merged_memo:
        return _merged_memo[key]
    names = ", ".join(s.name for s in archive.suites)
    hit = cache.read_meta(keys.DEBIAN_INDEXES, key)
    if hit is not None:
        try:
            merged = packages.from_record(hit)
            report(f"read the Packages indexes of {names} ({arch}) as parsed before")
            return _merged_memo.setdefault(key, merged)
        except (ValueError, KeyError, TypeError, IndexError):
            report("ignoring an unreadable record of parsed Packages indexes; parsing them again")

    def load(job: tuple[int, Suite, IndexFile]) -> dict[str, Stanza]:
        # each index reduced to its best stanza per package as it is read: neither its text nor
        # its other architectures' stanzas are held (the main index is 60 MB of text)
        i, s, index = job
        path: Path = packages.download(ctx.http, s.release, index, cache=cache)
        return packages.read_stanzas(path, index, origin=i, what=f"{s.name} {index.path}", arch=arch)

    report(f"reading the Packages indexes of {names} ({arch})")
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        fresh = packages.merge([p.values() for p in pool.map(load, jobs)], arch=arch)
    cache.write_meta(keys.DEBIAN_INDEXES, key, packages.to_record(fresh))
    return _merged_memo.setdefault(key, fresh)


def fetch_debs(
    base: BaseResolution,
    names: Sequence[str],
    *,
    ctx: Context,
    workers: int = 8,
) -> dict[str, Path]:
    """The verified ``.deb`` of each named package (downloaded in parallel where not cached).

    Trust chain, step 3: each file must hash to the SHA256 of its (signed) Packages stanza;
    a mismatch raises :class:`slimline.errors.HashMismatch` and stores nothing.
    """
    http, cache, report = ctx.http, ctx.cache, ctx.report.detail
    wanted = [base.package(n) for n in names]
    total = sum(p.size for p in wanted)
    done: list[int] = []

    def one(st: Stanza) -> tuple[str, Path]:
        path = http.download(
            base.archive.url(st),
            cache=cache,
            sha256=st.sha256,
            what=f"{st.name}_{st.version}_{st.architecture}.deb",
            package=st.name,
            size=st.size,
        )
        done.append(st.size)
        report(
            f"  {st.name} {st.version} ({len(done)}/{len(wanted)}, "
            f"{sum(done) / 1e6:.1f}/{total / 1e6:.1f} MB)"
        )
        return st.name, path

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(wanted)))) as pool:
        return dict(pool.map(one, wanted))
