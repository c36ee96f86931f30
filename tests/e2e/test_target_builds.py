"""Builds in the builder, end to end: what the hooks of a build share, and wheels shared by runners.

The builder's root is read-only and Debian ships no ``.pyc``, so each hook process would compile
the standard library and the backend again.  The hooks of one build share a cache; two builds
never do (a build runs its package's code, which must not reach another package's wheel).
Sdists on a local index carry an in-tree backend (and a C file, so that they are built in the
builder) that reports, in the wheel it writes, what its second hook finds of the first hook's
cache; Poetry locks them, slimline builds them in the builder from the real Debian archive.

A wheel built for the target is shared through a registry (``--cache-repo``) like one built on
the host: a fresh runner whose layers differ (``--bytecode``) takes it from there and builds
nothing.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.artifacts.helpers import LocalIndex, serve
from tests.e2e_projects import layer_files, sdist_bytes
from tests.oci.registry_helpers import registry
from tests.support import poetry_env, run, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]

# {name} is the distribution's name; the backend writes a wheel by hand (no build requirement)
BACKEND = """\
import base64, hashlib, json, os, pathlib, sys, zipfile

NAME, VERSION = "{name}", "1.0"


def _cache():
    return pathlib.Path(sys.pycache_prefix)


def get_requires_for_build_wheel(config_settings=None):
    import email.parser  # compiled now, into this build's cache
    (_cache() / (NAME + "-first-hook")).write_text(str(os.getpid()))
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    facts = {{
        "markers": sorted(p.name for p in _cache().iterdir() if p.name.endswith("-first-hook")),
        "compiled": sorted(p.name for p in _cache().rglob("parser.cpython-*.pyc")),
        "dont_write": sys.dont_write_bytecode,
    }}
    info = NAME + "-" + VERSION + ".dist-info/"
    files = {{
        NAME + "_facts.json": json.dumps(facts).encode(),
        info + "METADATA": ("Metadata-Version: 2.1\\nName: " + NAME + "\\nVersion: " + VERSION).encode(),
        info + "WHEEL": b"Wheel-Version: 1.0\\nGenerator: probe\\nRoot-Is-Purelib: true\\nTag: py3-none-any",
    }}
    lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(path + ",sha256=" + digest + "," + str(len(data)) + "\\n")
    files[info + "RECORD"] = ("".join(lines) + info + "RECORD,,\\n").encode()
    name = NAME + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    return name
"""


def _sdist(name: str) -> bytes:
    return sdist_bytes(
        name,
        "1.0",
        {
            "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "probe_backend"\n'
            'backend-path = ["."]\n',
            "probe_backend.py": BACKEND.format(name=name),
            "native.c": "/* compiled code: the sdist is built in the builder */\n",
        },
    )


def _facts(layout: Path) -> dict[str, dict[str, object]]:
    found = layer_files(layout, lambda path: path.endswith("_facts.json"))
    return {Path(path).name: json.loads(data) for path, data in found}


def _names(count: int) -> list[str]:
    """New names every run: a wheel built before would be found in the test session's cache."""
    run_id = uuid.uuid4().hex[:8]
    return [f"probe-{chr(ord('a') + i)}{run_id}" for i in range(count)]


def _locked(proj: Path, names: list[str], index_url: str) -> None:
    proj.mkdir()
    (proj / "pyproject.toml").write_text(
        f'[project]\nname = "probes"\nversion = "0.1.0"\nrequires-python = ">=3.11,<3.12"\n'
        f"dependencies = {json.dumps([f'{n}==1.0' for n in names])}\n\n"
        "[tool.poetry]\npackage-mode = false\n\n"
        f'[[tool.poetry.source]]\nname = "local"\nurl = "{index_url}/"\npriority = "primary"\n'
    )
    run([tool("poetry"), "lock"], cwd=proj, env=poetry_env(), timeout=300)


def test_the_hooks_of_one_build_share_a_bytecode_cache_and_two_builds_do_not(tmp_path: Path) -> None:
    names = _names(2)
    files = {n: {f"{n}-1.0.tar.gz": _sdist(n.replace("-", "_"))} for n in names}
    proj = tmp_path / "probes"
    with serve(LocalIndex(files=files)) as index:
        _locked(proj, names, index.url)
        proc = slimline("build", str(proj), "-v", "--to", f"oci:{tmp_path / 'out'}:t")
    assert proc.stderr.count(" in the builder") >= 2, proc.stderr
    facts = _facts(tmp_path / "out")
    for name in (n.replace("-", "_") for n in names):
        seen = facts[f"{name}_facts.json"]
        assert seen["markers"] == [f"{name}-first-hook"]  # its own first hook's, no other build's
        assert seen["compiled"] and seen["dont_write"] is False


def test_a_wheel_built_for_the_target_is_shared_with_a_fresh_runner(tmp_path: Path) -> None:
    names = _names(1)
    files = {names[0]: {f"{names[0]}-1.0.tar.gz": _sdist(names[0].replace("-", "_"))}}
    proj = tmp_path / "probes"
    with serve(LocalIndex(files=files)) as index, registry(tmp_path / "reg") as reg:
        _locked(proj, names, index.url)
        shared = ["--cache-repo", f"{reg.host}/team/slimline-cache", "-v"]
        a = slimline(
            "build", str(proj), *shared, "--to", f"oci:{tmp_path / 'a'}:t",
            env={"SLIMLINE_CACHE_DIR": str(tmp_path / "cache-a")},
        )  # fmt: skip
        b = slimline(
            "build", str(proj), *shared, "--bytecode", "--to", f"oci:{tmp_path / 'b'}:t",
            env={"SLIMLINE_CACHE_DIR": str(tmp_path / "cache-b")},
        )  # fmt: skip
    assert f"building {names[0]} 1.0 for linux/amd64 in the builder" in a.stderr, a.stderr
    assert f"{names[0]} 1.0: wheel for linux/amd64 from the shared cache" in b.stderr, b.stderr
    assert " in the builder" not in b.stderr and "writing its files" not in b.stderr, b.stderr
    facts = _facts(tmp_path / "b")  # the wheel runner A built, in runner B's image
    assert facts[f"{names[0].replace('-', '_')}_facts.json"]["markers"] == [
        f"{names[0].replace('-', '_')}-first-hook"
    ]
