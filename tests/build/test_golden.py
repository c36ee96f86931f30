"""The whole build, in-process and offline, on a synthetic ``oci:`` base: golden digests.

These pin what the conductor makes from fixed inputs (a base image written here, wheels served
by a local index on 127.0.0.1, a project built by a real PEP 517 backend kept in its tree), so
a change to how the stages are wired that changes a byte of any image fails here in a second.
A deliberate change of the bytes (a new ``FORMAT_VERSION``) updates the pinned digests.

Two paths are pinned: a packaged project (its wheel built by its backend, one dependency from
the index, a console script) and a ``package-mode = false`` project (its files copied).  The
command line is driven in-process as well, twice, so the memo's rebuild is checked against the
full build's digest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimline.cache.store import Cache
from slimline.oci import layout, reference, validate
from slimline.oci.image import Platform
from tests.artifacts.helpers import LocalIndex
from tests.build.helpers import build_cli, make_base, write_project

# Golden digests: what these inputs build into.  Change only with a deliberate format change.
PACKAGED_DIGEST = "sha256:0a4e7380cfd297d1fb5d3f813a9961a45a1de118ef34dae8293c7885fcc0b34e"
APP_DIGEST = "sha256:200176b1d98b06a534fd703efb203915e982e49ed8413b1841cdae1042c90dda"


@pytest.mark.parametrize(("package", "golden"), [(True, "PACKAGED_DIGEST"), (False, "APP_DIGEST")])
def test_build_in_process_gives_the_pinned_digest(
    tmp_path: Path,
    index: LocalIndex,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    package: bool,
    golden: str,
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    cache_dir = tmp_path / "cache"
    base = make_base(Cache(cache_dir), tmp_path / "base")
    root = write_project(tmp_path / "proj", index.url, package=package)
    out = tmp_path / "out"

    first = build_cli(root, base, out, cache_dir, capsys)
    validate.validate(out)
    image = layout.read(
        reference.OciRef(out, "t"), platform=Platform.parse("linux/amd64"), cache=Cache(cache_dir)
    )
    assert first == globals()[golden]

    # the memo's rebuild with nothing changed; after an edit, the memo's rebuild and a full one agree
    assert build_cli(root, base, out, cache_dir, capsys) == first
    source = root / ("hello_app/__init__.py" if package else "main.py")
    source.write_text(source.read_text() + "# edited\n")
    edited = build_cli(root, base, out, cache_dir, capsys)
    assert edited != first
    monkeypatch.setenv("SLIMLINE_NO_LAYER_CACHE", "1")
    assert build_cli(root, base, out, cache_dir, capsys) == edited
    config = json.loads(image.config_bytes)["config"]
    assert config["User"] == "65532:65532"
    assert "GREETING=hi" in config["Env"]
    assert config["Labels"]["org.example.team"] == "core"
