"""``slimline build --dry-run``: the plan, with no request to an index or a Debian mirror, no
build backend run and no output written; and the plan is what a build then makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import jsonschema
import pytest

from slimline import cli
from slimline.base.debian import ref as debian_ref
from slimline.cache.store import Cache
from slimline.oci.image import Platform
from tests.artifacts.helpers import LocalIndex, make_wheel, serve
from tests.build.helpers import make_base, write_project
from tests.support import cache_dir

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "build-plan.schema.json").read_text())
WHEEL = "tinydep-0.3.0-py3-none-any.whl"


@contextmanager
def recording_mirror() -> Iterator[tuple[str, list[str]]]:
    """A Debian mirror on 127.0.0.1 that answers nothing but records every request."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian", seen
    finally:
        server.shutdown()
        server.server_close()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _plan(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    document = json.loads(_run([*argv, "--dry-run", "--json", "-q"], capsys))
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert isinstance(document, dict)
    return document


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_dry_run_fetches_builds_and_writes_nothing_and_plans_what_a_build_makes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLIMLINE_NO_LAYER_CACHE", raising=False)
    cache = tmp_path / "cache"
    base = make_base(Cache(cache), tmp_path / "base")
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=True)
        out = tmp_path / "out"
        argv = ["build", str(root), "--base", base, "--to", f"oci:{out}:t", "--cache-dir", str(cache)]
        project_files = _files(root)

        text = _run([*argv, "--dry-run"], capsys)
        assert index.requests == [], "a dry run asked the index"
        assert not out.exists() and _files(root) == project_files, "a dry run wrote or built something"
        assert not (cache / "built-wheels").exists(), "a dry run ran the project's backend"
        lines = text.splitlines()
        assert lines[0].startswith("dry run: hello-app:1.2.0 from ") and "groups: main" in lines
        assert f"  base {base}: read from the local disk" in lines
        assert "  target: CPython 3.11.2 (/usr/bin/python3.11) on linux/amd64, glibc 2.36" in lines
        assert f"    tinydep 0.3.0: {WHEEL} [download]" in lines
        assert f"output: oci:{out}:t" in lines

        before = _plan(argv, capsys)
        (platform,) = before["platforms"]
        assert platform["base"]["how"] == "read" and platform["sizes_known"] is False
        assert platform["distributions"] == [
            {
                "name": "tinydep",
                "version": "0.3.0",
                "origin": "index",
                "source": index.url,
                "artifact": WHEEL,
                "action": "download",
            }
        ]
        _run(argv, capsys)  # the real build
        after = _plan(argv, capsys)

    (platform,) = after["platforms"]
    assert platform["distributions"][0]["action"] == "cached" and platform["sizes_known"] is True
    # the layers planned are the layers the build made (the project layer's line aside)
    index_json = json.loads((out / "index.json").read_text())
    manifest = json.loads((out / "blobs/sha256" / index_json["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((out / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    made = [h["created_by"] for h in config["history"] if not h.get("empty_layer")]
    planned = [layer["created_by"] for layer in platform["layers"]]
    assert len(planned) == len(made) == len(manifest["layers"])
    assert planned[:-1] == made[:-1]
    assert [layer["kind"] for layer in platform["layers"]] == [
        "base",
        "base",
        "venv",
        "dependencies",
        "project",
    ]
    assert platform["base"]["digest"] is not None


@pytest.mark.network
def test_a_debian_base_plans_the_layers_a_build_makes_with_its_standard_library_compiled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the standard library's bytecode layer (on by default for debian: bases) was planned only
    # with --bytecode, and under another history line than the build writes
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=False)
        out = tmp_path / "out"
        argv = ["build", str(root), "--base", "debian:bookworm", "--to", f"oci:{out}:t"]
        argv += ["--cache-dir", str(cache_dir())]  # the base pinned and assembled once for the suite
        _run(argv, capsys)
        plan = _plan(argv, capsys)
        without = _plan([*argv, "--no-stdlib-bytecode"], capsys)
    (platform,) = plan["platforms"]
    assert platform["base"]["how"] == "pinned"
    made = _history(out)
    planned = [layer["created_by"] for layer in platform["layers"]]
    assert planned[:-1] == made[:-1] and len(planned) == len(made)
    assert [x["kind"] for x in platform["layers"]].count("stdlib") == 1
    assert "stdlib" not in [x["kind"] for x in without["platforms"][0]["layers"]]


def _history(layout: Path) -> list[str]:
    index_json = json.loads((layout / "index.json").read_text())
    (entry,) = [
        m for m in index_json["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "t"
    ]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"][7:]).read_text())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    return [h["created_by"] for h in config["history"] if not h.get("empty_layer")]


def test_a_debian_base_not_pinned_is_planned_for_its_suite_without_the_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel("tinydep", "0.3.0")
    with recording_mirror() as (mirror, seen), serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        monkeypatch.setenv("SLIMLINE_DEBIAN_MIRROR", mirror)
        root = write_project(tmp_path / "proj", index.url, package=False)
        cache = str(tmp_path / "cache")
        named = _plan(["build", str(root), "--base", "debian:bookworm", "--cache-dir", cache], capsys)
        default = _plan(["build", str(root), "--cache-dir", cache, "--platform", "linux/arm64"], capsys)
        assert seen == [] and index.requests == []
    (platform,) = named["platforms"]
    expected = debian_ref.expected_target(debian_ref.DebianRef("bookworm"), Platform.parse("linux/amd64"))
    assert expected is not None
    assert platform["base"] == {"ref": "debian:bookworm", "how": "assemble", "digest": None}
    assert platform["target"]["python_version"] == list(expected.python_version)
    assert platform["target"]["description"] == str(expected)
    assert platform["layers"][0]["kind"] == "base" and "Debian archive" in platform["layers"][0]["created_by"]
    assert [d["name"] for d in platform["distributions"]] == ["tinydep"]
    (platform,) = default["platforms"]
    assert platform["platform"] == "linux/arm64/v8" and platform["base"]["how"] == "assemble"
    assert platform["base"]["ref"].startswith("debian:")  # the suite that fits the lock, as a build chooses


def test_a_registry_base_is_not_pulled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=False)
        ref = "127.0.0.1:9/team/python:3.12"  # nothing listens there: a pull would fail the command
        argv = ["build", str(root), "--base", ref, "--cache-dir", str(tmp_path / "cache")]
        plan = _plan(argv, capsys)
        text = _run([*argv, "--dry-run"], capsys)
    (platform,) = plan["platforms"]
    assert platform["base"] == {"ref": ref, "how": "pull", "digest": None}
    assert platform["target"] is None and platform["distributions"] is None
    assert "  target: unknown until the base is pulled" in text.splitlines()


def test_groups_not_included_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from slimline.project import pyproject as project_mod

    wheel = make_wheel("tinydep", "0.3.0")
    with serve(LocalIndex(files={"tinydep": {WHEEL: wheel}})) as index:
        root = write_project(tmp_path / "proj", index.url, package=False)
        old = project_mod.load(root).content_hash()
        pyproject = root / "pyproject.toml"
        text = pyproject.read_text().replace(
            "[tool.poetry]\n", "[tool.poetry.group.dev.dependencies]\n\n[tool.poetry]\n"
        )
        pyproject.write_text(text)
        lock = root / "poetry.lock"
        lock.write_text(lock.read_text().replace(old, project_mod.load(root).content_hash()))
        monkeypatch.chdir(tmp_path)
        base = make_base(Cache(tmp_path / "cache"), tmp_path / "base")
        argv = ["build", str(root), "--base", base, "--cache-dir", str(tmp_path / "cache")]
        plan = _plan([*argv, "--with", "dev"], capsys)
        assert plan["groups"] == ["main", "dev"] and plan["groups_not_included"] == []
        plan = _plan(argv, capsys)
    assert plan["groups"] == ["main"] and plan["groups_not_included"] == ["dev"]
