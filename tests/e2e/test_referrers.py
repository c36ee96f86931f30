"""SBOM and provenance referrers, found by independent clients: pushed to the Debian
``docker-registry`` (no referrers API: the ``sha256-<hex>`` fallback tag) and read back with
``oras`` and ``skopeo``; in an ``oci:`` layout listed by ``umoci`` and read by ``skopeo``.  The
base is the synthetic one, pushed to the registry and named by digest, so the memo serves the
rebuild after an edit: its documents must equal a full build's byte for byte."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline import cli
from tests.artifacts.helpers import LocalIndex, serve
from tests.attest.test_documents import WHEEL, WHEEL_NAME, _project
from tests.oci.registry_helpers import registry
from tests.support import run, tool

pytestmark = pytest.mark.container

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPES = ["application/spdx+json", "application/vnd.cyclonedx+json", "application/vnd.in-toto+json"]


def raw_image(host: str, digest: str) -> bytes:
    return run(
        [tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{host}/apps/hello@{digest}"]
    ).stdout.encode()


@pytest.fixture
def index() -> Iterator[LocalIndex]:
    with serve(LocalIndex(files={"tinydep": {WHEEL_NAME: WHEEL}})) as idx:
        yield idx


def _build(
    tmp: Path,
    root: Path,
    base: str,
    to: str,
    sbom_out: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    memo: bool = False,
) -> str:
    os.chdir(tmp)
    args = ["build", str(root), "--base", base, "--to", to, "--cache-dir", str(tmp / "cache")]
    code = cli.main([*args, "--sbom-out", str(sbom_out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert ("nothing but the project changed" in captured.err) == memo, captured.err
    return captured.out.strip().splitlines()[-1]


def test_pushed_referrers_are_found_by_oras_and_skopeo_through_the_fallback_tag(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import oras.client  # type: ignore[import-untyped]

    for name in ("SOURCE_DATE_EPOCH", "SLIMLINE_NO_LAYER_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)
    root, base_ref = _project(tmp_path, index, package=False)  # the memo remakes its layer without a backend
    with registry(tmp_path / "reg") as reg:
        layout_dir = base_ref.split(":")[1]
        run(
            [
                tool("skopeo"),
                "copy",
                "-q",
                "--dest-tls-verify=false",
                f"oci:{tmp_path / layout_dir}:base",
                f"docker://{reg.host}/bases/py:1",
            ]
        )
        raw = run(
            [tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/bases/py:1"]
        ).stdout
        base = f"{reg.host}/bases/py@sha256:{hashlib.sha256(raw.encode()).hexdigest()}"
        app = f"{reg.host}/apps/hello:1"
        pushed = _build(tmp_path, root, base, f"docker://{app}", tmp_path / "sbom", capsys)
        digest = pushed.split("@")[1]
        tag = digest.replace(":", "-")

        client = oras.client.OrasClient(hostname=reg.host, insecure=True)
        assert tag in client.get_tags(f"{reg.host}/apps/hello")
        listing = client.get_manifest(f"{reg.host}/apps/hello:{tag}")
        assert sorted(m["artifactType"] for m in listing["manifests"]) == ARTIFACT_TYPES
        for entry in listing["manifests"]:
            manifest = client.get_manifest(f"{reg.host}/apps/hello@{entry['digest']}")
            assert manifest["subject"]["digest"] == digest
            layer = manifest["layers"][0]
            blob = client.get_blob(f"{reg.host}/apps/hello", layer["digest"]).content
            assert (
                blob
                == (tmp_path / "sbom" / layer["annotations"]["org.opencontainers.image.title"]).read_bytes()
            )
        skopeo_view = run(
            [
                tool("skopeo"),
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{app.rsplit(':', 1)[0]}:{tag}",
            ]
        ).stdout
        assert json.loads(skopeo_view) == listing

        # another tool's referrer in the tag survives a second push, which adds no duplicates
        foreign = {"mediaType": MANIFEST, "digest": digest, "size": len(raw_image(reg.host, digest)),
                   "artifactType": "application/vnd.example.other"}  # fmt: skip
        body = json.dumps({**listing, "manifests": [*listing["manifests"], foreign]}).encode()
        put = urllib.request.Request(
            f"http://{reg.host}/v2/apps/hello/manifests/{tag}", data=body, method="PUT",
            headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
        )  # fmt: skip
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(put, timeout=30) as resp:
            assert resp.status == 201
        again_to = f"docker://{reg.host}/apps/hello:2"
        assert _build(tmp_path, root, base, again_to, tmp_path / "s2", capsys, memo=True) == pushed
        again = client.get_manifest(f"{reg.host}/apps/hello:{tag}")
        assert sorted(m["artifactType"] for m in again["manifests"]) == sorted(
            [*ARTIFACT_TYPES, "application/vnd.example.other"]
        )

        # an edit: the memo serves the rebuild (the base is pinned by digest); documents as a full build's
        source = root / "main.py"
        source.write_text(source.read_text() + "# edited\n")
        memo_line = _build(
            tmp_path, root, base, f"oci:{tmp_path / 'memo'}:t", tmp_path / "memo-sbom", capsys, memo=True
        )
        monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
        full_line = _build(tmp_path, root, base, f"oci:{tmp_path / 'full'}:t", tmp_path / "full-sbom", capsys)
        assert memo_line == full_line != digest
        for name in ("sbom.cdx.json", "sbom.spdx.json", "provenance.intoto.json"):
            assert (tmp_path / "memo-sbom" / name).read_bytes() == (
                tmp_path / "full-sbom" / name
            ).read_bytes()

    # the layout's referrers tag, listed by umoci and read by skopeo
    listed = run([tool("umoci"), "ls", "--layout", str(tmp_path / "memo")]).stdout.split()
    memo_tag = memo_line.replace(":", "-")
    assert sorted(listed) == sorted(["t", memo_tag])
    index_view = json.loads(
        run([tool("skopeo"), "inspect", "--raw", f"oci:{tmp_path / 'memo'}:{memo_tag}"]).stdout
    )
    assert sorted(m["artifactType"] for m in index_view["manifests"]) == ARTIFACT_TYPES
