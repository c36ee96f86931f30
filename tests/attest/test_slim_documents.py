"""The SBOMs of a slim image list what slim mode left out of each distribution: exactly the rows of
its ``SLIMLINE-DROPPED`` list, read back from the image; the same from the layer cache's record,
from the layer blob when the record is gone, and from the memo; none for an image built without
slim mode; and ``slimline inspect`` shows the same lists.  In-process builds on the synthetic
base, a real wheel with a test suite, a stub, a C source and a header installed outside
site-packages."""

from __future__ import annotations

import csv
import gzip
import io
import json
import posixpath
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimline import cli
from slimline.cache.store import Cache
from tests.artifacts.helpers import LocalIndex, make_wheel, serve, sha256
from tests.build.helpers import make_base, tinydep_lock, write_project

EXTRA = {
    "tinydep/tests/__init__.py": b"",
    "tinydep/tests/test_core.py": b"def test_it():\n    assert True\n",
    "tinydep/core.pyi": b"VALUE: int\n",
    "tinydep/_speedups.c": b"int speed(void) { return 1; }\n",
    "tinydep-0.3.0.data/headers/tinydep.h": b"int speed(void);\n",
}
WHEEL = make_wheel("tinydep", "0.3.0", extra=EXTRA)
WHEEL_NAME = "tinydep-0.3.0-py3-none-any.whl"
PROPERTY = "slimline:slim:dropped"


