"""The links ``update-alternatives`` would make, read from the packages' ``postinst`` scripts.

Maintainer scripts are not run, yet some libraries are found only through an alternative: Debian's
``libblas3`` ships ``.../blas/libblas.so.3`` and its ``postinst`` links ``.../libblas.so.3`` to it,
so without the link a program that needs ``libblas.so.3`` does not start.

Contract: :func:`parse` finds in a ``postinst`` each call ``update-alternatives [options] --install
LINK NAME PATH PRIORITY [--slave LINK NAME PATH]...`` whose words are all literal (a call with a
``$`` or a backquote in a word is skipped: its values are known only when the script runs).
:func:`choose` picks per alternative NAME the entry with the highest priority whose PATH the tree
holds (ties: the package that sorts first), as update-alternatives' automatic mode does, and
gives the links it makes: LINK -> PATH for it and for each slave whose PATH the tree holds,
where the tree has nothing at LINK yet.  The links are direct (no ``/etc/alternatives`` step:
the image has no update-alternatives to change them).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Alternative", "choose", "parse"]

_CALL = re.compile(r"\bupdate-alternatives\b(?=([^\n]*))")  # each call, then the rest of its line
_OPTIONS_WITH_VALUE = frozenset({"--altdir", "--admindir", "--instdir", "--root", "--log"})


@dataclass(frozen=True, slots=True)
class Alternative:
    package: str
    name: str
    priority: int
    links: tuple[tuple[str, str], ...]  # (link, path): the master first, then the slaves


def parse(postinst: bytes, *, package: str) -> list[Alternative]:
    """The literal ``--install`` calls of a ``postinst`` (see the module's contract)."""
    text = postinst.decode("utf-8", errors="replace").replace("\\\n", " ")
    out: list[Alternative] = []
    for match in _CALL.finditer(text):
        words = _words(match[1])
        if words is not None:
            found = _install(words, package=package)
            if found is not None:
                out.append(found)
    return out


def choose(alternatives: Iterable[Alternative], *, holds: Callable[[str], bool]) -> dict[str, str]:
    """Link -> path for the alternatives the tree can serve (``holds(path)``: the tree has it;
    paths relative to the root, as the tree names them)."""
    best: dict[str, Alternative] = {}
    for alt in sorted(alternatives, key=lambda a: (a.name, -a.priority, a.package)):
        if alt.name not in best and holds(alt.links[0][1]):
            best[alt.name] = alt
    links: dict[str, str] = {}
    for name in sorted(best):
        for link, path in best[name].links:
            if holds(path) and not holds(link) and link not in links:
                links[link] = path
    return links


def _words(call: str) -> list[str] | None:
    """The words of one call, up to the first shell operator; None if one is not literal."""
    lexer = shlex.shlex(call, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    try:
        for word in lexer:
            if word and set(word) <= set(";&|()"):
                break
            words.append(word)
    except ValueError:  # an unclosed quote: not a call this reader understands
        return None
    return None if any("$" in w or "`" in w for w in words) else words


def _install(words: list[str], *, package: str) -> Alternative | None:
    i = 0
    while i < len(words) and words[i] != "--install":
        i += 2 if words[i] in _OPTIONS_WITH_VALUE else 1
    head = words[i + 1 : i + 5]
    if len(head) < 4 or not head[3].lstrip("-").isdigit():
        return None
    link, name, path, priority = head
    links = [(_rel(link), _rel(path))]
    rest = words[i + 5 :]
    while len(rest) >= 4 and rest[0] == "--slave":
        links.append((_rel(rest[1]), _rel(rest[3])))
        rest = rest[4:]
    if not all(a and b for a, b in links):
        return None
    return Alternative(package, name, int(priority), tuple(links))


def _rel(path: str) -> str:
    """An absolute path as the tree names it (relative to the root); "" for anything else."""
    if not path.startswith("/") or ".." in path.split("/"):
        return ""
    return path.lstrip("/")
