"""cache.store: blobs are named by sha256 digests only, checked before they become paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slimline.cache.store import BadDigest, Cache, hex_of

GOOD = "ab" * 32
BAD_HEX = ["../../victim", "AB" * 32, "ab" * 31, "ab" * 33, "g" * 64, "", f"{GOOD}/", f"./{GOOD}"[:64]]
BAD_DIGESTS = [
    "sha512:" + "ab" * 64,
    f"SHA256:{GOOD}",
    GOOD,
    "sha256:../../victim",
    f"sha256:{'AB' * 32}",
    None,
    7,
]


@pytest.mark.parametrize("bad", BAD_HEX)
def test_a_blob_name_that_is_not_64_lowercase_hex_digits_is_refused_before_it_is_a_path(
    tmp_path: Path, bad: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"x")
    os.utime(victim, (1, 1))
    cache = Cache(tmp_path / "cache" / "sub")
    with pytest.raises(BadDigest, match="sha256:<64 lowercase hex digits>"):
        cache.blob_path(bad)
    assert victim.stat().st_mtime == 1


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_a_digest_that_is_not_sha256_hex_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(BadDigest):
        hex_of(bad)
    if isinstance(bad, str):
        with pytest.raises(BadDigest):
            Cache(tmp_path).digest_path(bad)


def test_a_good_digest_names_its_blob(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert hex_of(f"sha256:{GOOD}") == GOOD
    assert cache.digest_path(f"sha256:{GOOD}") == tmp_path / "blobs" / "sha256" / GOOD


def test_a_relative_cache_directory_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths under the cache are handed to programs that run in another directory (the base's
    interpreter, started in its root by the bytecode compiler), so the root is absolute."""
    monkeypatch.chdir(tmp_path)
    cache = Cache(Path("rel/cache"))
    assert cache.root == tmp_path / "rel" / "cache"
    assert cache.blob_path("0" * 64).is_absolute()
