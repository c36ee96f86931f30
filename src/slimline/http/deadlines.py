"""Deadlines for requests and downloads, bounded drains, and retries that keep the deadline.

Deadlines.  A :class:`Deadline` is the end of one request (connect, redirects, retries and the
whole body) or of one download (every attempt).  :func:`scope` makes it the calling thread's;
each connection urllib3 opens or reuses in that thread is armed with it (``connect`` and
``request`` of :func:`pool_classes`' connections), and a watchdog thread shuts the socket down
when it passes, so a server that sends a byte every few seconds, in the headers or the body,
cannot hold a build.  A request runs under the thread's scope if it has one (a download or a
blob transfer: one deadline for all its requests), else under a deadline of its own.  A
connection armed once stays armed after its request (the body is read
later, outside the scope); a later request re-arms it.  Retries (:func:`retry_class`) give up
instead of sleeping past the deadline, and refuse redirects to anything but http(s).

Bounded drains.  urllib3 drains a response before it retries or follows a redirect; the
responses made here read at most ``drain_limit`` bytes for that, then close the connection.

urllib3 is imported on first use: a rebuild that never touches the network never loads it.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import urllib3

__all__ = [
    "Deadline",
    "Expired",
    "TransferError",
    "current",
    "earliest",
    "pool_classes",
    "retry_class",
    "scope",
]


class Deadline:
    """A point in time (monotonic) by which something must be done; ``setting`` names the
    environment variable that sets its length, for messages."""

    def __init__(self, seconds: float, *, setting: str) -> None:
        self.seconds = seconds
        self.setting = setting
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0


class TransferError(Exception):
    """Base of what goes wrong here; deliberately neither an ``OSError`` nor a urllib3 error, so
    that urllib3 does not retry it."""


class Expired(TransferError):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__(f"deadline of {deadline.seconds:g} s passed")
        self.deadline = deadline


_local = threading.local()


def current() -> Deadline | None:
    """The deadline of the calling thread's innermost :func:`scope`, if any."""
    value: Deadline | None = getattr(_local, "deadline", None)
    return value


@contextmanager
def scope(deadline: Deadline) -> Iterator[Deadline]:
    """Run the block under ``deadline`` (the enclosing scope's comes back after it)."""
    outer = current()
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = outer


def earliest(first: Deadline | None, second: Deadline) -> Deadline:
    return second if first is None or second.at < first.at else first


class _Watchdog:
    """Shuts down the socket of every armed connection whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, weakref.ref[Any]]] = {}
        self._thread: threading.Thread | None = None

    def arm(self, conn: Any, deadline: Deadline) -> None:
        if deadline.passed():
            raise Expired(deadline)
        with self._cond:
            self._armed[id(conn)] = (deadline.at, weakref.ref(conn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="slimline-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key in [k for k, (at, _) in self._armed.items() if at <= now]:
                    _cut(self._armed.pop(key)[1]())
                soonest = min((at for at, _ in self._armed.values()), default=None)
                self._cond.wait(None if soonest is None else soonest - now)


def _cut(conn: Any) -> None:
    """Shut the connection's socket down: a read blocked on it returns at once (EOF or error).
    ``socket.socket.shutdown`` also works on a TLS socket without touching its TLS state."""
    sock = getattr(conn, "sock", None) or getattr(conn, "armed_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


@functools.cache
def pool_classes(drain_limit: int) -> dict[str, Any]:
    """urllib3 connection pool classes (by scheme) whose connections obey the thread's deadline
    and whose responses drain at most ``drain_limit`` bytes."""
    from http.client import HTTPException

    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Response(urllib3.HTTPResponse):
        def drain_conn(self) -> None:
            left = drain_limit
            try:
                while left > 0 and (data := self._raw_read(min(left, 1 << 16))):
                    left -= len(data)
            except (urllib3.exceptions.HTTPError, OSError, HTTPException):
                pass
            if left <= 0:
                self.close()  # more is coming: drop the connection rather than read on

    def guarded(base: type[HTTPConnection]) -> type[HTTPConnection]:
        class Guarded(base):  # type: ignore[misc,valid-type]
            def connect(self) -> None:
                deadline = current()
                if deadline is not None:
                    _WATCHDOG.arm(self, deadline)
                super().connect()
                # http.client drops .sock when an answer ends with the connection ("Connection:
                # close") although the answer is still being read from it: keep it for the watchdog
                self.armed_sock = self.sock

            def request(self, *args: Any, **kwargs: Any) -> None:
                deadline = current()
                if deadline is not None:
                    _WATCHDOG.arm(self, deadline)
                super().request(*args, **kwargs)

            def getresponse(self) -> urllib3.HTTPResponse:
                resp = cast(urllib3.HTTPResponse, super().getresponse())
                resp.__class__ = Response
                return resp

        return Guarded

    class Pool(HTTPConnectionPool):
        ConnectionCls = guarded(HTTPConnection)

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = guarded(HTTPSConnection)  # type: ignore[assignment]

    return {"http": Pool, "https": TlsPool}


@functools.cache
def retry_class() -> type[urllib3.Retry]:
    """A ``urllib3.Retry`` that never waits past the thread's deadline (it gives up and hands
    back the last answer instead) and follows redirects only to http(s) URLs."""
    import urllib3
    from urllib3.exceptions import MaxRetryError, ResponseError

    class DeadlineRetry(urllib3.Retry):
        def increment(self, *args: Any, **kwargs: Any) -> DeadlineRetry:
            names = ("method", "url", "response", "error", "_pool", "_stacktrace")
            given = {**dict(zip(names, args, strict=False)), **kwargs}
            response, url, pool = given.get("response"), given.get("url"), cast(Any, given.get("_pool"))
            location = response.get_redirect_location() if response is not None else None
            if location and urlsplit(urljoin(str(url or ""), location)).scheme not in ("http", "https"):
                scheme = urlsplit(location).scheme
                raise MaxRetryError(pool, url, ResponseError(f"refused a redirect to a {scheme}: URL"))
            new: DeadlineRetry = super().increment(*args, **kwargs)
            deadline = current()
            wait = 0.0 if location else new._wait(response)  # urllib3 does not wait before a redirect
            if deadline is not None and wait >= deadline.left():
                error = given.get("error")
                raise MaxRetryError(pool, url, error or ResponseError("retrying would pass the deadline"))
            return new

        def _wait(self, response: Any) -> float:
            """How long :meth:`sleep` would wait before the next try."""
            if response is not None and self.respect_retry_after_header:
                try:
                    after = self.get_retry_after(response)
                except urllib3.exceptions.InvalidHeader:
                    after = None
                if after:
                    return after
            return self.get_backoff_time()

    return DeadlineRetry
