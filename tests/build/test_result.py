"""``--json``: the one document ``build`` and ``base`` print, validated against its published
schema (docs/build-result.schema.json) and checked against the outputs actually written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from slimline import cli, layers
from slimline.build.result import Built, Result, Written, statuses
from slimline.cache.store import Cache
from slimline.layers.filetree import TreeBuilder
from slimline.oci import layout, reference
from slimline.oci.image import History, Image, Platform
from slimline.report import Collect, Quiet
from tests.artifacts.helpers import LocalIndex
from tests.build.helpers import make_base, write_project
from tests.oci.registry_helpers import registry

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "build-result.schema.json").read_text())


def valid(document: Any) -> dict[str, Any]:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)
    assert isinstance(document, dict)
    return document


def written(out: Path) -> dict[str, Any]:
    """The manifest the layout's index.json names (one platform)."""
    index = json.loads((out / "index.json").read_text())

    # the image, not the index of its referrers (SBOM, provenance) tagged sha256-<hex>
    def tag(m: dict[str, Any]) -> str:
        return str(m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""))

    (entry,) = [m for m in index["manifests"] if not tag(m).startswith("sha256-")]
    manifest = json.loads((out / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")).read_bytes())
    return {"digest": entry["digest"], "manifest": manifest}


def _json_build(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    code = cli.main([*argv, "--json", "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return valid(json.loads(captured.out))  # the whole of stdout is one document


def test_build_json_describes_what_was_made_and_written(
    tmp_path: Path, index: LocalIndex, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base goes to a local registry (``base --json``) and is built on by digest: a base the
    memo trusts, so the second build is the memo's and the document says so."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE", raising=False)
    cache = tmp_path / "cache"
    local = make_base(Cache(cache), tmp_path / "base")
    root = write_project(tmp_path / "proj", index.url, package=False)  # its files: the memo serves edits
    out = tmp_path / "out"
    with registry(tmp_path / "reg") as reg:
        insecure = ["--insecure-registry", reg.host, "--cache-dir", str(cache)]
        pushed = _json_build(["base", local, "--to", f"docker://{reg.host}/base:1", *insecure], capsys)
        assert pushed["command"] == "base" and pushed["memo"] is False
        assert [layer["status"] for layer in pushed["images"][0]["layers"]] == ["base", "base"]
        (output,) = pushed["outputs"]
        assert output == {"ref": f"docker://{reg.host}/base:1", "pull": f"{reg.host}/base@{pushed['digest']}"}
        argv = ["build", str(root), "--base", output["pull"], "--to", f"oci:{out}:t", *insecure]
        first = _json_build(argv, capsys)
        again = _json_build(argv, capsys)  # unchanged: the memo serves it, every layer is reused
        source = root / "main.py"
        source.write_text(source.read_text() + "# edited\n")
        edited = _json_build(argv, capsys)  # an edit: only the project layer is new

    assert first["command"] == "build" and first["name"] == "hello-app:1.2.0" and first["memo"] is False
    assert first["index_digest"] is None
    (image,) = first["images"]
    assert image["platform"] == "linux/amd64" and image["manifest_digest"] == first["digest"]
    status = [layer["status"] for layer in image["layers"]]
    assert status[:2] == ["base", "base"] and set(status[2:]) == {"new"}, status  # make_base has two layers
    assert [layer["created_by"] for layer in image["layers"][:2]] == ["base files", "libc"]
    assert image["layers"][-1]["created_by"], "the project layer says what made it"
    assert image["layer_counts"] == {"base": 2, "reused": 0, "new": len(status) - 2}
    assert first["warnings"] == []

    assert again["memo"] is True and again["digest"] == first["digest"]
    reused = ["base", "base"] + ["reused"] * (len(status) - 2)
    assert [layer["status"] for layer in again["images"][0]["layers"]] == reused
    assert edited["memo"] is True and edited["digest"] != first["digest"]
    assert [layer["status"] for layer in edited["images"][0]["layers"]] == [*reused[:-1], "new"]

    # what the last document says is what was written
    on_disk = written(out)
    assert edited["digest"] == on_disk["digest"]
    assert edited["outputs"] == [{"ref": f"oci:{out}:t", "pull": on_disk["digest"]}]
    (image,) = edited["images"]
    assert image["config_digest"] == on_disk["manifest"]["config"]["digest"]
    manifest_layers = on_disk["manifest"]["layers"]
    assert [(x["digest"], x["size"]) for x in image["layers"]] == [
        (d["digest"], d["size"]) for d in manifest_layers
    ]
    assert image["layers_size"] == sum(d["size"] for d in manifest_layers)

    # a full build of the same (no layer cache, no memo) reports every layer above the base as new
    monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
    full = _json_build(
        ["build", str(root), "--base", local, "--to", f"oci:{out}:t", "--cache-dir", str(cache)], capsys
    )
    assert full["memo"] is False and full["images"][0]["layer_counts"]["reused"] == 0


def _image(cache: Cache, arch: str) -> Image:
    tree = TreeBuilder()
    tree.data("etc/arch", arch.encode())
    return Image(
        platform=Platform.parse(f"linux/{arch}"),
        layers=(layers.write(tree.freeze(), cache=cache),),
        history=(History(f"files for {arch}"),),
    )


def test_the_index_digest_is_the_one_outputs_write(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    images = [_image(cache, "amd64"), _image(cache, "arm64")]
    built = tuple(Built(i, statuses(base=0, made=(True,)), 0.5) for i in images)
    result = Result(
        "build",
        "app:1",
        built,
        (Written("oci:x", "sha256:" + "0" * 64),),
        False,
        {"build": 1.0, "publish": 0.1},
    )
    pulled = layout.write(images, reference.OciRef(tmp_path / "out", "t"))
    assert result.index_digest == pulled
    doc = valid(result.to_json(warnings=["the base lacks libfoo"], total=1.2))
    assert doc["digest"] == pulled
    assert [i["platform"] for i in doc["images"]] == [str(i.platform) for i in images]
    assert doc["warnings"] == ["the base lacks libfoo"] and doc["seconds"]["total"] == 1.2


def test_schema_rejects_what_it_does_not_describe(tmp_path: Path) -> None:
    """The schema is strict: an unknown key or a wrong status fails validation (stable keys)."""
    cache = Cache(tmp_path / "cache")
    built = (Built(_image(cache, "amd64"), ("new",), 0.1),)
    doc = Result(
        "build", "app:1", built, (Written("oci:x", "sha256:" + "1" * 64),), False, {"build": 1, "publish": 0}
    ).to_json(total=1)
    valid(doc)
    for broken in (
        {**doc, "extra": 1},
        {
            **doc,
            "images": [
                {**doc["images"][0], "layers": [{**doc["images"][0]["layers"][0], "status": "cached"}]}
            ],
        },
        {k: v for k, v in doc.items() if k != "warnings"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            valid(broken)


def test_collect_keeps_warnings_and_passes_everything_on() -> None:
    lines: list[str] = []

    class Lines(Quiet):
        def step(self, text: str) -> None:
            lines.append(text)

    collect = Collect(Lines())
    collect.step("reading base")
    collect.step("warning: the base lacks libfoo")
    assert collect.warnings == ["the base lacks libfoo"]
    assert lines == ["reading base", "warning: the base lacks libfoo"]
