"""End to end: real Poetry locks, real downloads, real Debian base, images run with real podman + runc.

Each project is locked once per session (``poetry lock`` costs seconds) and copied per test.
"""

from __future__ import annotations

import json
import shutil
import socket
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from slimline.errors import ExitStatus
from tests.support import ROOT, podman, podman_run, run, skopeo_inspect, slimline, tool

pytestmark = [pytest.mark.network, pytest.mark.container]


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _digest(proc_stdout: str) -> str:
    lines = [line for line in proc_stdout.splitlines() if line.strip()]
    assert lines, "slimline printed no digest"
    return lines[-1].split("@")[-1].strip()


def _layout_index(layout: Path) -> Any:
    return json.loads((layout / "index.json").read_text())


def _manifest(layout: Path, digest: str) -> Any:
    blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return json.loads(blob.read_text())


def _venv_dists(bundle_rootfs: Path) -> set[str]:
    site = next((bundle_rootfs / "app" / ".venv" / "lib").glob("python3.*")) / "site-packages"
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def _unpack(layout: Path, tag: str, dest: Path) -> Path:
    run([tool("umoci"), "unpack", "--rootless", "--image", f"{layout}:{tag}", str(dest)])
    return dest / "rootfs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- tests --------------------------------------------------------------------------------------


