"""End to end through a real registry: a base pulled from it, the app pushed to it, run by podman."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.oci.registry_helpers import registry
from tests.support import podman, podman_run, run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]


def test_build_on_a_registry_base_and_push(locked_cli: Path, tmp_path: Path) -> None:
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    base_layout = tmp_path / "base"
    slimline("base", "debian:trixie", "--to", f"oci:{base_layout}:py", "-q")
    with registry(tmp_path / "reg") as reg:
        base_name = f"{reg.host}/bases/python:3.13"
        run(
            [
                tool("skopeo"),
                "copy",
                "-q",
                "--dest-tls-verify=false",
                f"oci:{base_layout}:py",
                f"docker://{base_name}",
            ]
        )
        app = f"{reg.host}/apps/greet:1"
        out = slimline("build", str(proj), "--base", base_name, "--to", f"docker://{app}", "-q").stdout
        pushed = out.strip().splitlines()[-1]
        assert pushed.startswith(f"{reg.host}/apps/greet@sha256:")
        digest = pushed.split("@")[1]

        raw = run([tool("skopeo"), "inspect", "--tls-verify=false", f"docker://{app}"]).stdout
        assert json.loads(raw)["Digest"] == digest
        config = json.loads(
            run([tool("skopeo"), "inspect", "--tls-verify=false", "--config", f"docker://{app}"]).stdout
        )
        assert config["config"]["Labels"]["org.opencontainers.image.title"] == "greet"

        podman("pull", "-q", "--tls-verify=false", app)
        try:
            assert (
                podman_run(app, "--name", "registry", flags=["--pull=never"]).stdout.strip()
                == "hello, registry!"
            )
        finally:
            podman("rmi", "-f", app, check=False)

        # the base's layers are the registry's, untouched
        manifest = json.loads(
            run([tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{app}"]).stdout
        )
        base_manifest = json.loads(
            run([tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{base_name}"]).stdout
        )
        base_digests = [layer["digest"] for layer in base_manifest["layers"]]
        assert [layer["digest"] for layer in manifest["layers"]][: len(base_digests)] == base_digests
        # provenance: the base is named by the digest the registry serves it under
        registry_base = json.loads(
            run([tool("skopeo"), "inspect", "--tls-verify=false", f"docker://{base_name}"]).stdout
        )["Digest"]
        annotations = manifest["annotations"]
        assert annotations["org.opencontainers.image.base.digest"] == registry_base
        assert annotations["org.opencontainers.image.base.name"] == base_name
