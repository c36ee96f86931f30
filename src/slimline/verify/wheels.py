"""The image's RECORDs checked against the locked wheels' own RECORDs, when the cache holds them.

Contract of :func:`check_wheel`: for a distribution whose artifact record names a wheel that
the lock lists, and whose bytes the cache holds (``blobs/sha256/<hex>``, hashed again here),
every hashed row of the wheel's RECORD for a file outside ``*.data/`` (those move to the venv's
``bin``, data or include directories, and scripts get a new first line) must appear in the
image's RECORD with the same hash and size.  So a file changed together with its RECORD row
is still caught: the chain runs from the lock's hash to the wheel, its RECORD, the image's
RECORD and the file.  Without the wheel in the cache the distribution is counted, its RECORD
trusted.  The wheel's RECORD is read capped (:data:`MAX_RECORD`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import posixpath
import zipfile

from slimline.cache.store import Cache
from slimline.verify.findings import Findings
from slimline.verify.python import Dist

__all__ = ["MAX_RECORD", "check_wheel"]

MAX_RECORD = 64 << 20


def _sha256(path: object) -> str:
    h = hashlib.sha256()
    with open(str(path), "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _wheel_record(zf: zipfile.ZipFile) -> bytes | None:
    for info in zf.infolist():
        top, _, rest = info.filename.partition("/")
        if rest == "RECORD" and top.endswith(".dist-info") and info.file_size <= MAX_RECORD:
            with zf.open(info) as f:
                return f.read(MAX_RECORD + 1)
    return None


def check_wheel(dist: Dist, cache: Cache, found: Findings) -> None:
    artifact = dist.artifact
    if artifact is None or not artifact.filename.endswith(".whl"):
        return
    path = cache.blob_path(artifact.sha256)
    if not path.is_file() or _sha256(path) != artifact.sha256:
        found.dists["distributions whose wheel is not in the cache (RECORD trusted)"] += 1
        return
    record = f"{dist.dist_info}/RECORD"
    try:
        with zipfile.ZipFile(path) as zf:
            data = _wheel_record(zf)
    except (zipfile.BadZipFile, OSError) as err:
        found.problem(record, f"the locked wheel {artifact.filename} cannot be read: {err}", dist.label)
        return
    if data is None:
        found.problem(record, f"the locked wheel {artifact.filename} has no RECORD", dist.label)
        return
    site = posixpath.dirname(dist.dist_info)
    differ = 0
    for row in csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))):
        if len(row) < 3 or not row[1] or row[0].partition("/")[0].endswith(".data"):
            continue
        installed = posixpath.normpath(posixpath.join(site, row[0]))
        got = dist.rows.get(installed)
        size = int(row[2]) if row[2].isdigit() else None
        if got is None or got[0] != row[1] or (size is not None and got[1] != size):
            differ += 1
            found.problem(
                installed,
                f"its RECORD row differs from the locked wheel's ({row[1]}, {row[2]} bytes)",
                dist.label,
            )
    if not differ:
        found.dists["distributions whose RECORD matches the locked wheel's"] += 1
