"""``slimline inspect`` of a registry image: the real command line, in an empty directory (no
project), against Debian's ``docker-registry`` on loopback, seeded by skopeo (an independent
client).  It must say what it says of the same image read from its layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from slimline.cache.store import Cache
from tests.inspect.images import build, write_layout
from tests.inspect.test_inspect import specs
from tests.oci.registry_helpers import registry
from tests.support import run, slimline, tool

pytestmark = pytest.mark.container


def _inspect(ref: str, cwd: Path, cache: Path) -> dict[str, Any]:
    out = slimline("inspect", ref, "--json", "-q", "--cache-dir", str(cache), cwd=cwd).stdout
    (image,) = json.loads(out)["images"]
    return dict(image)


def test_a_registry_image_is_inspected_without_a_project(tmp_path: Path) -> None:
    ref = write_layout(build(Cache(tmp_path / "make"), specs()), tmp_path / "layout", "v1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with registry(tmp_path / "registry") as reg:
        remote = f"{reg.host}/team/app:v1"
        run([tool("skopeo"), "copy", "--dest-tls-verify=false", ref, f"docker://{remote}"])
        digest = run(
            [tool("skopeo"), "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{remote}"]
        )
        pulled = _inspect(f"docker://{remote}", empty, tmp_path / "cache-a")
    local = _inspect(ref, empty, tmp_path / "cache-b")
    assert pulled["digest"] == digest.stdout.strip()
    assert list(empty.iterdir()) == []
    for key in ("config", "base", "size", "layers", "python", "debian", "largest_files", "wasted"):
        assert pulled[key] == local[key], key
