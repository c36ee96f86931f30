"""``slimline diff A B`` on synthetic images: packages, layers, files and sizes, each expected
figure derived from the data the two images were made from and from tarfile over their blobs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from slimline.cache.store import Cache
from slimline.cli.main import main
from tests.inspect.images import Blobs, Spec, build, dist_info, final_files, read_layout, write_layout
from tests.inspect.test_inspect import SITE, specs


def specs_b() -> list[Spec]:
    a = specs()
    venv = {
        **dist_info(SITE, "alpha", "1.1", {"alpha/__init__.py": b"A" * 4100}, dir_name="alpha"),
        **dist_info(SITE, "gamma", "0.1", {"gamma.py": b"g" * 64}, dir_name="gamma"),
    }
    top = dict(a[2].files)
    top["app/main.py"] = b"print('yo')\n"  # same size, other bytes
    top["var/lib/dpkg/status.d/libbar"] = b"Package: libbar\nVersion: 1.0\nArchitecture: amd64\n"
    return [
        a[0],  # the same base layer: reused
        Spec(venv, created_by="slimline: python venv"),
        Spec(top, removes=a[2].removes, opaque=a[2].opaque, created_by="slimline: app files"),
        Spec({"app/extra.py": b"e" * 33}, created_by="slimline: extra"),
    ]


def _diff(capsys: Any, tmp_path: Path, a: str, b: str) -> dict[str, Any]:
    assert main(["diff", a, b, "--json", "-q", "--cache-dir", str(tmp_path / "cache")]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _unpacked(blobs: Blobs) -> list[int]:
    return [sum(s for s, _ in m.values()) for m in blobs.layers]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    cache = Cache(tmp_path / "make")
    a = write_layout(build(cache, specs()), tmp_path / "a", "v1")
    b = write_layout(build(cache, specs_b()), tmp_path / "b", "v2")
    return a, b


def test_packages_added_removed_changed(pair: tuple[str, str], tmp_path: Path, capsys: Any) -> None:
    doc = _diff(capsys, tmp_path, *pair)
    assert doc["schema"] == "slimline.diff/1"
    assert doc["python"] == {
        "added": [{"name": "gamma", "version": "0.1"}],
        "removed": [{"name": "beta-pkg", "version": "2.0"}],
        "changed": [{"name": "alpha", "from": "1.0", "to": "1.1"}],
    }
    assert doc["debian"]["changed"] == [{"name": "libbar", "from": "0.9", "to": "1.0"}]
    assert doc["debian"]["added"] == doc["debian"]["removed"] == []


def test_files_and_sizes_agree_with_the_data_and_the_blobs(
    pair: tuple[str, str], tmp_path: Path, capsys: Any
) -> None:
    doc = _diff(capsys, tmp_path, *pair)
    fa, fb = final_files(specs()), final_files(specs_b())
    files = doc["files"]
    assert {f["path"] for f in files["added"]} == {f"/{p}" for p in fb.keys() - fa.keys()}
    assert {f["path"] for f in files["removed"]} == {f"/{p}" for p in fa.keys() - fb.keys()}
    changed = {f"/{p}" for p in fa.keys() & fb.keys() if _sha(fa[p]) != _sha(fb[p])}
    assert {f["path"] for f in files["modified"]} == changed
    assert "/app/main.py" in changed  # same size, other content: found by hashing
    la, lb = read_layout(tmp_path / "a", "v1"), read_layout(tmp_path / "b", "v2")
    size = doc["size"]
    assert size["compressed"] == {
        "a": sum(la.compressed),
        "b": sum(lb.compressed),
        "delta": sum(lb.compressed) - sum(la.compressed),
    }
    assert size["unpacked"]["delta"] == sum(_unpacked(lb)) - sum(_unpacked(la))
    assert size["files"]["delta"] == sum(map(len, fb.values())) - sum(map(len, fa.values()))
    rows = doc["layers"]
    assert [r["reused"] for r in rows] == [True, False, False, False]
    assert rows[3]["a"] is None and rows[3]["b"]["created_by"] == "slimline: extra"
    ua, ub = _unpacked(la), _unpacked(lb)
    assert [r["delta"]["unpacked"] for r in rows] == [
        (ub[i] if i < len(ub) else 0) - (ua[i] if i < len(ua) else 0) for i in range(4)
    ]
    assert [r["delta"]["compressed"] for r in rows] == [
        (lb.compressed[i] if i < len(lb.compressed) else 0)
        - (la.compressed[i] if i < len(la.compressed) else 0)
        for i in range(4)
    ]


def test_an_image_against_itself_changes_nothing(pair: tuple[str, str], tmp_path: Path, capsys: Any) -> None:
    doc = _diff(capsys, tmp_path, pair[0], pair[0])
    assert all(not v for part in ("python", "debian", "files") for v in doc[part].values())
    assert all(r["reused"] and r["delta"] == {"compressed": 0, "unpacked": 0} for r in doc["layers"])
    assert main(["diff", *pair, "-q", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    for text in (
        "~ alpha 1.0 -> 1.1",
        "+ gamma 0.1",
        "- beta-pkg 2.0",
        "~ /app/main.py",
        "+ /app/extra.py",
        "reused",
    ):
        assert text in out, text
