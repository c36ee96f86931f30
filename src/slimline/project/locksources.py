"""Every place ``poetry.lock`` says a package comes from must be one the project configured.

Contract of :func:`check` (run before anything is downloaded): a package locked

* without a source table comes from the default index: accepted;
* from a ``legacy`` source (an index): its URL must be one of ``[[tool.poetry.source]]`` or the
  default index, compared without credentials, trailing slash or case of scheme and host;
* from a ``url`` or ``git`` source: the URL or repository must be named in ``pyproject.toml``
  (a dependency's ``url``/``git`` key or a PEP 508 ``name @ URL``; ``git+URL@rev#fragment``
  names the repository ``URL``, as Poetry locks it) or by another locked package's dependency
  entry (how a transitive URL dependency is locked);
* from a ``directory`` or ``file`` source: a path, not checked here (it is read as it is).

Anything else is refused with one error listing every such package.  Poetry's ``files`` entries
carry only file names: their URLs come from the index page of the package's (checked) source at
download time, and those are accepted on any host, because indexes commonly serve files from
another host than their pages and the bytes are pinned by the lock's sha256 in any case (see
:mod:`slimline.artifacts.index`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from slimline.errors import ExitStatus, SlimlineError, redact
from slimline.project.lockfile import Lock
from slimline.project.pyproject import Project

__all__ = ["LockSourceError", "check"]


class LockSourceError(SlimlineError):
    exit_status = ExitStatus.INPUT
    pass


def normal(url: str) -> str:
    """``url`` as compared: no credentials, fragment or trailing slash; scheme and host in lower case."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), parts.query, ""))


def check(project: Project, lock: Lock, *, default_index: str) -> None:
    """Refuse ``lock`` if a package in it comes from a place ``project`` does not configure."""
    indexes = {normal(s.url) for s in project.sources if s.url} | {normal(default_index)}
    named = {normal(u) for u in _declared(project.data)}
    for p in lock.packages:
        for alternatives in p.dependencies.values():
            named.update(normal(u) for d in alternatives for u in (d.url, d.git) if u)
    bad, names = [], []
    for p in lock.packages:
        s = p.source
        if s is None or s.type in ("directory", "file"):
            continue
        allowed = indexes if s.type == "legacy" else named if s.type in ("url", "git") else set()
        if normal(s.url) not in allowed:
            bad.append(f"  - {p.name} {p.version}: {s.type} {redact(s.url)}")
            names.append(p.name)
    if bad:
        raise LockSourceError(
            "poetry.lock takes these packages from places pyproject.toml does not configure:\n"
            + "\n".join(bad),
            doing=f"checking the sources of {lock.path}",
            hint="a lock edited by hand (or for another project) can point a package anywhere: "
            "add the source to [[tool.poetry.source]] if it is meant; else lock them again with "
            f"`poetry update --lock {' '.join(dict.fromkeys(names))}` (`poetry lock` alone keeps "
            "a locked package's source, such as a git repository pyproject.toml no longer names, "
            "while its version still fits)",
        )


def _declared(data: Mapping[str, Any]) -> Iterable[str]:
    """Every URL written in ``pyproject.toml``: string values, and the URL of ``name @ URL``."""
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and "://" in value:
            yield value
            if "@" in value.split("://", 1)[0]:  # "name @ https://...; marker"
                url = value.split("@", 1)[1].split(";", 1)[0].strip()
                yield url
                if url.startswith("git+"):  # Poetry locks "git+https://h/r.git@rev" as "https://h/r.git"
                    yield _vcs_repository(url)


def _vcs_repository(url: str) -> str:
    """The repository of a PEP 508 VCS URL: no ``git+`` prefix, ``@rev`` or fragment."""
    parts = urlsplit(url.removeprefix("git+"))
    path = parts.path.rsplit("@", 1)[0] if "@" in parts.path else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
