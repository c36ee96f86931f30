"""A client for PyPI-style simple indexes: PEP 691 JSON first, PEP 503 HTML as the fallback.

Contract: :meth:`Index.files` returns every file the index lists for a project, with absolute
URLs (relative ones are resolved against the page's final URL, or an HTML ``<base href>``) and
the sha256 the index advertises (None when it gives none).  A page is read up to
:data:`slimline.http.INDEX_PAGE_CAP` (16 MiB) and may list up to
:data:`slimline.http.INDEX_FILES_CAP` files (more is refused), and is kept in memory for the
life of the :class:`Index` (one build).  :meth:`Index.find` keeps only the file it was asked
for: a build that needs one file of each of hundreds of projects (some list thousands of
files) holds the pages it is reading, not every page it read.  Nothing is written to disk:
with a lock file's hashes a warm build never needs an index page at all.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from packaging.utils import canonicalize_name

from slimline.errors import ExitStatus, SlimlineError, redact
from slimline.http import INDEX_FILES_CAP, INDEX_PAGE_CAP, BasicAuth, Http, status_error

__all__ = ["Index", "IndexFile", "IndexPageError", "files", "project_url"]

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_JSON_TYPES = ("application/vnd.pypi.simple.v1+json", "application/json")


@dataclass(frozen=True, slots=True)
class IndexFile:
    filename: str
    url: str  # absolute, without the #fragment
    sha256: str | None  # hex, lower case, as the index advertises it
    requires_python: str | None
    yanked: bool


class IndexPageError(SlimlineError):
    """An index page could not be read or understood."""

    exit_status = ExitStatus.NETWORK

    def __init__(self, *, project: str, index_url: str, problem: str, hint: str = "") -> None:
        safe = redact(index_url)
        super().__init__(problem, doing=f"reading the index page of {project} at {safe}", hint=hint)
        self.project = project
        self.index_url = safe


def project_url(index_url: str, project: str) -> str:
    return f"{index_url.rstrip('/')}/{canonicalize_name(project)}/"


class Index:
    """Reads and memoises index pages; thread-safe, one per build."""

    def __init__(self, *, http: Http) -> None:
        self._http = http
        self._pages: dict[tuple[str, str], list[IndexFile]] = {}
        self._found: dict[tuple[tuple[str, str], str], IndexFile | None] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def files(self, project: str, *, index_url: str, auth: BasicAuth | None) -> list[IndexFile]:
        key = (index_url.rstrip("/"), str(canonicalize_name(project)))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._pages:
                self._pages[key] = _fetch(project, index_url=index_url, auth=auth, http=self._http)
            return self._pages[key]

    def find(
        self, project: str, filename: str, *, index_url: str, auth: BasicAuth | None
    ) -> IndexFile | None:
        """The file named ``filename`` on ``project``'s page, or None (see the module's contract)."""
        key = (index_url.rstrip("/"), str(canonicalize_name(project)))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._pages:
                return next((f for f in self._pages[key] if f.filename == filename), None)
            if (key, filename) not in self._found:
                page = _fetch(project, index_url=index_url, auth=auth, http=self._http)
                self._found[key, filename] = next((f for f in page if f.filename == filename), None)
            return self._found[key, filename]


def files(project: str, *, index_url: str, auth: BasicAuth | None, http: Http) -> list[IndexFile]:
    """Read one project page without memoising it (see :class:`Index` for the memoised form)."""
    return _fetch(project, index_url=index_url, auth=auth, http=http)


def _fetch(project: str, *, index_url: str, auth: BasicAuth | None, http: Http) -> list[IndexFile]:
    url = project_url(index_url, project)
    doing = f"reading the index page of {project}"
    resp = http.request(
        "GET", url, headers={"Accept": ACCEPT}, auth=auth, stream=False, doing=doing, cap=INDEX_PAGE_CAP
    )
    if resp.status == 404:
        raise IndexPageError(
            project=project,
            index_url=index_url,
            problem="the index has no such project (HTTP 404)",
            hint="check the source URL in pyproject.toml and that the lock was made against it",
        )
    if resp.status != 200:
        raise status_error(url, resp.status, doing=doing, auth=auth, final=resp.geturl() or "")
    final = resp.geturl() or url
    if not final.startswith(("http://", "https://")):
        final = urljoin(url, final)
    body: bytes = resp.data
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    try:
        if ctype in _JSON_TYPES:
            return _parse_json(body, base=final)
        return _parse_html(body.decode(_charset(resp.headers.get("Content-Type", ""))), base=final)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise IndexPageError(
            project=project,
            index_url=index_url,
            problem=f"the page is not a valid simple index page ({ctype or 'no content type'}): {err}",
            hint="check that the source URL points at a PEP 503/691 simple index",
        ) from err


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _split_fragment(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url)
    sha: str | None = None
    if parts.fragment:
        algo, _, value = parts.fragment.partition("=")
        if algo == "sha256" and value:
            sha = value.lower()
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, "")), sha


def _filename_of(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _parse_json(body: bytes, *, base: str) -> list[IndexFile]:
    # Parsed JSON can take 25 times its size: count the objects and arrays before parsing (a
    # file's entry holds at most four), so that a page of empty objects cannot fill the memory.
    if body.count(b"{") + body.count(b"[") > 4 * INDEX_FILES_CAP + 64:
        raise ValueError(f"it holds more JSON objects than a page of {INDEX_FILES_CAP} files would")
    data = json.loads(body)
    out: list[IndexFile] = []
    for entry in data["files"]:
        url, frag_sha = _split_fragment(urljoin(base, entry["url"]))
        hashes = entry.get("hashes") or {}
        sha = hashes.get("sha256")
        yanked = entry.get("yanked", False)
        out.append(
            IndexFile(
                filename=entry.get("filename") or _filename_of(url),
                url=url,
                sha256=sha.lower() if isinstance(sha, str) else frag_sha,
                requires_python=entry.get("requires-python") or None,
                yanked=yanked is not False and yanked is not None,
            )
        )
    return out


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            if len(self.anchors) >= INDEX_FILES_CAP:
                raise ValueError(f"it has more than {INDEX_FILES_CAP} links")
            self.anchors.append(dict(attrs))


def _parse_html(text: str, *, base: str) -> list[IndexFile]:
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    page_base = urljoin(base, parser.base) if parser.base else base
    out: list[IndexFile] = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, sha = _split_fragment(urljoin(page_base, href))
        out.append(
            IndexFile(
                filename=_filename_of(url),
                url=url,
                sha256=sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked="data-yanked" in attrs,
            )
        )
    return out
