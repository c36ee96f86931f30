"""End to end: the example apps built with ``--slim`` run, and hold less (real wheels, podman)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import ROOT, podman_run, run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]

PY = ["--entrypoint", "/app/.venv/bin/python"]


def _compressed_size(layout: Path, tag: str) -> int:
    raw = json.loads(run([tool("skopeo"), "inspect", "--raw", f"oci:{layout}:{tag}"]).stdout)
    return sum(int(layer["size"]) for layer in raw["layers"])


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
    plain = slimline("build", str(proj), "--to", f"oci:{layout}:plain", "-q").stdout.strip().splitlines()[-1]
    slim = (
        slimline("build", str(proj), "--slim", "--to", f"oci:{layout}:slim", "-q")
        .stdout.strip()
        .splitlines()[-1]
    )
    again = slimline(
        "build", str(proj), "--slim", "--to", f"oci:{tmp_path / 'again'}:slim", "-q",
        env={"SLIMLINE_NO_LAYER_CACHE": "1"},
    )  # fmt: skip
    assert again.stdout.strip().splitlines()[-1] == slim != plain
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
