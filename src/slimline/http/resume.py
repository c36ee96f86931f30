"""Downloads that survive a broken connection.

:class:`Resuming` is a file-like view of one download: when the connection breaks, it asks
again from the byte where it stopped (``Range``, with ``If-Range`` when the first answer gave a
validator) or, if the server ignores ranges, from the start, skipping what it already gave (and,
when no hash will be checked, making sure those bytes are the same).  Errors raised here are
plain exceptions (:class:`~slimline.http.deadlines.TransferError`); the client turns them into
messages.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from slimline.http.deadlines import Deadline, Expired, TransferError
from slimline.report import Reporter, Ticker, progress

if TYPE_CHECKING:
    import urllib3

__all__ = ["Broken", "Changed", "Oversize", "Resuming"]

CHUNK = 1 << 20


class Broken(TransferError):
    """A download broke off on every attempt; ``reasons`` says how, one per attempt."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class Oversize(TransferError):
    """More bytes came than the known size of the file."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class Changed(TransferError):
    """The file changed between two attempts of one download."""


class Resuming:
    """The bytes of one download as a read-only stream (``read(n)``), across broken connections.

    ``open_(headers)`` sends the GET with these extra headers and returns the response whatever
    its status; ``fail(response)`` makes the exception for a status that is neither 200 nor 206.
    At most ``attempts`` connections are made, all within ``deadline``; ``size``, when known,
    is the exact length of the file.  With ``check_prefix`` (no hash will be checked at the
    end) a restart compares the bytes it skips with the ones already given.
    """

    def __init__(
        self,
        open_: Callable[[Mapping[str, str]], urllib3.BaseHTTPResponse],
        *,
        fail: Callable[[urllib3.BaseHTTPResponse], Exception],
        deadline: Deadline,
        attempts: int,
        size: int | None,
        check_prefix: bool,
    ) -> None:
        self._open, self._fail, self._deadline = open_, fail, deadline
        self._attempts, self._size = attempts, size
        self._resp: urllib3.BaseHTTPResponse | None = None
        self._validator = ""  # ETag or Last-Modified of the first answer, for If-Range
        self._ranges = True
        self._prefix = hashlib.sha256() if check_prefix else None
        self.offset = 0
        self.breaks: list[str] = []
        self.length = size  # the file's length: ``size``, else what the first answer declared

    def read(self, n: int = -1) -> bytes:
        from http.client import HTTPException

        import urllib3

        n = CHUNK if n < 0 else n
        while True:
            try:
                if self._resp is None:
                    self._resp = self._start()
                data = self._resp.read(n, decode_content=False)
            except (urllib3.exceptions.HTTPError, OSError, HTTPException) as err:
                self._broken(_why(err))
                continue
            if not data and self._size is not None and self.offset < self._size:
                self._broken(f"ended after {self.offset} of {self._size} bytes")
                continue
            if not data and self._deadline.passed():
                raise Expired(self._deadline)  # the watchdog ended it: not a complete file
            self.offset += len(data)
            if self._size is not None and self.offset > self._size:
                raise Oversize(self._size)
            if self._prefix is not None:
                self._prefix.update(data)
            return data

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp.release_conn()
            self._resp = None

    def _broken(self, reason: str) -> None:
        """Note a break; raise if the deadline passed or the attempts are used up, else wait a little."""
        self.close()
        if self._deadline.passed():
            raise Expired(self._deadline)
        self.breaks.append(f"{reason}, after byte {self.offset}")
        if len(self.breaks) >= self._attempts:
            raise Broken(self.breaks)
        wait = min(0.25 * 2 ** (len(self.breaks) - 1), 8.0)
        if wait >= self._deadline.left():
            raise Broken(self.breaks)  # no time left for another try
        time.sleep(wait)

    def _start(self) -> urllib3.BaseHTTPResponse:
        """A response positioned at :attr:`offset`: a 206 from there, or a 200 whose first
        ``offset`` bytes were skipped."""
        headers = {}
        if self.offset and self._ranges:
            headers["Range"] = f"bytes={self.offset}-"
            if self._validator:
                headers["If-Range"] = self._validator
        resp = self._open(headers)
        if resp.status == 206 and self.offset and _range_start(resp) == self.offset:
            return resp
        if resp.status in (206, 416) and self.offset:
            self._ranges = False  # a range the server got wrong: ask for the whole file next time
            resp.close()
            raise OSError(f"the server answered a range request with HTTP {resp.status}")
        if resp.status != 200:
            raise self._fail(resp)
        self._check_length(resp)
        if not self.offset:
            etag = resp.headers.get("ETag", "")
            self._validator = (
                etag if etag and not etag.startswith("W/") else resp.headers.get("Last-Modified", "")
            )
        else:
            self._skip(resp)
        return resp

    def _check_length(self, resp: urllib3.BaseHTTPResponse) -> None:
        declared = resp.headers.get("Content-Length", "")
        if self.length is None and declared.isdigit():
            self.length = int(declared)
        if self._size is not None and declared.isdigit() and int(declared) > self._size:
            resp.close()
            raise Oversize(self._size)

    def _skip(self, resp: urllib3.BaseHTTPResponse) -> None:
        """Read past the ``offset`` bytes already given (a restart); check them when asked to."""
        left, again = self.offset, hashlib.sha256()
        while left:
            data = resp.read(min(left, CHUNK), decode_content=False)
            if not data:
                raise OSError("the restarted download ended early")
            again.update(data)
            left -= len(data)
        if self._prefix is not None and again.digest() != self._prefix.copy().digest():
            resp.close()
            raise Changed("the file changed between two attempts")


class Shown:
    """``reader``'s reads shown as the progress task ``task`` on ``report``; the task starts at
    the first read, once the answer has declared its length.  Closing closes ``reader``."""

    def __init__(self, reader: Resuming, report: Reporter | None, task: str) -> None:
        self._reader, self._report, self._task = reader, report, task
        self._shown: AbstractContextManager[Ticker] | None = None
        self._bar: Ticker | None = None

    def read(self, n: int = -1) -> bytes:
        data = self._reader.read(n)
        if self._bar is None:
            self._shown = progress(self._report, self._task, self._reader.length)
            self._bar = self._shown.__enter__()
        self._bar.advance(len(data))
        return data

    def close(self) -> None:
        try:
            if self._shown is not None:
                self._shown.__exit__(None, None, None)
        finally:
            self._shown = None
            self._reader.close()


def _range_start(resp: urllib3.BaseHTTPResponse) -> int:
    """The first byte of a 206 (``Content-Range: bytes START-END/TOTAL``), -1 if unreadable."""
    value = resp.headers.get("Content-Range", "")
    unit, _, rest = value.partition(" ")
    start = rest.split("-", 1)[0]
    return int(start) if unit == "bytes" and start.isdigit() else -1


def _why(err: BaseException) -> str:
    """A short reason for a broken connection: the innermost cause urllib3 wrapped."""
    while err.args and isinstance(err.args[-1], BaseException):
        err = err.args[-1]
    text = str(err).split("\n")[0][:120]
    name = type(err).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name
