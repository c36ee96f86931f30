"""Blobs on a registry: downloaded into the cache, verified; uploaded with as little traffic as possible.

:func:`fetch_blob` streams a blob into the cache's blob store, checking its size (no more and no
fewer bytes than the manifest says) and its sha256 as it goes: nothing unverified is stored, and
a download that broke off is retried.  :class:`Uploader` makes a blob exist in the session's
repository: HEAD first (present: nothing sent); else a cross-repository mount from a repository
of the same registry known to hold it; else a monolithic PUT (small blobs) or PATCH chunks of at
least the registry's ``OCI-Chunk-Min-Length`` closed by a PUT (large ones).  Both work through a
:class:`~slimline.oci.registry_client.Session`, so errors are its :class:`RegistryError`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import quote, urljoin

import urllib3

from slimline.cache.store import Cache
from slimline.errors import HashMismatch
from slimline.http import release
from slimline.oci.reference import RegistryRef
from slimline.oci.registry_client import RegistryError, Session, hex_of
from slimline.report import Counted, Reporter, Ticker, progress

__all__ = ["Uploader", "fetch_blob"]

CHUNK = 1 << 20  # bytes read from a download at a time


class _Exactly:
    """Reads a response, failing if it is longer or shorter than ``size`` bytes."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, size: int, what: str, ref: RegistryRef) -> None:
        self._raw, self._left, self._size, self._what, self._ref = raw, size, size, what, ref

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(CHUNK if n < 0 else n, decode_content=False)
        self._left -= len(data)
        if self._left < 0 or (not data and self._left > 0):
            raise RegistryError(
                f"the {self._what} has {'more' if self._left < 0 else 'fewer'} bytes than the {self._size} "
                "its manifest says",
                ref=self._ref,
                doing=f"pulling {self._ref}",
                hint="the registry or a proxy altered it; do not trust it",
            )
        return data


def fetch_blob(sess: Session, cache: Cache, digest: str, size: int, what: str, *, attempts: int = 3) -> Path:
    """Stream a blob into the cache, verifying size and digest; retry a download that broke off.
    Other bytes than ``digest`` names raise :class:`~slimline.errors.HashMismatch` (nothing stored).
    All attempts share one download deadline (``SLIMLINE_DOWNLOAD_DEADLINE``)."""
    with sess.transfer_scope():
        return _fetch_blob(sess, cache, digest, size, what, attempts=attempts)


def _fetch_blob(sess: Session, cache: Cache, digest: str, size: int, what: str, *, attempts: int) -> Path:
    ref = sess.ref
    for attempt in range(attempts):
        resp = sess.request(
            "GET", f"/v2/{ref.repository}/blobs/{digest}", stream=True, what=f"fetching the {what}"
        )
        try:
            cache.put_stream(
                cast(BinaryIO, _Exactly(resp, size, what, ref)),
                expected=hex_of(digest, ref=ref),
                what=f"{what} of {ref}",
            )
            return cache.blob_path(hex_of(digest, ref=ref))
        except HashMismatch as err:  # the cache's hint is about lock files: this is the registry's doing
            raise HashMismatch(
                what=f"the {what} of {ref}",
                expected=digest,
                actual=err.actual,
                doing=f"pulling {ref}",
                hint="the registry or a proxy altered it; do not trust it",
            ) from err
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError) as err:
            if attempt + 1 == attempts:
                raise RegistryError(
                    f"the download broke off: {type(err).__name__}",
                    ref=ref,
                    doing=f"fetching the {what} of {ref}",
                    hint="check the network and try again",
                ) from None
        finally:
            release(resp)
    raise AssertionError("unreachable")


