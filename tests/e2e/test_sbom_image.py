"""The SBOM of a real image (a click CLI on the default Debian base, real downloads) lists what
the image holds, one for one: its Python components are the image's ``*.dist-info`` and its
Debian components the base's dpkg records, read from the image unpacked by ``umoci``."""

from __future__ import annotations

import email.parser
import json
import shutil
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support import run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]


def test_components_equal_the_images_dist_infos_and_dpkg_records(locked_cli: Path, tmp_path: Path) -> None:
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    layout, files = tmp_path / "out", tmp_path / "sbom"
    slimline("build", str(proj), "--to", f"oci:{layout}:v1", "--sbom-out", str(files), "-q")
    cdx = json.loads((files / "sbom.cdx.json").read_text())
    rootfs = tmp_path / "bundle" / "rootfs"
    run([tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:v1", str(tmp_path / "bundle")])

    in_image = set()
    for meta in (rootfs / "app" / ".venv" / "lib").glob("python3.*/site-packages/*.dist-info/METADATA"):
        headers = email.parser.BytesHeaderParser().parsebytes(meta.read_bytes())
        in_image.add((str(canonicalize_name(str(headers["Name"]))), str(headers["Version"])))
    components = {c["bom-ref"]: c for c in cdx["components"]}
    listed = {(c["name"], c["version"]) for r, c in components.items() if r.startswith("pypi:")}
    project = components["project"]
    listed.add((str(canonicalize_name(project["name"])), project["version"]))
    assert listed == in_image
    assert all(c.get("hashes") for r, c in components.items() if r.startswith("pypi:"))

    dpkg = set()
    for record in (rootfs / "var" / "lib" / "dpkg" / "status.d").iterdir():
        if record.suffix in (".md5sums", ".sha256sums"):  # file lists, not control files
            continue
        fields = email.parser.BytesHeaderParser().parsebytes(record.read_bytes())
        dpkg.add((str(fields["Package"]), str(fields["Version"]), str(fields["Architecture"])))
    debs = {r: c for r, c in components.items() if r.startswith("deb:")}
    assert {
        (c["name"], c["version"], c["purl"].split("arch=")[1].split("&")[0]) for c in debs.values()
    } == dpkg
    assert all(len(c["hashes"][0]["content"]) == 64 for c in debs.values())
    assert all(
        c["purl"].startswith(f"pkg:deb/debian/{c['name']}@") and "distro=" in c["purl"] for c in debs.values()
    )

    statement = json.loads((files / "provenance.intoto.json").read_text())
    resolved = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d for d in resolved if d["name"] == "debian-inrelease"], resolved