@pytest.fixture
def index() -> Iterator[LocalIndex]:
    with serve(LocalIndex(files={"tinydep": {WHEEL_NAME: WHEEL}})) as idx:
        yield idx


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: LocalIndex) -> tuple[Path, str]:
    """The project (locked to the wheel above) and the base's reference."""
    from slimline.project import pyproject as project_mod

    for name in ("SOURCE_DATE_EPOCH", "SLIMLINE_NO_LAYER_CACHE", "SLIMLINE_BUILDER_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the base is named relative to it
    base = make_base(Cache(tmp_path / "cache"), tmp_path / "base")
    root = write_project(tmp_path / "proj", index.url, package=True)
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(
        text.replace("[tool.slimline]\n", '[tool.slimline]\nsbom-format = ["cyclonedx", "spdx"]\n')
    )
    digest = project_mod.load(root).content_hash()
    (root / "poetry.lock").write_text(tinydep_lock(digest, index.url, WHEEL_NAME, sha256(WHEEL)))
    return root, base


def _build(
    tmp: Path, world: tuple[Path, str], out: str, capsys: pytest.CaptureFixture[str], *more: str
) -> str:
    root, base = world
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
    return captured.err


def _lists(layout: Path) -> dict[str, list[list[str]]]:
    """Every SLIMLINE-DROPPED list of the layout's image, read from its layers: path -> rows."""
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    found = {}
    for layer in manifest["layers"]:
        assert layer["mediaType"].endswith("gzip")
        with tarfile.open(
            fileobj=io.BytesIO(gzip.decompress((blobs / layer["digest"][7:]).read_bytes()))
        ) as tar:
            for m in tar:
                if m.name.endswith(".dist-info/SLIMLINE-DROPPED"):
                    text = tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                    found[m.name] = list(csv.reader(io.StringIO(text)))
    return found


def _expected(layout: Path) -> tuple[list[str], int]:
    """The image paths and bytes tinydep's SLIMLINE-DROPPED lists (its rows resolved from site-packages)."""
    lists = _lists(layout)
    assert list(lists) == ["app/.venv/lib/python3.11/site-packages/tinydep-0.3.0.dist-info/SLIMLINE-DROPPED"]
    (path, rows), site = next(iter(lists.items())), "/app/.venv/lib/python3.11/site-packages"
    assert posixpath.dirname(posixpath.dirname(path)) == site[1:]
    return sorted(posixpath.normpath(f"{site}/{r[0]}") for r in rows), sum(int(r[2]) for r in rows)


def _cyclonedx(sbom: Path) -> dict[str, list[str]]:
    """tinydep's slim properties in the CycloneDX SBOM (validated first): name -> values."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = (sbom / "sbom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    out: dict[str, list[str]] = {}
    for c in [doc["metadata"]["component"], *doc["components"]]:
        for p in c.get("properties", []):
            if p["name"].startswith(PROPERTY):
                assert c["bom-ref"] == "pypi:tinydep", c
                out.setdefault(p["name"], []).append(p["value"])
    return out


def _spdx(sbom: Path) -> dict[str, list[str]]:
    """tinydep's slim annotations in the SPDX SBOM (parsed and validated by spdx-tools): name -> values."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    doc = parse_file(str(sbom / "sbom.spdx.json"))
    assert validate_full_spdx_document(doc) == []
    tinydep = next(p.spdx_id for p in doc.packages if p.name == "tinydep")
    out: dict[str, list[str]] = {}
    for a in doc.annotations:
        if a.annotation_comment.startswith(PROPERTY):
            assert a.spdx_id == tinydep and a.annotator.name.startswith("slimline-"), a
            name, _, value = a.annotation_comment.partition("=")
            out.setdefault(name, []).append(value)
    return out


def _said(sbom: Path) -> dict[str, list[str]]:
    """What both SBOMs say (they must agree)."""
    cdx = _cyclonedx(sbom)
    assert _spdx(sbom) == cdx
    return cdx


def test_a_slim_images_sboms_list_exactly_what_slim_mode_left_out(
    tmp_path: Path, world: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _build(tmp_path, world, "out", capsys, "--slim")
    paths, size = _expected(tmp_path / "out")
    site = "/app/.venv/lib/python3.11/site-packages"
    assert paths == sorted(
        [
            "/app/.venv/include/site/python3.11/tinydep/tinydep.h",
            f"{site}/tinydep/_speedups.c",
            f"{site}/tinydep/core.pyi",
            f"{site}/tinydep/tests/__init__.py",
            f"{site}/tinydep/tests/test_core.py",
        ]
    )  # the rule's choice, so that the comparison below is not between two empty lists
    said = _said(tmp_path / "out-sbom")
    assert said == {PROPERTY: paths, f"{PROPERTY}-count": [str(len(paths))], f"{PROPERTY}-bytes": [str(size)]}
    assert size == sum(len(d) for d in EXTRA.values() if d) > 0

    # a warm build (layers found): the record kept when the layer was made
    records = tmp_path / "cache" / "slim-dropped"
    assert len(list(records.rglob("*"))) >= 1
    _build(tmp_path, world, "warm", capsys, "--slim")
    assert _said(tmp_path / "warm-sbom") == said
    # the record gone (a layer from another machine's cache): read from the layer's blob
    shutil.rmtree(records)
    shutil.rmtree(tmp_path / "cache" / "attest")
    _build(tmp_path, world, "reread", capsys, "--slim")
    assert _said(tmp_path / "reread-sbom") == said
    assert records.is_dir()
    for name in ("sbom.cdx.json", "sbom.spdx.json"):
        assert (tmp_path / "reread-sbom" / name).read_bytes() == (tmp_path / "warm-sbom" / name).read_bytes()


def test_layers_made_again_say_the_same_and_an_image_without_slim_mode_lists_nothing(
    tmp_path: Path,
    world: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(A memo rebuild finishes the templates of the full build before it, keyed by these facts:
    tests/attest/test_documents.py shows it byte-identical to a full build.)"""
    _build(tmp_path, world, "out", capsys, "--slim")
    said = _said(tmp_path / "out-sbom")
    assert said[PROPERTY]
    monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
    _build(tmp_path, world, "full", capsys, "--slim")  # every layer made again, its list kept as made
    for name in ("sbom.cdx.json", "sbom.spdx.json"):
        assert (tmp_path / "out-sbom" / name).read_bytes() == (tmp_path / "full-sbom" / name).read_bytes()

    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE")
    _build(tmp_path, world, "plain", capsys)
    assert _lists(tmp_path / "plain") == {}
    assert _said(tmp_path / "plain-sbom") == {}
    sboms = [(tmp_path / "plain-sbom" / name).read_text() for name in ("sbom.cdx.json", "sbom.spdx.json")]
    assert not any("slimline:slim" in text or "tests/test_core.py" in text for text in sboms)


def test_inspect_shows_what_slim_mode_left_out(
    tmp_path: Path, world: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from slimline.inspect.text import human

    _build(tmp_path, world, "out", capsys, "--slim")
    paths, size = _expected(tmp_path / "out")
    _build(tmp_path, world, "plain", capsys)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(["inspect", f"oci:{tmp_path / 'out'}:t", "--json", "-q", *cache]) == 0
    (image,) = json.loads(capsys.readouterr().out)["images"]
    dists = {d["name"]: d["dropped"] for d in image["python"]}
    assert dists["tinydep"] == {"files": len(paths), "size": size, "paths": paths}
    assert dists["hello-app"] is None  # the project's own layer is never slimmed
    assert cli.main(["inspect", f"oci:{tmp_path / 'out'}:t", "-q", *cache]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("dropped by slim mode (--json lists the files):")
    assert lines[at + 1] == f"  tinydep 0.3.0: {len(paths)} files, {human(size)}"

    assert cli.main(["inspect", f"oci:{tmp_path / 'plain'}:t", "--json", "-q", *cache]) == 0
    (plain,) = json.loads(capsys.readouterr().out)["images"]
    assert [d["dropped"] for d in plain["python"]] == [None, None]
    assert cli.main(["inspect", f"oci:{tmp_path / 'plain'}:t", "-q", *cache]) == 0
    assert "dropped by slim mode" not in capsys.readouterr().out
