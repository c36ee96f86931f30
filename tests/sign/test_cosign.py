"""Images signed by ``slimline build --sign-key`` into an ``oci:`` layout, stored as cosign
stores them, and checked by ``slimline verify --key``."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from securesystemslib import dsse
from securesystemslib.signer import Signature  # type: ignore[attr-defined]  # re-exported without __all__

from slimline.cache.store import Cache
from slimline.sign import cosign, keys, payloads
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.build.helpers import write_project
from tests.sign.helpers import write_keys
from tests.sign.test_payloads import _independent
from tests.verify.helpers import flip, recorded_base, run


@pytest.fixture
def signed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, Path, str]]:
    """(layout, cache dir, public key, image digest) of a build signed with an encrypted ECDSA key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(keys.ENV_KEY, raising=False)
    cache_dir = tmp_path / "cache"
    base = recorded_base(Cache(cache_dir), tmp_path / "base")
    private, public = write_keys(tmp_path, "ecdsa", password=b"pw")
    monkeypatch.setenv(keys.ENV_PASSWORD, "pw")
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        root = write_project(tmp_path / "proj", idx.url, package=True)
        out = tmp_path / "out"
        code, stdout, err = run(
            capsys, "build", str(root), "--base", base, "--to", f"oci:{out}:t",
            "--cache-dir", str(cache_dir), "--sign-key", str(private),
        )  # fmt: skip
        assert code == 0, err
        yield out, cache_dir, public, stdout.strip().splitlines()[-1]


def _entry(out: Path, tag: str) -> dict[str, object]:
    index = json.loads((out / "index.json").read_text())
    return next(e for e in index["manifests"] if e["annotations"]["org.opencontainers.image.ref.name"] == tag)


def _blob(out: Path, digest: object) -> Path:
    return out / "blobs" / "sha256" / str(digest).removeprefix("sha256:")


def test_the_signature_is_stored_as_cosign_stores_it(signed: tuple[Path, Path, Path, str]) -> None:
    out, _, public, digest = signed
    tag = f"sha256-{digest.removeprefix('sha256:')}.sig"
    manifest = json.loads(_blob(out, _entry(out, tag)["digest"]).read_bytes())
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = _blob(out, layer["digest"]).read_bytes()
    assert payloads.signed_digest(payload) == digest
    assert json.loads(payload)["critical"]["identity"]["docker-reference"] == "localhost/hello-app"
    signature = base64.b64decode(layer["annotations"][cosign.SIGNATURE_ANNOTATION])
    _independent(public).verify_signature(Signature("", signature.hex()), payload)
    assert _entry(out, "t")["digest"] == digest  # the image's own tag is untouched


