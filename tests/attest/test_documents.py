"""The SBOMs and provenance of in-process builds on the synthetic base: valid per their libraries,
what they list, attached to the layout as referrers, byte-identical across clean builds, and the
same from the memo's rebuild as from a full build."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline import cli
from slimline.attest import provenance, slots
from slimline.cache.store import Cache
from slimline.oci import referrers
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.build.helpers import make_base, tinydep_lock, write_project

SBOM_JSON = b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}\n'
WHEEL = make_wheel(
    "tinydep",
    "0.3.0",
    metadata="License-Expression: MIT OR Apache-2.0\nClassifier: License :: OSI Approved :: MIT License\n",
    extra={"tinydep-0.3.0.dist-info/sboms/vendored.cdx.json": SBOM_JSON},
)
WHEEL_NAME = "tinydep-0.3.0-py3-none-any.whl"


@pytest.fixture
def index() -> Iterator[LocalIndex]:
    with serve(LocalIndex(files={"tinydep": {WHEEL_NAME: WHEEL}})) as idx:
        yield idx


def _project(
    tmp: Path, index: LocalIndex, *, formats: str = '["cyclonedx", "spdx"]', package: bool = True
) -> tuple[Path, str]:
    from slimline.project import pyproject as project_mod

    base = make_base(Cache(tmp / "cache"), tmp / "base")
    root = write_project(tmp / "proj", index.url, package=package)
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(
        text.replace("[tool.slimline]\n", f"[tool.slimline]\nsbom-format = {formats}\n")
    )
    digest = project_mod.load(root).content_hash()
    (root / "poetry.lock").write_text(tinydep_lock(digest, index.url, WHEEL_NAME, sha256(WHEEL)))
    return root, base


def _build(
    tmp: Path,
    root: Path,
    base: str,
    out: str,
    capsys: pytest.CaptureFixture[str],
    *more: str,
    memo: bool = False,
) -> str:
    os.chdir(tmp)  # the base is named relative to it (the image records the name); the fixture restores it
    args = [
        "build",
        str(root),
        "--base",
        base,
        "--to",
        f"oci:{tmp / out}:t",
        "--cache-dir",
        str(tmp / "cache"),
    ]
    code = cli.main([*args, "--sbom-out", str(tmp / f"{out}-sbom"), *more])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # an oci: base may change on disk: these builds never use the memo (finish() is shared with it)
    assert ("nothing but the project changed" in captured.err) == memo, captured.err
    return captured.out.strip().splitlines()[-1]


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SOURCE_DATE_EPOCH", "SLIMLINE_NO_LAYER_CACHE", "SLIMLINE_BUILDER_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_documents_are_valid_and_list_what_the_image_holds(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], quiet_env: None
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    root, base = _project(tmp_path, index)
    digest = _build(tmp_path, root, base, "out", capsys)
    files = tmp_path / "out-sbom"
    cdx_text = (files / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx_text) is None
    spdx_doc = parse_file(str(files / "sbom.spdx.json"))
    assert validate_full_spdx_document(spdx_doc) == []

    cdx = json.loads(cdx_text)
    assert cdx["serialNumber"] == f"urn:uuid:{slots.serial_of(digest)}"
    assert cdx["metadata"]["component"]["version"] == digest
    assert cdx["metadata"]["timestamp"].startswith("1970-01-01T00:00:00")
    by_ref = {c["bom-ref"]: c for c in cdx["components"]}
    tinydep = by_ref["pypi:tinydep"]
    assert tinydep["purl"] == "pkg:pypi/tinydep@0.3.0"
    assert tinydep["hashes"] == [{"alg": "SHA-256", "content": sha256(WHEEL)}]
    assert tinydep["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    urls = {r["type"]: r["url"] for r in tinydep["externalReferences"]}
    assert urls["distribution"] == index.url.rstrip("/")
    assert (
        urls["bom"]
        == "file:///app/.venv/lib/python3.11/site-packages/tinydep-0.3.0.dist-info/sboms/vendored.cdx.json"
    )
    assert by_ref["project"]["version"] == "1.2.0"
    assert by_ref["python"]["version"] == "3.11.2"
    deps = {d["ref"]: d.get("dependsOn", []) for d in cdx["dependencies"]}
    assert deps["project"] == ["pypi:tinydep"]
    assert set(deps["image"]) == {"project", "python", "base"}

    statement = json.loads((files / "provenance.intoto.json").read_bytes())
    assert statement["_type"] == provenance.STATEMENT_TYPE
    assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
    resolved = {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert resolved["poetry.lock"]["digest"]["sha256"] == sha256((root / "poetry.lock").read_bytes())
    assert resolved["index"]["uri"] == index.url.rstrip("/")

    # the layout holds them as referrers of the image, found from index.json
    found = referrers.find(tmp_path / "out", digest)
    assert sorted(d["artifactType"] for d in found) == sorted(
        ["application/vnd.cyclonedx+json", "application/spdx+json", provenance.MEDIA_TYPE]
    )
    for d in found:
        manifest = json.loads((tmp_path / "out" / "blobs" / "sha256" / d["digest"][7:]).read_bytes())
        assert manifest["subject"]["digest"] == digest
        layer = manifest["layers"][0]
        blob = (tmp_path / "out" / "blobs" / "sha256" / layer["digest"][7:]).read_bytes()
        title = layer["annotations"]["org.opencontainers.image.title"]
        assert blob == (files / title).read_bytes()


def test_clean_builds_and_the_memo_give_byte_identical_documents(
    tmp_path: Path,
    index: LocalIndex,
    capsys: pytest.CaptureFixture[str],
    quiet_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, base = _project(tmp_path / "a", index)
    first = _build(tmp_path / "a", root, base, "out", capsys)
    other_root, other_base = _project(tmp_path / "b", index)
    assert _build(tmp_path / "b", other_root, other_base, "out", capsys) == first
    names = ("sbom.cdx.json", "sbom.spdx.json", "provenance.intoto.json")
    for name in names:
        assert (tmp_path / "a" / "out-sbom" / name).read_bytes() == (
            tmp_path / "b" / "out-sbom" / name
        ).read_bytes()

    source = root / "hello_app" / "__init__.py"
    source.write_text(source.read_text() + "# edited\n")
    edited = _build(tmp_path / "a", root, base, "memo", capsys)
    monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
    assert _build(tmp_path / "a", root, base, "full", capsys) == edited != first
    for name in names:
        memo_doc = (tmp_path / "a" / "memo-sbom" / name).read_bytes()
        assert memo_doc == (tmp_path / "a" / "full-sbom" / name).read_bytes()
        assert edited.removeprefix("sha256:").encode() in memo_doc


def test_no_sbom_attaches_nothing_and_a_rewrite_drops_stale_referrers(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], quiet_env: None
) -> None:
    root, base = _project(tmp_path, index, formats='["cyclonedx"]')
    first = _build(tmp_path, root, base, "out", capsys)
    assert len(referrers.find(tmp_path / "out", first)) == 2
    source = root / "hello_app" / "__init__.py"
    source.write_text(source.read_text() + "# edited\n")
    second = _build(tmp_path, root, base, "out", capsys)
    assert referrers.find(tmp_path / "out", first) == []  # the old image left the layout: so did its tag
    assert len(referrers.find(tmp_path / "out", second)) == 2
    source.write_text(source.read_text() + "# again\n")
    third = _build(tmp_path, root, base, "bare", capsys, "--no-sbom")
    tags = [
        e["annotations"]["org.opencontainers.image.ref.name"]
        for e in json.loads((tmp_path / "bare" / "index.json").read_text())["manifests"]
    ]
    assert tags == ["t"] and referrers.find(tmp_path / "bare", third) == []


def test_a_lock_pointing_a_package_elsewhere_is_refused_before_any_download(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], quiet_env: None
) -> None:
    with serve(LocalIndex(files={"tinydep": {WHEEL_NAME: WHEEL}})) as elsewhere:
        root, base = _project(tmp_path, index)
        lock = root / "poetry.lock"
        lock.write_text(lock.read_text().replace(f'url = "{index.url}"', f'url = "{elsewhere.url}"'))
        args = ["build", str(root), "--base", base, "--to", f"oci:{tmp_path / 'out'}:t"]
        code = cli.main([*args, "--cache-dir", str(tmp_path / "cache")])
        err = capsys.readouterr().err
        assert code != 0
        assert "tinydep 0.3.0: legacy " + elsewhere.url in err
        assert elsewhere.requests == [] and index.requests == []
        assert not (tmp_path / "out").exists()


def test_a_docker_archive_output_says_it_holds_no_referrers(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], quiet_env: None
) -> None:
    root, base = _project(tmp_path, index, formats='["cyclonedx"]')
    archive = tmp_path / "app.tar"
    args = ["build", str(root), "--base", base, "--to", f"docker-archive:{archive}:app:1"]
    code = cli.main([*args, "--to", f"oci:{tmp_path / 'out'}:t", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 0, err
    notes = [line for line in err.splitlines() if "cannot hold referrers" in line]
    assert len(notes) == 1 and "docker-archive" in notes[0]
    digest = json.loads((tmp_path / "out" / "index.json").read_text())["manifests"][0]["digest"]
    assert len(referrers.find(tmp_path / "out", digest)) == 2  # the layout beside it has them


def test_an_untagged_layout_with_referrers_still_names_one_image(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], quiet_env: None
) -> None:
    from slimline.oci import layout, reference
    from slimline.oci.image import Platform

    root, base = _project(tmp_path, index, formats='["cyclonedx"]')
    args = [
        "build",
        str(root),
        "--base",
        base,
        "--to",
        f"oci:{tmp_path / 'out'}",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert cli.main(args) == 0
    digest = capsys.readouterr().out.strip()
    assert len(json.loads((tmp_path / "out" / "index.json").read_text())["manifests"]) == 2
    read = layout.read(
        reference.OciRef(tmp_path / "out", None),
        platform=Platform.parse("linux/amd64"),
        cache=Cache(tmp_path / "c"),
    )
    assert read.digest == digest
