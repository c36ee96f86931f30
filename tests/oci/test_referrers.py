"""Referrers pushed with an image: the fallback tag on a registry without the referrers API (the
Debian docker-registry), and nothing but the manifests on one that answers with ``OCI-Subject``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.context import Context
from slimline.http import Http
from slimline.oci.credentials import Credentials
from slimline.oci.image import Image, rfc3339
from slimline.oci.reference import RegistryRef, parse
from slimline.oci.referrers import Artifact, fallback_tag
from slimline.oci.registry import push
from tests.oci.registry_helpers import Proxy, image, registry
from tests.support import run, tool

pytestmark = pytest.mark.container

NO_CREDENTIALS = Credentials(())


def _ref(host: str) -> RegistryRef:
    parsed = parse(f"docker://{host}/r/app:1", role="output")
    assert isinstance(parsed, RegistryRef)
    return parsed


def _artifacts(cache: Cache) -> tuple[Image, list[Artifact]]:
    img = image(cache, text="referred")
    docs = [
        ("application/vnd.cyclonedx+json", b'{"bomFormat":"CycloneDX"}'),
        ("application/vnd.in-toto+json", b"{}"),
    ]
    return img, [
        Artifact(img.descriptor(), kind, data, f"doc{i}.json", rfc3339(0))
        for i, (kind, data) in enumerate(docs)
    ]


def test_a_registry_without_the_api_gets_the_fallback_tag(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    img, artifacts = _artifacts(cache)
    with registry(tmp_path / "reg") as r:
        push(
            [img],
            _ref(r.host),
            ctx=Context(cache, given_http=Http()),
            credentials=NO_CREDENTIALS,
            referrers=artifacts,
        )
        tag = fallback_tag(img.digest)
        raw = run(
            [tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{r.host}/r/app:{tag}"]
        ).stdout
        listed = json.loads(raw)["manifests"]
        assert [(d["digest"], d["artifactType"]) for d in listed] == [
            (a.digest, a.artifact_type) for a in artifacts
        ]
        for a in artifacts:
            manifest = run(
                [
                    tool("skopeo"),
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    f"docker://{r.host}/r/app@{a.digest}",
                ]
            ).stdout
            assert manifest.encode() == a.manifest_bytes


def _put_of(digest: str) -> Callable[[str, str], bool]:
    return lambda method, path: method == "PUT" and path.endswith(f"/manifests/{digest}")


def test_a_registry_with_the_api_gets_no_fallback_tag(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    img, artifacts = _artifacts(cache)
    with registry(tmp_path / "reg") as r:
        proxy = Proxy(r.host)
        try:
            # answered as a registry with the referrers API answers (it indexes the subject itself)
            for a in artifacts:
                proxy.fail(1, 201, when=_put_of(a.digest), headers={"OCI-Subject": img.digest})
            push(
                [img],
                _ref(proxy.host),
                ctx=Context(cache, given_http=Http()),
                credentials=NO_CREDENTIALS,
                referrers=artifacts,
            )
            assert proxy.count("PUT", "/manifests/sha256:") == 2
            assert (
                proxy.count("GET", "/manifests/sha256-") == 0
                and proxy.count("PUT", "/manifests/sha256-") == 0
            )
        finally:
            proxy.close()