def test_cli_image_runs_and_holds_exactly_the_main_group(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    layout = tmp_path / "out"
    archive = tmp_path / "greet.tar"
    proc = slimline(
        "build", str(proj), "--to", f"oci:{layout}:v1", "--to", f"docker-archive:{archive}:greet:v1",
        "--label", "org.opencontainers.image.revision=0123abc", "--env", "GREET_MODE=a=b",
    )  # fmt: skip
    digest = _digest(proc.stdout)
    assert digest.startswith("sha256:")

    raw = skopeo_inspect(f"oci:{layout}:v1")
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    rootfs = _unpack(layout, "v1", tmp_path / "bundle")
    assert _venv_dists(rootfs) == {"click", "greet"}  # no dev group, no extra, no colorama (win32 only)
    assert not (rootfs / "app" / ".venv" / "bin" / "pip").exists()
    script = (rootfs / "app" / ".venv" / "bin" / "greet").read_text()
    assert script.startswith("#!/app/.venv/bin/python")

    out = podman_run(f"oci:{layout}:v1", "--name", "slim").stdout
    assert out.strip() == "hello, slim!"
    loaded = podman("load", "-i", str(archive)).stdout
    assert "greet:v1" in loaded
    entry = ["--entrypoint", "/app/.venv/bin/python"]
    uid = podman_run("localhost/greet:v1", "-c", "import os; print(os.getuid())", flags=entry).stdout.strip()
    assert uid == "65532"
    config = json.loads(run([tool("skopeo"), "inspect", "--config", f"oci:{layout}:v1"]).stdout)
    assert config["config"]["Entrypoint"] == ["/app/.venv/bin/greet"]
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert env["PATH"].startswith("/app/.venv/bin:")
    assert env["VIRTUAL_ENV"] == "/app/.venv"
    assert env["GREET_MODE"] == "a=b"  # --env: split at the first "="
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "greet"
    assert labels["org.opencontainers.image.revision"] == "0123abc"


def test_groups_and_extras_select_exactly(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    layout = tmp_path / "out"
    slimline("build", str(proj), "--with", "dev", "-E", "color", "--to", f"oci:{layout}:x", "-q")
    rootfs = _unpack(layout, "x", tmp_path / "bundle")
    assert _venv_dists(rootfs) == {"click", "greet", "six", "colorama"}


def test_script_app_with_path_dep_sdist_and_markers(locked_script: Path, tmp_path: Path) -> None:
    proj = _copy(locked_script, tmp_path)
    layout = tmp_path / "out"
    slimline("build", str(proj), "--to", f"oci:{layout}:s", "-q")
    rootfs = _unpack(layout, "s", tmp_path / "bundle")
    assert _venv_dists(rootfs) == {"docopt", "locallib"}  # pywin32 is excluded by its marker
    assert (rootfs / "app" / "main.py").is_file()
    assert not (rootfs / "app" / "secrets.txt").exists()  # .dockerignore honoured
    out = podman_run(f"oci:{layout}:s").stdout
    assert out.strip() == "args 3 from-locallib"


def test_web_service_answers_http(locked_web: Path, tmp_path: Path) -> None:
    proj = _copy(locked_web, tmp_path)
    archive = tmp_path / "hello.tar"
    slimline("build", str(proj), "--to", f"docker-archive:{archive}:hello:web", "-q")
    podman("load", "-i", str(archive))
    port = _free_port()
    name = f"slimline-web-{port}"
    podman(
        *[
            "--runtime",
            "runc",
            "--cgroup-manager=cgroupfs",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--network",
            "host",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-e",
            f"PORT={port}",
            "-e",
            "HOST=127.0.0.1",
            "localhost/hello:web",
        ]
    )
    try:
        body = _get_json(f"http://127.0.0.1:{port}/", deadline=time.monotonic() + 60)
    finally:
        podman("rm", "-f", name, check=False)
    assert body["message"] == "hello from slimline"
    assert body["python"].startswith("3.13.")  # requires-python >=3.11: the newest suite, trixie


def _get_json(url: str, *, deadline: float) -> dict[str, str]:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except OSError as err:
            last = err
            time.sleep(0.3)
    raise AssertionError(f"the service never answered on {url}: {last}")


def _dep_layers(layout: Path, tag: str) -> tuple[list[str], str]:
    index = _layout_index(layout)
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = _manifest(layout, entry["digest"])
    digests = [layer["digest"] for layer in manifest["layers"]]
    return digests[:-1], digests[-1]


def test_one_line_change_rebuilds_only_the_project_layer(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    layout = tmp_path / "out"
    first = _digest(slimline("build", str(proj), "--to", f"oci:{layout}:a", "-q").stdout)
    cli = proj / "src" / "greet" / "cli.py"
    cli.write_text(cli.read_text().replace('MESSAGE = "hello"', 'MESSAGE = "howdy"'))
    second = _digest(slimline("build", str(proj), "--to", f"oci:{layout}:b", "-q").stdout)
    assert first != second
    deps_a, top_a = _dep_layers(layout, "a")
    deps_b, top_b = _dep_layers(layout, "b")
    assert deps_a == deps_b
    assert top_a != top_b
    assert podman_run(f"oci:{layout}:b").stdout.strip() == "howdy, world!"


def test_same_digest_from_two_empty_caches_and_checkouts(locked_cli: Path, tmp_path: Path) -> None:
    digests = []
    for i in range(2):
        proj = _copy(locked_cli, tmp_path / f"checkout{i}")
        env = {"SLIMLINE_CACHE_DIR": str(tmp_path / f"cache{i}")}
        out = slimline("build", str(proj), "--to", f"oci:{tmp_path / f'out{i}'}:r", "-q", env=env)
        digests.append(_digest(out.stdout))
    assert digests[0] == digests[1]


def test_a_path_dependency_does_not_tie_the_image_to_the_checkout_directory(
    locked_script: Path, tmp_path: Path
) -> None:
    digests = []
    for i in range(2):
        proj = _copy(locked_script, tmp_path / f"checkout{i}")
        out = slimline("build", str(proj), "--to", f"oci:{tmp_path / f'out{i}'}:r", "-q")
        digests.append(_digest(out.stdout))
        # a layer forced anew is the layer the cache gave
        forced = slimline(
            "build",
            str(proj),
            "--to",
            f"oci:{tmp_path / f'out{i}'}:f",
            "-q",
            env={"SLIMLINE_NO_LAYER_CACHE": "1"},
        )
        assert _digest(forced.stdout) == digests[-1]
    assert digests[0] == digests[1]
    rootfs = _unpack(tmp_path / "out1", "r", tmp_path / "bundle")
    site = next((rootfs / "app" / ".venv" / "lib").glob("python3.*")) / "site-packages"
    (dist_info,) = site.glob("locallib-*.dist-info")
    assert not (dist_info / "direct_url.json").exists()
    assert str(tmp_path) not in (dist_info / "RECORD").read_text()


def test_tampered_cached_wheel_fails_and_keeps_old_output(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    cache = tmp_path / "cache"
    env = {"SLIMLINE_CACHE_DIR": str(cache)}
    layout = tmp_path / "out"
    slimline("build", str(proj), "--to", f"oci:{layout}:t", "-q", env=env)
    before = {p: p.read_bytes() for p in layout.rglob("*") if p.is_file()}

    lock = (proj / "poetry.lock").read_text()
    start = lock.index('name = "click"')
    click_hash = lock[start:].split('hash = "sha256:')[1].split('"')[0]
    blob = cache / "blobs" / "sha256" / click_hash
    assert blob.is_file(), "the click wheel should be in the cache after a build"
    for kind in ("layers", "memo"):  # force the dependency layers to be rebuilt
        for meta in (cache / kind).iterdir():
            meta.unlink()
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))

    proc = slimline("build", str(proj), "--to", f"oci:{layout}:t", env=env, check=False)
    assert proc.returncode == ExitStatus.VERIFICATION
    assert "click" in proc.stderr and click_hash in proc.stderr and "expected" in proc.stderr
    after = {p: p.read_bytes() for p in layout.rglob("*") if p.is_file()}
    assert after == before


def test_docker_archive_is_a_valid_oci_layout_too(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    archive = tmp_path / "img.tar"
    slimline("build", str(proj), "--to", f"docker-archive:{archive}:greet:arch", "-q")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "index.json", "oci-layout"} <= names
    raw = skopeo_inspect(f"docker-archive:{archive}")
    assert raw["schemaVersion"] == 2


def _qemu_aarch64() -> bool:
    return Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()


def test_two_platforms_in_one_layout(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    layout = tmp_path / "out"
    slimline(
        "build",
        str(proj),
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "--to",
        f"oci:{layout}:multi",
        "-q",
    )
    index = _layout_index(layout)
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "multi"
    )
    assert entry["mediaType"] == "application/vnd.oci.image.index.v1+json"
    child = _manifest(layout, entry["digest"])
    platforms = {
        (m["platform"]["architecture"], m["platform"].get("variant", "")) for m in child["manifests"]
    }
    assert platforms == {("amd64", ""), ("arm64", "v8")}
    arm = next(m for m in child["manifests"] if m["platform"]["architecture"] == "arm64")
    config_digest = _manifest(layout, arm["digest"])["config"]["digest"]
    config = json.loads((layout / "blobs" / "sha256" / config_digest.removeprefix("sha256:")).read_text())
    assert config["architecture"] == "arm64"
    if not _qemu_aarch64():
        pytest.skip(
            "qemu-aarch64 is not registered with binfmt_misc here: the arm64 image was checked, not run"
        )
    out = podman_run(f"oci:{layout}:multi", "--name", "arm", flags=["--platform", "linux/arm64"]).stdout
    assert out.strip() == "hello, arm!"
    probe = "import platform, click; print(platform.machine())"
    flags = ["--platform", "linux/arm64", "--entrypoint", "/app/.venv/bin/python"]
    assert podman_run(f"oci:{layout}:multi", "-c", probe, flags=flags).stdout.strip() == "aarch64"


def test_bytecode_ships_and_is_used(locked_cli: Path, tmp_path: Path) -> None:
    proj = _copy(locked_cli, tmp_path)
    layout = tmp_path / "out"
    # bookworm's CPython 3.11 is the minor version the tests run on, so the host can compile for it.
    # A plain build first: its cached dependency layers must not stand in for the bytecode ones.
    slimline("build", str(proj), "--base", "debian:bookworm", "--to", f"oci:{layout}:plain", "-q")
    slimline("build", str(proj), "--base", "debian:bookworm", "--bytecode", "--to", f"oci:{layout}:pyc", "-q")
    config = json.loads(run([tool("skopeo"), "inspect", "--config", f"oci:{layout}:pyc"]).stdout)
    assert not any(e.startswith("PYTHONDONTWRITEBYTECODE=") for e in config["config"]["Env"])
    probe = (
        "import os, sys, json, email.message, click, greet.cli; "
        "print(all(os.path.exists(m.__cached__) for m in (json, email.message, click, greet.cli)), "
        "sys.dont_write_bytecode)"
    )
    flags = ["--entrypoint", "/app/.venv/bin/python", "--read-only"]
    out = podman_run(f"oci:{layout}:pyc", "-c", probe, flags=flags).stdout.strip()
    assert out == "True False"
    assert podman_run(f"oci:{layout}:pyc", "--name", "pyc").stdout.strip() == "hello, pyc!"


def test_numpy_app_gets_the_cpp_runtime_it_links(tmp_path: Path) -> None:
    proj = _copy(ROOT / "examples" / "pandas-job", tmp_path)
    layout = tmp_path / "out"
    proc = slimline("build", str(proj), "--to", f"oci:{layout}:np")
    assert "adding libstdc++6 (for numpy, pandas) to the base" in proc.stderr
    out = podman_run(f"oci:{layout}:np").stdout
    assert out.splitlines()[0] == "region,orders,units,revenue"
