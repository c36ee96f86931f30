"""Debian's real headless ``chromium``, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: commands on fd 3, answers and events on fd 4, each a JSON text
ended by a NUL byte).

:func:`open_page` loads a file, waits for ``document.body.dataset.ready``, and hands back a
:class:`Page` that evaluates expressions, clicks, and takes screenshots.  Everything the page
tries to fetch (``Network.requestWillBeSent``), every console error or warning, uncaught
exception and browser log error (a blocked fetch, a CSP violation) is collected in
:attr:`Page.requests` and :attr:`Page.problems`.  Every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support import tool

WIDTH, HEIGHT = 1280, 900
TIMEOUT = 60.0


class Page:
    def __init__(self, send: Any, recv: Any, proc: subprocess.Popen[bytes]) -> None:
        self._send_fd, self._recv_fd, self._proc = send, recv, proc
        self._buffer = b""
        self._next = 0
        self.session = ""
        self.requests: list[str] = []
        self.problems: list[str] = []
        self.loaded = False

    def _write(self, message: dict[str, Any]) -> None:
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._recv_fd], [], [], left)[0]:
                raise AssertionError("chromium did not answer in time")
            chunk = os.read(self._recv_fd, 1 << 16)
            if not chunk:
                raise AssertionError(f"chromium closed its pipe (exit {self._proc.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        self._event(message)
        return message

    def _event(self, m: dict[str, Any]) -> None:
        method, params = m.get("method", ""), m.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {json.dumps(params['exceptionDetails'])[:800]}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            self.problems.append(f"console.{params['type']}: {json.dumps(params.get('args'))[:800]}")
        elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
            self.problems.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Page.loadEventFired":
            self.loaded = True

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> Any:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self._write(message)
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def wait(self, condition: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not self.evaluate(condition):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never satisfied {condition}")
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, dest: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(base64.b64decode(data))
        return dest


@contextlib.contextmanager
def open_page(path: Path) -> Iterator[Page]:
    """``path`` loaded in a fresh headless chromium (own profile, no sandbox: tests run as root)."""
    profile = Path(tempfile.mkdtemp(prefix="slimline-chromium-"))
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    # fd 3: commands in, fd 4: answers out; set up by the shell, from copies above 10
    cmd_fd, answer_fd = (
        fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10),
        fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10),
    )
    os.close(to_child_r)
    os.close(from_child_w)
    redirect = f'exec "$0" "$@" 3<&{cmd_fd} 4>&{answer_fd} {cmd_fd}<&- {answer_fd}>&-'
    cmd = [
        "/bin/bash",  # (dash takes single-digit fds only)
        "-c",
        redirect,
        tool("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        "about:blank",
    ]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(cmd_fd, answer_fd),
    )
    os.close(cmd_fd)
    os.close(answer_fd)
    page = Page(to_child_w, from_child_r, proc)
    try:
        target = page.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        page.session = page.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            page.call(domain)
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        page.call("Page.navigate", {"url": path.resolve().as_uri()})
        page.wait(
            "document.readyState === 'complete' && document.body && document.body.dataset.ready === '1'"
        )
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.call("Browser.close", session=False)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        os.close(to_child_w)
        os.close(from_child_r)
        shutil.rmtree(profile, ignore_errors=True)
