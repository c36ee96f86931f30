"""The errors of :mod:`slimline.http`, and the messages that say what a status or a failure means.

Contract: every URL in a message went through :func:`slimline.errors.redact`; a credential is
named by where it came from (``BasicAuth.source``), never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from slimline.errors import ExitStatus, SlimlineError, redact
from slimline.http import deadlines
from slimline.http.limits import MAX_REDIRECTS

if TYPE_CHECKING:
    from slimline.http.client import BasicAuth

__all__ = ["DeadlineExceeded", "HttpError", "RedirectRefused", "TooLarge", "status_error"]


class HttpError(SlimlineError):
    """A request failed: ``status`` is the HTTP status, or 0 when no response came."""

    exit_status = ExitStatus.NETWORK

    def __init__(self, *, url: str, status: int, problem: str, doing: str = "", hint: str = "") -> None:
        safe = redact(url)
        super().__init__(problem, doing=doing or f"fetching {safe}", hint=hint)
        self.url = safe
        self.status = status


class TooLarge(HttpError):
    """An answer bigger than its cap (or than the known size of a file)."""

    def __init__(self, *, url: str, limit: int, what: str, status: int = 200, doing: str = "") -> None:
        super().__init__(
            url=url,
            status=status,
            problem=f"the answer from {redact(url)} is larger than {_size(limit)}, the most slimline "
            f"reads for {what}",
            doing=doing,
            hint="the server sends far more than it should: check that the URL points where it should "
            "(a proxy or a captive portal may be answering instead)",
        )
        self.limit = limit


class DeadlineExceeded(HttpError):
    """A request or download did not complete within its deadline."""

    def __init__(self, *, url: str, deadline: deadlines.Deadline, doing: str = "") -> None:
        super().__init__(
            url=url,
            status=0,
            problem=f"{redact(url)} gave no complete answer within the deadline of {deadline.seconds:g} s",
            doing=doing,
            hint="the server or the network is too slow or stalls; if it is only slow, allow more time "
            f"with {deadline.setting}=SECONDS",
        )
        self.deadline = deadline


class RedirectRefused(HttpError):
    """A redirect loop, or a redirect to something else than http(s)."""


def _size(n: int) -> str:
    return f"{n >> 20} MiB ({n} bytes)" if n >= 1 << 20 and not n % (1 << 20) else f"{n} bytes"


def host_of(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]


def unanswered(url: str, reason: BaseException, deadline: deadlines.Deadline, doing: str) -> HttpError:
    """The error for a request that got no usable response."""
    import urllib3

    if deadline.passed() or isinstance(reason, deadlines.Expired):
        return DeadlineExceeded(url=url, deadline=deadline, doing=doing)
    if isinstance(reason, urllib3.exceptions.ResponseError) and "too many redirects" in str(reason):
        return RedirectRefused(
            url=url,
            status=0,
            problem=f"too many redirects (more than {MAX_REDIRECTS}): a redirect loop",
            doing=doing,
            hint="the server (or a proxy) keeps redirecting; check the URL",
        )
    if isinstance(reason, urllib3.exceptions.ResponseError) and "refused a redirect" in str(reason):
        hint = "slimline follows redirects to http and https URLs only; check the URL"
        return RedirectRefused(url=url, status=0, problem=redact(str(reason)), doing=doing, hint=hint)
    hint = "check the network, a proxy, or the host name"
    if isinstance(reason, urllib3.exceptions.ProtocolError) and "header" in str(reason):
        hint = "the server sent too many or too long header lines; it is misbehaving, or is not the right one"
    elif isinstance(reason, urllib3.exceptions.SSLError):
        hint = (
            "the TLS certificate was not trusted; add your CA to the system trust store "
            "or point SSL_CERT_FILE at a bundle that holds it"
        )
    problem = redact(f"{type(reason).__name__}: {reason}")
    return HttpError(url=url, status=0, problem=problem, doing=doing, hint=hint)


def download_error(err: deadlines.TransferError, *, url: str, doing: str) -> HttpError:
    """The error for a download that :class:`~slimline.http.resume.Resuming` gave up on."""
    from slimline.http import resume

    if isinstance(err, deadlines.Expired):
        return DeadlineExceeded(url=url, deadline=err.deadline, doing=doing)
    if isinstance(err, resume.Oversize):
        return TooLarge(
            url=url, limit=err.limit, what="this file, whose size was given in advance", doing=doing
        )
    if isinstance(err, resume.Broken):
        problem = f"the download broke off {len(err.reasons)} times ({'; '.join(dict.fromkeys(err.reasons))})"
        hint = "the server or the network keeps dropping the connection; try again later, or check a proxy"
    else:
        problem, hint = "the file changed on the server while it was being downloaded", "try again"
    return HttpError(url=url, status=0, problem=problem, doing=doing, hint=hint)


def status_error(
    url: str, status: int, *, doing: str, auth: BasicAuth | None = None, final: str = ""
) -> HttpError:
    """The error for an answer with an unwanted ``status``; ``auth`` is what was sent to ``url``,
    ``final`` the URL that answered (after redirects; credentials do not follow to another host)."""
    asked, answered = host_of(url), host_of(urljoin(url, final))  # urllib3 may give only the path
    source = auth.source if auth is not None and auth.source else "the configuration"
    problem = f"HTTP {status}"
    hints: dict[int, Callable[[], str]] = {
        401: lambda: (
            "the server wants credentials: set POETRY_HTTP_BASIC_<SOURCE>_USERNAME/_PASSWORD, "
            "add them to Poetry's auth.toml, or add the host to ~/.netrc"
        ),
        403: lambda: (
            f"the credentials from {source} were refused or lack access"
            if auth
            else "access was refused; the server may want credentials"
        ),
        404: lambda: "the file is not there; is the URL or the index right?",
        429: lambda: "the server is rate-limiting requests; wait a while and try again",
    }
    hint = hints.get(status, lambda: "try again later, or check the server")()
    if status == 401 and answered != asked:
        hint = (
            f"the request was redirected to {answered}, which wants credentials; slimline sends "
            f"credentials only to {asked}, the host they are configured for"
        )
    elif status == 401 and auth is not None:
        problem = "HTTP 401: the credentials were rejected"
        hint = f"the credentials from {source} were rejected; check them there"
    return HttpError(url=url, status=status, problem=problem, doing=doing, hint=hint)
