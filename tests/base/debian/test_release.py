"""The signed entry point: InRelease signatures, Release checks, the shipped keys (offline).

A throwaway OpenPGP key is generated with pysequoia and InRelease files are served from
127.0.0.1, so every check of :mod:`slimline.base.debian.release` runs against real signatures.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pysequoia
import pytest

from slimline.base.debian import mirror as mirror_mod
from slimline.base.debian.errors import ReleaseError, SignatureError
from slimline.base.debian.release import SHIPPED_KEYS, Keyring, fetch, parse
from slimline.http import Http

SHA_A, SHA_B = "a" * 64, "b" * 64

RELEASE = f"""Origin: Debian
Label: Debian
Suite: stable
Version: 13.2
Codename: trixie
Date: Sat, 11 Jul 2026 10:16:37 UTC
{{valid_until}}Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 13.2
SHA256:
 {SHA_A}  9000000 main/binary-amd64/Packages
 {SHA_B}  1200000 main/binary-amd64/Packages.xz
 {SHA_A}  2000000 main/binary-amd64/Packages.gz
"""


def signed(text: str, key: pysequoia.Tsk) -> bytes:
    return pysequoia.sign(key.signer(), text.encode(), mode=pysequoia.SignatureMode.CLEAR)


@pytest.fixture(scope="module")
def key() -> pysequoia.Tsk:
    return pysequoia.Tsk.generate("slimline test archive <archive@example.invalid>")


@pytest.fixture
def keyring(tmp_path: Path, key: pysequoia.Tsk) -> Keyring:
    path = tmp_path / "test-archive.pgp"
    path.write_bytes(bytes(key.extract_certificate()))
    return Keyring(path)


@contextmanager
def serve(files: dict[str, bytes]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()


def test_good_signature_returns_only_the_signed_text(keyring: Keyring, key: pysequoia.Tsk) -> None:
    text = RELEASE.format(valid_until="")
    body = keyring.verify_cleartext(signed(text, key), url="u")
    assert body.decode().rstrip("\n") == text.rstrip("\n")


def test_tampered_foreign_and_framed_documents_are_refused(keyring: Keyring, key: pysequoia.Tsk) -> None:
    doc = signed(RELEASE.format(valid_until=""), key)
    tampered = doc.replace(b"Version: 13.2", b"Version: 13.9")
    other = pysequoia.Tsk.generate("someone else <x@example.invalid>")
    cases = {
        "tampered": tampered,
        "foreign key": signed(RELEASE.format(valid_until=""), other),
        "text before": b"Suite: evil\n\n" + doc,
        "text after": doc + b"\nSuite: evil\n",
        "unsigned": RELEASE.format(valid_until="").encode(),
    }
    for name, data in cases.items():
        with pytest.raises(SignatureError) as info:
            keyring.verify_cleartext(data, url="http://mirror/InRelease")
        assert "http://mirror/InRelease" in str(info.value), name
        assert "keyring" in str(info.value), name


def test_parse_release_fields_and_index_choice() -> None:
    rel = parse(RELEASE.format(valid_until=""), base="http://m/debian/dists/stable")
    assert (rel.suite, rel.codename, rel.version) == ("stable", "trixie", "13.2")
    idx = rel.packages_index("main", "amd64")
    assert idx.path.endswith(".xz") and idx.sha256 == SHA_B and idx.size == 1200000
    assert rel.url_of(idx) == f"http://m/debian/dists/stable/main/binary-amd64/by-hash/SHA256/{SHA_B}"
    with pytest.raises(ReleaseError, match="no main/binary-riscv64/Packages"):
        rel.packages_index("main", "riscv64")
    assert rel.packages_indexes("main", "amd64") == (idx,)
    with_all = parse(
        RELEASE.format(valid_until="") + f" {SHA_A}  100 main/binary-all/Packages.xz\n", base="b"
    ).packages_indexes("main", "amd64")
    assert [i.path for i in with_all] == ["main/binary-amd64/Packages.xz", "main/binary-all/Packages.xz"]
    not_all = parse(
        RELEASE.format(valid_until="").replace("all amd64", "amd64")
        + f" {SHA_A}  100 main/binary-all/Packages.xz\n",
        base="b",
    ).packages_indexes("main", "amd64")
    assert len(not_all) == 1  # "all" is not one of the architectures: binary-all is not an index to use
    promised = parse(
        "No-Support-for-Architecture-all: Packages\n"
        + RELEASE.format(valid_until="")
        + f" {SHA_A}  100 main/binary-all/Packages.xz\n",
        base="b",
    ).packages_indexes("main", "amd64")
    assert [i.path for i in promised] == ["main/binary-amd64/Packages.xz"]
    with pytest.raises(ReleaseError, match="malformed SHA256"):
        parse("SHA256:\n xyz 12 main/binary-amd64/Packages\n", base="b")


def test_fetch_checks_suite_and_expiry(keyring: Keyring, key: pysequoia.Tsk) -> None:
    fresh = signed(RELEASE.format(valid_until="Valid-Until: Sun, 19 Jul 2099 10:16:37 UTC\n"), key)
    old = RELEASE.format(valid_until="Valid-Until: Sun, 19 Jul 2020 10:16:37 UTC\n").replace(
        "stable", "stale"
    )
    files = {
        "/debian/dists/trixie/InRelease": fresh,
        "/debian/dists/bookworm/InRelease": fresh,
        "/debian/dists/stale/InRelease": signed(old, key),
    }
    http = Http(retries=0)
    with serve(files) as mirror:
        rel, _ = fetch(http, mirror, "trixie", keyring=keyring)
        assert rel.base == f"{mirror}/dists/trixie"
        with pytest.raises(ReleaseError, match="not 'bookworm'"):  # a valid file replayed for another suite
            fetch(http, mirror, "bookworm", keyring=keyring)
        with pytest.raises(ReleaseError, match="expired") as info:
            fetch(http, mirror, "stale", keyring=keyring)
        assert "check-valid-until" in str(info.value)
        rel, _ = fetch(http, mirror, "stale", keyring=keyring, check_valid_until=False)
        assert rel.valid_until is not None and rel.valid_until.year == 2020


def test_shipped_keys_are_the_documented_debian_keys() -> None:
    ring = Keyring()
    readme = (SHIPPED_KEYS / "README.md").read_text()
    assert len(ring.fingerprints) == 6
    for fpr in ring.fingerprints:
        assert fpr.upper() in readme


def test_keyring_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SignatureError, match="no certificates"):
        Keyring(tmp_path / "empty")
    (tmp_path / "junk.gpg").write_bytes(b"not a key")
    with pytest.raises(SignatureError, match="cannot read the keyring"):
        Keyring(tmp_path / "junk.gpg")


@pytest.mark.network
def test_unknown_suite_is_a_clear_error() -> None:
    archive = mirror_mod.find(mirror=None, security_mirror="").archive
    with pytest.raises(ReleaseError, match="the mirror has no suite 'no-such-suite'") as err:
        fetch(Http(), archive, "no-such-suite", keyring=Keyring(None))
    assert "check the suite name" in str(err.value)
