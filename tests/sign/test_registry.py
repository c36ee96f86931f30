"""A signed image pushed to a real registry (Debian's ``docker-registry``, which has no
referrers API): the signature is found under cosign's ``sha256-<hex>.sig`` tag by an
independent client (skopeo) and checked by ``slimline verify --key`` from the registry."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import Signature  # type: ignore[attr-defined]  # re-exported without __all__

from slimline.cache.store import Cache
from slimline.sign import cosign, keys, payloads
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.build.helpers import write_project
from tests.oci.registry_helpers import registry
from tests.sign.helpers import write_keys
from tests.sign.test_payloads import _independent
from tests.support import run as run_tool
from tests.support import tool
from tests.verify.helpers import recorded_base, run

pytestmark = pytest.mark.container


def _skopeo_raw(ref: str) -> Any:
    return json.loads(run_tool([tool("skopeo"), "inspect", "--raw", "--tls-verify=false", ref]).stdout)


def test_a_pushed_signature_is_found_by_skopeo_and_verified_from_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(keys.ENV_KEY, raising=False)
    cache_dir = tmp_path / "cache"
    base = recorded_base(Cache(cache_dir), tmp_path / "base")
    private, public = write_keys(tmp_path, "ed25519")
    wheel = make_wheel("tinydep", "0.3.0")
    with (
        serve(LocalIndex(files={"tinydep": {"tinydep-0.3.0-py3-none-any.whl": wheel}})) as idx,
        registry(tmp_path / "reg") as reg,
    ):
        root = write_project(tmp_path / "proj", idx.url, package=True)
        app = f"{reg.host}/apps/hello:1"
        monkeypatch.setenv(keys.ENV_KEY, str(private))  # CI's way: the key from the environment
        code, out, err = run(
            capsys,
            "build",
            str(root),
            "--base",
            base,
            "--to",
            f"docker://{app}",
            "--cache-dir",
            str(cache_dir),
        )
        assert code == 0, err
        digest = out.strip().splitlines()[-1].split("@")[1]

        sig = _skopeo_raw(f"docker://{reg.host}/apps/hello:sha256-{digest.removeprefix('sha256:')}.sig")
        [layer] = sig["layers"]
        assert layer["mediaType"] == payloads.SIMPLE_SIGNING
        manifest = run_tool(
            [tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{app}"]
        ).stdout.encode()  # the image manifest: what the payload's digest names
        assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digest

        code, out, err = run(
            capsys, "verify", f"docker://{app}", "--key", str(public), "--cache-dir", str(cache_dir)
        )
        assert code == 0, err
        assert "verified with the key" in out

        _, other = write_keys(tmp_path / "reg", "ecdsa")
        code, _, err = run(
            capsys, "verify", f"docker://{app}", "--key", str(other), "--cache-dir", str(cache_dir)
        )
        assert code == 6 and "verifies with the key" in err
        signature = base64.b64decode(layer["annotations"][cosign.SIGNATURE_ANNOTATION])
        run_tool(
            [
                tool("skopeo"),
                "copy",
                "--src-tls-verify=false",
                f"docker://{reg.host}/apps/hello:sha256-{digest[7:]}.sig",
                f"dir:{tmp_path / 'sigdir'}",
            ]
        )
        blob = (tmp_path / "sigdir" / layer["digest"].removeprefix("sha256:")).read_bytes()
        assert payloads.signed_digest(blob) == digest
        _independent(public).verify_signature(Signature("", signature.hex()), blob)
