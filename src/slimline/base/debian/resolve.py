"""The closure of ``Pre-Depends`` and ``Depends`` from a set of root packages.

Rules (documented, deterministic; no solver search, as the archive is self-consistent):

* Roots are taken in the given order; dependencies breadth first, ``Pre-Depends`` before
  ``Depends``.  ``Recommends``/``Suggests`` are not followed; ``Conflicts``/``Breaks`` are not checked.
* A dependency group ``a | b`` is satisfied if any alternative is already selected (a real
  package whose version satisfies the constraint, or a package that ``Provides`` it).
  Otherwise, if any alternative is on the exclude list, the group is left out and reported.
  Otherwise the first alternative that the index can satisfy is selected: the real package
  if its version fits, else the provider with the alphabetically first name.
* Versions are compared the dpkg way (``debian.debian_support.version_compare``); an
  unversioned ``Provides`` never satisfies a versioned dependency.
* ``:any``/``:native`` qualifiers are ignored (one architecture per image); a qualifier
  naming another architecture cannot be satisfied.
* Explicit roots win over excludes.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from debian.deb822 import PkgRelation
from debian.debian_support import version_compare

from slimline.base.debian.errors import ResolveError
from slimline.base.debian.packages import Record, Stanza

__all__ = [
    "BUILDER_EXCLUDES",
    "DEFAULT_EXCLUDES",
    "LeftOut",
    "Resolution",
    "closure",
    "relation_holds",
    "resolve",
]

# What a runtime image never needs, with the reason reported to the user.  Dependencies on
# these (or on a group that offers one of them) are left out.
DEFAULT_EXCLUDES: Mapping[str, str] = {
    "dpkg": "package manager; the image has none (packages are recorded in /var/lib/dpkg/status.d)",
    "install-info": "documentation indexer run by maintainer scripts",
    "debconf": "configuration prompts of maintainer scripts, which are not run",
    "debconf-2.0": "configuration prompts of maintainer scripts, which are not run",
    "cdebconf": "configuration prompts of maintainer scripts, which are not run",
    "perl-base": "Perl interpreter used by maintainer scripts",
    "bash": "shell; a distroless image has none",
    "dash": "shell; a distroless image has none",
    "sh": "shell; a distroless image has none",
    "coreutils": "command-line tools; a distroless image has none",
    "debianutils": "command-line tools used by maintainer scripts",
    "sensible-utils": "command-line tools used by maintainer scripts",
    "init-system-helpers": "service management used by maintainer scripts",
    "lsb-base": "init script helpers",
    "sysvinit-utils": "init script helpers",
    "base-passwd": "user database; slimline writes /etc/passwd and /etc/group",
    "adduser": "user management used by maintainer scripts",
    "passwd": "user management used by maintainer scripts",
    "login": "login tools",
    "usrmerge": "merged-/usr conversion; slimline lays out merged /usr itself",
    "usr-is-merged": "merged-/usr marker; slimline lays out merged /usr itself",
    "libc-bin": "ldconfig and locale tools, used by maintainer scripts",
    "openssl": "the openssl command, used by ca-certificates' maintainer script; "
    "slimline builds the CA bundle itself",
}

# What no PEP 517 build uses, left out of the builder: GCC's sanitizer runtimes (``-fsanitize=``,
# named per GCC release: 10 in bullseye, 12 in bookworm, 14 in trixie) and binutils' profiler;
# about 7% of the builder's ``.deb`` bytes, all decompressed on every cold build
_SANITIZER = "the runtime of a GCC sanitizer (-fsanitize=), which no package build uses"
BUILDER_EXCLUDES: Mapping[str, str] = {
    **dict.fromkeys(("libasan6", "libasan8", "liblsan0", "libtsan0", "libtsan2"), _SANITIZER),
    **dict.fromkeys(("libubsan1", "libhwasan0"), _SANITIZER),
    "libgprofng0": "gprofng, binutils' profiler, which no package build runs",
}

_OPS: dict[str, Callable[[int], bool]] = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "<": lambda c: c <= 0,  # obsolete spelling of <=
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">": lambda c: c >= 0,  # obsolete spelling of >=
    ">>": lambda c: c > 0,
}


def relation_holds(version: str, op: str, wanted: str) -> bool:
    """Does ``version`` satisfy ``(op wanted)``?  ``op`` is one of ``<< <= = >= >>`` (or old ``< >``)."""
    try:
        check = _OPS[op]
    except KeyError:
        raise ValueError(f"unknown version relation {op!r}") from None
    return bool(check(version_compare(version, wanted)))


@dataclass(frozen=True, slots=True)
class LeftOut:
    name: str  # the excluded package (or virtual package) name
    needed_by: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Resolution:
    packages: tuple[Stanza, ...]  # sorted by name
    left_out: tuple[LeftOut, ...]  # sorted by name
    edges: Mapping[str, tuple[str, ...]]  # package -> the packages selected for its dependencies
    notes: tuple[str, ...] = ()  # choices worth reporting ("debconf-2.0: chose cdebconf")

    def by_name(self) -> dict[str, Stanza]:
        return {p.name: p for p in self.packages}

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "packages": [asdict(p) for p in self.packages],
            "left_out": [asdict(x) for x in self.left_out],
            "edges": {k: list(v) for k, v in self.edges.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Resolution:
        return cls(
            packages=tuple(Stanza(**p) for p in d["packages"]),
            left_out=tuple(
                LeftOut(name=x["name"], needed_by=tuple(x["needed_by"]), reason=x["reason"])
                for x in d["left_out"]
            ),
            edges={k: tuple(v) for k, v in d["edges"].items()},
            notes=tuple(d.get("notes", ())),
        )


Alternative = Mapping[
    str, Any
]  # python-debian's shape: {"name", "archqual", "version": (op, ver) | None, ...}


class _Providers:
    """Who provides each virtual name: package names, looked up in the index when asked for."""

    def __init__(self, index: Mapping[str, Stanza]) -> None:
        self.index = index
        self._by_virtual: dict[str, list[tuple[str, str | None]]] = {}
        provides = index.provides() if isinstance(index, Record) else _provides(index)
        for name, text in provides:
            for virtual, version in _provided(text):
                self._by_virtual.setdefault(virtual, []).append((name, version))
        for found in self._by_virtual.values():
            found.sort(key=lambda nv: nv[0])

    def of(self, virtual: str) -> list[tuple[Stanza, str | None]]:
        return [(self.index[name], version) for name, version in self._by_virtual.get(virtual, ())]


def _provides(index: Mapping[str, Stanza]) -> Iterator[tuple[str, str]]:
    return ((st.name, st.provides) for st in index.values() if st.provides)


# one ``Provides`` entry as Debian writes them: a name, an optional architecture qualifier and an
# optional ``(= version)``; anything else is parsed by python-debian
_PROVIDE = re.compile(r"\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*=\s*([^\s()]+)\s*\))?\s*")


def _provided(text: str) -> list[tuple[str, str | None]]:
    """The (name, version or None) pairs a ``Provides`` field names, as python-debian reads them
    (:class:`PkgRelation`), without its cost for the common shape (about 10k stanzas provide)."""
    found = [_PROVIDE.fullmatch(part) for part in text.split(",")]
    if all(found):
        return [(m.group(1), m.group(2)) for m in found if m is not None]
    out: list[tuple[str, str | None]] = []
    for group in PkgRelation.parse_relations(text):
        for alt in group:
            ver = alt.get("version")
            out.append((alt["name"], ver[1] if ver else None))
    return out


_PROVIDERS: list[tuple[Mapping[str, Stanza], _Providers]] = []  # the last indexes' (this process)
_PROVIDERS_LOCK = threading.Lock()


def _providers_of(index: Mapping[str, Stanza]) -> _Providers:
    """What ``index`` provides, made once per index object: a build that resolves its builder
    and then its base again, with the libraries its wheels link, reads the same merged index
    (:func:`slimline.base.debian.archive._merged` keeps one per verified set of indexes)."""
    with _PROVIDERS_LOCK:
        for known, providers in _PROVIDERS:
            if known is index:
                return providers
    providers = _Providers(index)
    with _PROVIDERS_LOCK:
        _PROVIDERS[:] = [*_PROVIDERS[-1:], (index, providers)]
    return providers


def _fits(alt: Alternative, version: str | None) -> bool:
    constraint = alt.get("version")
    if constraint is None:
        return True
    if version is None:
        return False
    return relation_holds(version, constraint[0], constraint[1])


def _arch_ok(alt: Alternative, arch: str) -> bool:
    qual = alt.get("archqual")
    return qual in (None, "any", "native", arch)


def _text(alt: Alternative) -> str:
    ver = alt.get("version")
    return f"{alt['name']} ({ver[0]} {ver[1]})" if ver else str(alt["name"])


def resolve(
    index: Mapping[str, Stanza],
    roots: Sequence[str],
    *,
    arch: str,
    excludes: Mapping[str, str] = DEFAULT_EXCLUDES,
    suites: str = "the archive",
) -> Resolution:
    """Select the closure of ``roots`` (see the module contract).  Raises :class:`ResolveError`
    for a root or dependency that nothing in ``index`` satisfies."""
    walk = _Walk(index, arch=arch, excludes=excludes, suites=suites)
    for root in roots:
        walk.root(root)
    while walk.queue:
        walk.follow(walk.queue.popleft())
    return walk.resolution()


class _Walk:
    """One breadth-first walk of :func:`resolve`: the packages selected so far, what they provide,
    the edges found, the dependencies left out, and the selected packages still to follow."""

    def __init__(
        self, index: Mapping[str, Stanza], *, arch: str, excludes: Mapping[str, str], suites: str
    ) -> None:
        self.index, self.arch, self.excludes, self.suites = index, arch, excludes, suites
        self.providers = _providers_of(index)
        self.selected: dict[str, Stanza] = {}
        self.provided: dict[str, list[tuple[Stanza, str | None]]] = {}
        self.edges: dict[str, list[str]] = {}
        self.left: dict[str, list[str]] = {}
        self.notes: list[str] = []
        self.queue: deque[str] = deque()

    def root(self, name: str) -> None:
        """Select the root ``name`` (a real package, else its first provider)."""
        hits = self._candidates({"name": name, "version": None, "archqual": None})
        if not hits:
            raise ResolveError(name, f"no such package in {self.suites} for {self.arch}")
        if len(hits) > 1:
            self.notes.append(f"{name}: virtual, chose {hits[0].name} of {', '.join(h.name for h in hits)}")
        self._select(hits[0])

    def follow(self, name: str) -> None:
        """Satisfy each dependency group of the selected ``name``, ``Pre-Depends`` first."""
        st = self.selected[name]
        for field in (st.pre_depends, st.depends):
            if not field:
                continue
            for group in PkgRelation.parse_relations(field):
                self._satisfy(st, group)

    def _satisfy(self, st: Stanza, group: Sequence[Alternative]) -> None:
        """One group ``a | b`` of ``st``: already satisfied, left out, or a new selection."""
        done = next((hit for alt in group if (hit := self._satisfied_by_selected(alt)) is not None), None)
        if done is not None:
            self.edges[st.name].append(done.name)
            return
        excluded = next((alt["name"] for alt in group if alt["name"] in self.excludes), None)
        if excluded is not None:
            self.left.setdefault(excluded, []).append(st.name)
            return
        chosen = self._choose(st, group)
        self._select(chosen)
        self.edges[st.name].append(chosen.name)

    def _choose(self, st: Stanza, group: Sequence[Alternative]) -> Stanza:
        """The first alternative the index can satisfy, else :class:`ResolveError`."""
        for alt in group:
            hits = self._candidates(alt)
            if hits:
                if len(hits) > 1:
                    others = ", ".join(h.name for h in hits)
                    self.notes.append(f"{alt['name']}: virtual, chose {hits[0].name} of {others}")
                return hits[0]
        wanted = " | ".join(_text(a) for a in group)
        have = [f"{a['name']} {self.index[a['name']].version}" for a in group if a["name"] in self.index]
        raise ResolveError(
            wanted,
            f"not satisfiable from {self.suites} ({'; '.join(have) or 'no such package'})",
            needed_by=f"{st.name} {st.version}",
        )

    def _select(self, st: Stanza) -> None:
        if st.name in self.selected:
            return
        self.selected[st.name] = st
        self.edges[st.name] = []
        for group in PkgRelation.parse_relations(st.provides) if st.provides else ():
            for alt in group:
                ver = alt.get("version")
                self.provided.setdefault(alt["name"], []).append((st, ver[1] if ver else None))
        self.queue.append(st.name)

    def _satisfied_by_selected(self, alt: Alternative) -> Stanza | None:
        real = self.selected.get(alt["name"])
        if real is not None and _fits(alt, real.version):
            return real
        for st, ver in self.provided.get(alt["name"], ()):
            if _fits(alt, ver):
                return st
        return None

    def _candidates(self, alt: Alternative) -> list[Stanza]:
        if not _arch_ok(alt, self.arch):
            return []
        real = self.index.get(alt["name"])
        if real is not None and _fits(alt, real.version):
            return [real]
        return [st for st, ver in self.providers.of(alt["name"]) if _fits(alt, ver)]

    def resolution(self) -> Resolution:
        return Resolution(
            packages=tuple(sorted(self.selected.values(), key=lambda s: s.name)),
            left_out=tuple(
                LeftOut(name=n, needed_by=tuple(sorted(set(by))), reason=self.excludes[n])
                for n, by in sorted(self.left.items())
            ),
            edges={k: tuple(sorted(set(v))) for k, v in sorted(self.edges.items())},
            notes=tuple(self.notes),
        )


def closure(resolution: Resolution, roots: Sequence[str]) -> set[str]:
    """The names reachable from ``roots`` over the resolution's edges (roots not selected are ignored)."""
    seen: set[str] = set()
    todo = [r for r in roots if r in resolution.edges]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(resolution.edges.get(n, ()))
    return seen