def test_verify_checks_the_signature_with_the_key(
    signed: tuple[Path, Path, Path, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, cache_dir, public, digest = signed
    verify = ("verify", f"oci:{out}:t", "--cache-dir", str(cache_dir))
    code, stdout, err = run(capsys, *verify, "--key", str(public))
    assert code == 0, err
    assert "signature sha256-" in stdout and "verified with the key" in stdout

    other = tmp_path / "other"
    other.mkdir()
    _, other_public = write_keys(other, "ed25519")
    code, _, err = run(capsys, *verify, "--key", str(other_public))
    assert code == 6 and f"no signature in sha256-{digest[7:]}.sig verifies with the key" in err


def test_a_changed_payload_or_a_missing_signature_fails(
    signed: tuple[Path, Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, cache_dir, public, digest = signed
    tag = f"sha256-{digest.removeprefix('sha256:')}.sig"
    verify = ("verify", f"oci:{out}:t", "--cache-dir", str(cache_dir), "--key", str(public))
    manifest = json.loads(_blob(out, _entry(out, tag)["digest"]).read_bytes())
    payload_path = _blob(out, manifest["layers"][0]["digest"])
    payload = payload_path.read_bytes()
    payload_path.chmod(0o644)
    payload_path.write_bytes(flip(payload))
    code, _, err = run(capsys, *verify)
    assert code == 6 and f"{tag} was altered" in err  # a blob changed alone: its digest tells
    payload_path.write_bytes(payload)

    # one byte changed with every digest that names it rewritten: only the signature tells
    changed = flip(payload)
    new = "sha256:" + hashlib.sha256(changed).hexdigest()
    _blob(out, new).write_bytes(changed)
    manifest["layers"][0]["digest"] = new
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    _blob(out, manifest_digest).write_bytes(manifest_bytes)
    index = json.loads((out / "index.json").read_text())
    for e in index["manifests"]:
        if e["annotations"]["org.opencontainers.image.ref.name"] == tag:
            e.update(digest=manifest_digest, size=len(manifest_bytes))
    (out / "index.json").write_text(json.dumps(index))
    code, _, err = run(capsys, *verify)
    assert code == 6 and f"no signature in {tag} verifies with the key" in err

    index["manifests"] = [
        e for e in index["manifests"] if e["annotations"]["org.opencontainers.image.ref.name"] != tag
    ]
    (out / "index.json").write_text(json.dumps(index))
    code, _, err = run(capsys, *verify)
    assert code == 6 and f"has no signature for {digest}" in err


def test_a_multi_platform_build_signs_its_index_and_each_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    platforms = ("linux/amd64", "linux/arm64")
    base = recorded_base(Cache(cache_dir), tmp_path / "base", platforms=platforms)
    private, public = write_keys(tmp_path, "ed25519")
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx:
        root = write_project(tmp_path / "proj", idx.url, package=True)
        out = tmp_path / "out"
        code, stdout, err = run(
            capsys, "build", str(root), "--base", base, "--to", f"oci:{out}:t", "--cache-dir", str(cache_dir),
            "--platform", platforms[0], "--platform", platforms[1], "--sign-key", str(private),
        )  # fmt: skip
        assert code == 0, err
    index_digest = stdout.strip().splitlines()[-1]
    index = json.loads(_blob(out, index_digest).read_bytes())
    signed = [index_digest, *(m["digest"] for m in index["manifests"])]
    assert len(signed) == 3
    for digest in signed:
        tag = f"sha256-{digest.removeprefix('sha256:')}.sig"
        manifest = json.loads(_blob(out, _entry(out, tag)["digest"]).read_bytes())
        assert payloads.signed_digest(_blob(out, manifest["layers"][0]["digest"]).read_bytes()) == digest
    code, stdout, err = run(
        capsys, "verify", f"oci:{out}:t", "--cache-dir", str(cache_dir), "--key", str(public),
        "--platform", platforms[0], "--platform", platforms[1], "--project", str(root),
    )  # fmt: skip
    assert code == 0, err
    assert stdout.count("verified with the key") == 2 and "(linux/arm64/v8)" in stdout


def test_signing_settings_stay_out_of_the_memo_key(tmp_path: Path) -> None:
    """Signing changes no image, and a passphrase must not be hashed into a cache file's name."""
    from slimline.build import memo

    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (root / "poetry.lock").write_text("")
    plain = memo.key(root, command={}, env={})
    assert plain is not None
    signing = {keys.ENV_KEY: "key.pem", keys.ENV_PASSWORD: "pw"}
    assert memo.key(root, command={}, env=signing) == plain
    assert memo.key(root, command={}, env={"SLIMLINE_OTHER": "1"}) != plain


def test_the_sbom_and_the_provenance_are_attested_as_cosign_attests(
    signed: tuple[Path, Path, Path, str],
) -> None:
    """``sha256-<hex>.att``: one DSSE envelope per document, each verified by securesystemslib,
    each an in-toto statement about the image: the SBOM as a CycloneDX predicate, the
    provenance as the SLSA statement slimline attached as a referrer."""
    out, _, public, digest = signed
    tag = f"sha256-{digest.removeprefix('sha256:')}.att"
    manifest = json.loads(_blob(out, _entry(out, tag)["digest"]).read_bytes())
    found = {}
    for layer in manifest["layers"]:
        assert layer["mediaType"] == cosign.ATTESTATION
        envelope = dsse.Envelope.from_dict(json.loads(_blob(out, layer["digest"]).read_bytes()))
        key = _independent(public)
        envelope.verify([key], 1)  # raises unless the signature verifies
        statement = json.loads(envelope.payload)
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert {s["digest"]["sha256"] for s in statement["subject"]} == {digest.removeprefix("sha256:")}
        assert statement["predicateType"] == layer["annotations"]["predicateType"]
        found[statement["predicateType"]] = statement["predicate"]
    assert found["https://cyclonedx.org/bom"]["bomFormat"] == "CycloneDX"
    assert "https://slsa.dev/provenance/v1" in found
