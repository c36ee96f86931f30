"""Parsing image references into typed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimline.oci.reference import (
    ArchiveRef,
    DaemonRef,
    DebianBaseRef,
    OciRef,
    Ref,
    ReferenceError_,
    RegistryRef,
    parse,
    parse_name,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci:out/image", OciRef(Path("out/image"), None)),
        ("oci:/abs/dir:v1", OciRef(Path("/abs/dir"), "v1")),
        ("oci:dir:docker.io/library/app:1.0", OciRef(Path("dir"), "docker.io/library/app:1.0")),
        ("docker-archive:app.tar", ArchiveRef(Path("app.tar"), None)),
        ("docker-archive:app.tar:app:1.0", ArchiveRef(Path("app.tar"), "localhost/app:1.0")),
        ("docker-archive:app.tar:app", ArchiveRef(Path("app.tar"), "localhost/app:latest")),
        ("docker-archive:app.tar:me/app:2", ArchiveRef(Path("app.tar"), "localhost/me/app:2")),
        ("docker-archive:a.tar:localhost:5000/app:3", ArchiveRef(Path("a.tar"), "localhost:5000/app:3")),
        ("docker-archive:a.tar:ghcr.io/o/app:4", ArchiveRef(Path("a.tar"), "ghcr.io/o/app:4")),
        ("python:3.12-slim", RegistryRef("docker.io", "library/python", "3.12-slim", None)),
        ("docker://python", RegistryRef("docker.io", "library/python", "latest", None)),
        ("docker://bitnami/redis:7", RegistryRef("docker.io", "bitnami/redis", "7", None)),
        ("index.docker.io/library/alpine:3", RegistryRef("docker.io", "library/alpine", "3", None)),
        ("localhost/app", RegistryRef("localhost", "app", "latest", None)),
        ("127.0.0.1:5000/a/b:c", RegistryRef("127.0.0.1:5000", "a/b", "c", None)),
        (f"ghcr.io/o/app@{DIGEST}", RegistryRef("ghcr.io", "o/app", None, DIGEST)),
        (f"ghcr.io/o/app:1@{DIGEST}", RegistryRef("ghcr.io", "o/app", "1", DIGEST)),
        ("docker:latest", RegistryRef("docker.io", "library/docker", "latest", None)),
        ("docker-daemon:app:1.0", DaemonRef("docker.io/library/app:1.0")),
        ("debian:bookworm", DebianBaseRef("debian:bookworm")),
        ("debian:trixie/python3.13", DebianBaseRef("debian:trixie/python3.13")),
    ],
)
def test_parses_the_forms_skopeo_and_podman_use(text: str, expected: Ref) -> None:
    assert parse(text, role="base") == expected


def test_registry_ref_strings_and_api_reference() -> None:
    ref = parse(f"ghcr.io/o/app:1@{DIGEST}", role="output")
    assert isinstance(ref, RegistryRef)
    assert str(ref) == f"ghcr.io/o/app:1@{DIGEST}"
    assert ref.reference == DIGEST  # the digest wins over the tag
    assert ref.name == "ghcr.io/o/app"
    assert str(parse("python", role="base")) == "docker.io/library/python:latest"
    assert str(parse("oci:d:v1", role="output")) == "oci:d:v1"
    assert str(parse("docker-archive:a.tar:app:1", role="output")) == "docker-archive:a.tar:localhost/app:1"


def test_parse_name_qualifies_with_the_default_registry() -> None:
    assert str(parse_name("app:1.0", default_registry="localhost")) == "localhost/app:1.0"
    assert str(parse_name("app")) == "docker.io/library/app:latest"
    assert str(parse_name("quay.io/x/y:z", default_registry="localhost")) == "quay.io/x/y:z"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("oci:", "layout directory is missing"),
        ("oci:dir:bad tag", "not a valid tag"),
        ("docker-archive:", "archive path is missing"),
        ("docker-archive:a.tar:App:1", "not a valid repository name"),
        (f"docker-archive:a.tar:app@{DIGEST}", "not by digest"),
        ("dir:/tmp/x", "dir: transport is not supported"),
        ("containers-storage:app", "containers-storage: transport is not supported"),
        ("oci-archive:x.tar", "oci-archive: transport is not supported"),
        ("http://example.invalid/x", "unknown transport"),
        ("MyImage", "not a valid repository name"),
        ("app@sha256:123", "not a digest"),
        ("app:-x", "not a valid tag"),
        ("app:" + "x" * 129, "not a valid tag"),
        ("bad_host:99/x", "not a registry host"),
        (" app", "spaces"),
        ("", "empty"),
        ("debian:", "suite is missing"),
    ],
)
def test_bad_references_say_what_is_wrong_and_name_the_forms(text: str, problem: str) -> None:
    with pytest.raises(ReferenceError_) as info:
        parse(text, role="base")
    assert problem in str(info.value)
    assert "oci:PATH[:TAG]" in str(info.value)  # the hint lists the expected forms
    assert info.value.text == text


def test_debian_is_a_base_only() -> None:
    with pytest.raises(ReferenceError_, match="cannot be an output"):
        parse("debian:bookworm", role="output")
