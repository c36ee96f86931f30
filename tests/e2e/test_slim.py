"""End to end: the example apps built with ``--slim`` run, and hold less (real wheels, podman);
their SBOMs list what slim mode left out, row for row (also after a rebuild from the memo)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import posixpath
import shutil
import tarfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support import ROOT, podman_run, run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]

PY = ["--entrypoint", "/app/.venv/bin/python"]


def _compressed_size(layout: Path, tag: str) -> int:
    raw = json.loads(run([tool("skopeo"), "inspect", "--raw", f"oci:{layout}:{tag}"]).stdout)
    return sum(int(layer["size"]) for layer in raw["layers"])


def _dropped_in_image(layout: Path, tag: str) -> dict[str, list[str]]:
    """Canonical distribution name -> the paths in the image its SLIMLINE-DROPPED lists, sorted;
    read from the layers with tarfile."""
    raw = json.loads(run([tool("skopeo"), "inspect", "--raw", f"oci:{layout}:{tag}"]).stdout)
    found: dict[str, list[str]] = {}
    for layer in raw["layers"]:
        assert layer["mediaType"].endswith("+gzip"), layer
        blob = gzip.decompress((layout / "blobs" / "sha256" / layer["digest"][7:]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            for m in tar:
                if m.name.endswith(".dist-info/SLIMLINE-DROPPED"):
                    site = posixpath.dirname(posixpath.dirname(m.name))
                    rows = csv.reader(io.StringIO(tar.extractfile(m).read().decode()))  # type: ignore[union-attr]
                    name = canonicalize_name(posixpath.basename(posixpath.dirname(m.name)).partition("-")[0])
                    found[name] = sorted(posixpath.normpath(f"/{site}/{r[0]}") for r in rows if r)
    return found


def _dropped_in_sbom(sbom: Path) -> dict[str, list[str]]:
    """Component name -> its slimline:slim:dropped properties, in the CycloneDX SBOM's order."""
    cdx = json.loads((sbom / "sbom.cdx.json").read_text())
    found: dict[str, list[str]] = {}
    for c in cdx["components"]:
        paths = [p["value"] for p in c.get("properties", []) if p["name"] == "slimline:slim:dropped"]
        if paths:
            found[c["name"]] = paths
            count = [p["value"] for p in c["properties"] if p["name"] == "slimline:slim:dropped-count"]
            assert count == [str(len(paths))], c["name"]
    return found


@pytest.mark.parametrize(("app", "module"), [("fastapi-app", "hello.main"), ("cli-app", "tally.cli")])
def test_example_apps_import_on_slim_images(app: str, module: str, tmp_path: Path) -> None:
    proj = tmp_path / app
    shutil.copytree(ROOT / "examples" / app, proj, ignore=shutil.ignore_patterns("dist"))
    layout = tmp_path / "out"
    slimline("build", str(proj), "--slim", "--to", f"oci:{layout}:s", "-q")
    out = podman_run(f"oci:{layout}:s", "-c", f"import {module}; print('ok')", flags=PY).stdout
    assert out.strip() == "ok"


def test_the_pandas_job_runs_slim_and_accounts_for_what_was_dropped(tmp_path: Path) -> None:
    proj = tmp_path / "pandas-job"
    shutil.copytree(ROOT / "examples" / "pandas-job", proj, ignore=shutil.ignore_patterns("dist"))
    layout = tmp_path / "out"
    plain = slimline(
        "build", str(proj), "--to", f"oci:{layout}:plain", "-q", "--sbom-out", str(tmp_path / "plain-sbom")
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    slim = slimline(
        "build", str(proj), "--slim", "--to", f"oci:{layout}:slim", "-q", "--sbom-out", str(tmp_path / "sbom")
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    again = slimline(
        "build", str(proj), "--slim", "--to", f"oci:{tmp_path / 'again'}:slim", "-q",
        "--sbom-out", str(tmp_path / "again-sbom"), env={"SLIMLINE_NO_LAYER_CACHE": "1"},
    )  # fmt: skip
    assert again.stdout.strip().splitlines()[-1] == slim != plain

    # the SBOM lists every row of every SLIMLINE-DROPPED, the same when every layer is made again
    in_image = _dropped_in_image(layout, "slim")
    assert {"numpy", "pandas"} <= set(in_image)
    assert _dropped_in_sbom(tmp_path / "sbom") == in_image
    first, remade = (tmp_path / d / "sbom.cdx.json" for d in ("sbom", "again-sbom"))
    assert first.read_bytes() == remade.read_bytes()
    assert _dropped_in_sbom(tmp_path / "plain-sbom") == {} and _dropped_in_image(layout, "plain") == {}
    job = next((proj / "src" / "report").glob("*.py"))
    job.write_text(job.read_text() + "# edited\n")
    memo = slimline(
        "build", str(proj), "--slim", "--to", f"oci:{tmp_path / 'memo'}:slim",
        "--sbom-out", str(tmp_path / "memo-sbom"),
    )  # fmt: skip
    assert "as in the last build" in memo.stderr, memo.stderr  # the memo's rebuild
    assert _dropped_in_sbom(tmp_path / "memo-sbom") == in_image
    assert _compressed_size(layout, "slim") < _compressed_size(layout, "plain")
    assert podman_run(f"oci:{layout}:slim").stdout == podman_run(f"oci:{layout}:plain").stdout

    # RECORD read as written (importlib.metadata's files skip missing paths from Python 3.12 on)
    probe = """\
import base64, csv, hashlib, importlib.metadata as md, os, numpy.testing, pandas.testing
for name in ("numpy", "pandas"):
    dist = md.distribution(name)
    site = os.path.dirname(dist._path)
    dropped = {row[0] for row in csv.reader(dist.read_text("SLIMLINE-DROPPED").splitlines())}
    missing = 0
    for row in csv.reader(dist.read_text("RECORD").splitlines()):
        path = os.path.normpath(os.path.join(site, row[0]))
        if row[0] in dropped:
            assert not os.path.exists(path), path
            missing += 1
        elif row[1]:
            digest = base64.urlsafe_b64encode(hashlib.sha256(open(path, "rb").read()).digest()).rstrip(b"=")
            assert "sha256=" + digest.decode() == row[1], path
            assert "/tests/" not in row[0], row[0]
    assert missing == len(dropped) > 100, (name, missing, len(dropped))
    print(name, "ok")
"""
    out = podman_run(f"oci:{layout}:slim", "-c", probe, flags=PY).stdout.split()
    assert out == ["numpy", "ok", "pandas", "ok"]
