"""``docker-daemon:`` / ``--load``: the image goes into the real podman and runs there."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.oci.daemon import DaemonError, find_engine, host_image, load
from slimline.oci.image import Platform
from slimline.oci.reference import DaemonRef, parse
from tests.oci.registry_helpers import ARM64, image
from tests.support import podman, podman_run


def daemon_ref(text: str) -> DaemonRef:
    parsed = parse(f"docker-daemon:{text}", role="output")
    assert isinstance(parsed, DaemonRef)
    return parsed


@pytest.mark.container
def test_load_into_podman_and_run(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    amd, arm = image(cache, text="loaded"), image(cache, text="other", platform=ARM64)
    assert Path(find_engine()).name == "podman"  # podman is installed here; docker (if any) comes second
    name = f"localhost/slimline-load-{uuid.uuid4().hex[:8]}:1"
    ref = daemon_ref(name)
    try:
        assert load([amd, arm], ref) == amd.digest  # the host's platform is chosen
        assert podman_run(name, flags=["--pull=never"]).stdout.strip() == "loaded"
        inspected = podman("image", "inspect", "--format", "{{.Architecture}}", name).stdout.strip()
        assert inspected == "amd64"
    finally:
        podman("rmi", "-f", name, check=False)


def test_missing_engine_is_a_clear_error(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(DaemonError, match="not installed") as err:
        load([image(cache)], daemon_ref("app:1"), engine="no-such-engine-here")
    assert "docker-archive" in str(err.value)


def test_no_image_for_this_machine(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    s390x = Platform("s390x")
    with pytest.raises(DaemonError, match="none of the images"):
        host_image([image(cache, platform=s390x), image(cache, platform=Platform("ppc64le"))])