class Uploader:
    """Puts blobs into the session's repository: HEAD, else mount, else monolithic or chunked upload."""

    def __init__(self, sess: Session, *, report: Reporter, chunked_above: int, chunk_size: int) -> None:
        self.sess, self.report, self.chunked_above, self.chunk_size = sess, report, chunked_above, chunk_size

    def blob(
        self,
        digest: str,
        size: int,
        source: Callable[[], BinaryIO | bytes],
        what: str,
        mount_from: Sequence[str],
    ) -> str:
        """Make ``digest`` exist in the repository; return "present", "mounted" or "uploaded".
        Its requests share one transfer deadline (``SLIMLINE_DOWNLOAD_DEADLINE``)."""
        with self.sess.transfer_scope():
            return self._blob(digest, size, source, what, mount_from)

    def _blob(
        self,
        digest: str,
        size: int,
        source: Callable[[], BinaryIO | bytes],
        what: str,
        mount_from: Sequence[str],
    ) -> str:
        sess, repo = self.sess, self.sess.ref.repository
        head = sess.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404), what=f"checking the {what}")
        if head.status == 200:
            self.report.detail(f"{what}: already there")
            return "present"
        start = None
        for other in mount_from:
            resp = sess.request(
                "POST",
                f"/v2/{repo}/blobs/uploads/?mount={quote(digest)}&from={quote(other)}",
                ok=(201, 202),
                what=f"mounting the {what} from {other}",
            )
            if resp.status == 201:
                self.report.detail(f"{what}: mounted from {other}")
                return "mounted"
            start = resp  # the registry opened an ordinary upload session instead
            break
        if start is None:
            start = sess.request(
                "POST", f"/v2/{repo}/blobs/uploads/", ok=(202,), what=f"starting the upload of the {what}"
            )
        location = self._location(start, sess.base)
        with progress(self.report, f"pushing {what}", size) as bar:
            self._upload(location, digest, size, _counted(source, bar), what, start)
        self.report.detail(f"{what}: uploaded ({size} bytes)")
        return "uploaded"

    def _upload(
        self,
        location: str,
        digest: str,
        size: int,
        source: Callable[[], BinaryIO | bytes],
        what: str,
        start: urllib3.BaseHTTPResponse,
    ) -> None:
        sess = self.sess
        if size > self.chunked_above:
            minimum = int(start.headers.get("OCI-Chunk-Min-Length") or 0)
            location = self._chunks(location, source, max(self.chunk_size, minimum), what)
            body: Callable[[], BinaryIO | bytes] | bytes = b""
            headers = {"Content-Type": "application/octet-stream", "Content-Length": "0"}
        else:
            body = source
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        sep = "&" if "?" in location else "?"
        sess.request(
            "PUT",
            f"{location}{sep}digest={quote(digest)}",
            headers=headers,
            body=body,
            ok=(201,),
            what=f"uploading the {what}",
        )

    def _location(self, resp: urllib3.BaseHTTPResponse, base: str) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                "the registry opened an upload without a Location",
                ref=self.sess.ref,
                status=resp.status,
                doing=f"pushing to {self.sess.ref}",
            )
        return urljoin(base + "/", loc)

    def _chunks(self, location: str, source: Callable[[], BinaryIO | bytes], chunk: int, what: str) -> str:
        opened = source()
        stream: BinaryIO = io.BytesIO(opened) if isinstance(opened, bytes) else opened
        with stream:
            offset = 0
            while data := stream.read(chunk):
                end = offset + len(data) - 1
                resp = self.sess.request(
                    "PATCH",
                    location,
                    body=data,
                    ok=(202,),
                    what=f"uploading the {what} (bytes {offset}-{end})",
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{end}",
                        "Content-Length": str(len(data)),
                    },
                )
                location = self._location(resp, location)
                offset = end + 1
        return location


def _counted(source: Callable[[], BinaryIO | bytes], bar: Ticker) -> Callable[[], BinaryIO | bytes]:
    """``source``, its streams advancing ``bar`` as they are read (bytes: all at once)."""

    def opened() -> BinaryIO | bytes:
        got = source()
        if isinstance(got, bytes):
            bar.advance(len(got))
            return got
        return cast(BinaryIO, Counted(got, bar))

    return opened
