"""The build cache shared through a registry (``--cache-repo``), with real runners and a real registry.

Runners are ``slimline`` processes, each with an empty cache directory of its own; the registry
is Debian's ``docker-registry`` with htpasswd auth.  Runner A builds and pushes; runner B builds
the same commit in a network namespace that has only loopback (the registry is restarted inside
it on the same storage): no package index, no Debian archive.  What each runner did is read from
its own ``-v`` report and from the registry's access log.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci.registry_helpers import REGISTRY_BIN, Registry, registry
from tests.support import run, slimline, tool

pytestmark = [pytest.mark.network]

CACHE = "team/slimline-cache"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
LAYERS_LINE = re.compile(
    r"layers \([^)]*\): (\d+) of (\d+) made in [0-9.]+ s \((\d+) from the shared cache\)"
)


def _auth(tmp: Path, reg: Registry) -> dict[str, str]:
    """The environment of a runner: its credentials for ``reg`` (a podman auth file)."""
    user, password = next(iter(reg.users.items()))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    auth = tmp / f"auth-{reg.host.replace(':', '-')}.json"
    auth.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
    return {"REGISTRY_AUTH_FILE": str(auth)}


def _seed_base(tmp: Path, reg: Registry, env: dict[str, str]) -> str:
    layout = tmp / "base"
    slimline("base", "debian:trixie", "--to", f"oci:{layout}:py", "-q")
    name = f"{reg.host}/bases/python:3.13"
    user, password = next(iter(reg.users.items()))
    run(
        [
            tool("skopeo"),
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"{user}:{password}",
            f"oci:{layout}:py",
            f"docker://{name}",
        ]
    )
    return name


def _digest(proc_stdout: str) -> str:
    found = DIGEST.findall(proc_stdout.strip().splitlines()[-1])
    assert found, proc_stdout
    return str(found[-1])


def _made(stderr: str) -> tuple[int, int, int]:
    """(made, of, from the shared cache) of the build's layers line."""
    m = LAYERS_LINE.search(stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _log_since(reg: Registry, offset: int) -> list[str]:
    """Access-log request lines ("METHOD /path") the registry wrote after ``offset`` bytes."""
    text = reg.log.read_bytes()[offset:].decode(errors="replace")
    return re.findall(r'"((?:GET|HEAD|PUT|POST|PATCH|DELETE) [^ "]+)', text)


@pytest.fixture
def project(locked_cli: Path, tmp_path: Path) -> Path:
    proj = tmp_path / "greet"
    shutil.copytree(locked_cli, proj)
    return proj


@pytest.fixture
def runner_a(project: Path, tmp_path: Path) -> Iterator[tuple[Registry, dict[str, str], str, str, str]]:
    """A registry with a base, and runner A's build pushed with the shared cache written:
    (registry, runner env, base name, A's digest, A's stderr)."""
    with registry(tmp_path / "reg", auth="htpasswd") as reg:
        env = _auth(tmp_path, reg)
        base = _seed_base(tmp_path, reg, env)
        a = slimline(
            "build",
            str(project),
            "--base",
            base,
            "--to",
            f"docker://{reg.host}/apps/greet:a",
            "--cache-repo",
            f"{reg.host}/{CACHE}",
            "-v",
            env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-a")},
        )
        yield reg, env, base, _digest(a.stdout), a.stderr


def test_a_fresh_runner_needs_no_index_no_wheel_and_compresses_nothing(
    project: Path, tmp_path: Path, runner_a: tuple[Registry, dict[str, str], str, str, str]
) -> None:
    reg, env, base, digest_a, stderr_a = runner_a
    made_a, of_a, shared_a = _made(stderr_a)
    assert (made_a, shared_a) == (of_a, 0), stderr_a  # A made every layer
    assert "downloading " in stderr_a
    offset = reg.log.stat().st_size
    shutil.copytree(project, tmp_path / "b" / "greet")  # another checkout directory
    b = _offline(
        reg,
        [
            "build",
            str(tmp_path / "b" / "greet"),
            "--base",
            base,
            "--to",
            f"docker://{reg.host}/apps/greet-b:b",
            # the SBOM and provenance name the image they are pushed beside: new blobs by design,
            # so they are left out here, where every blob B uploads is counted
            "--no-sbom",
        ],
        env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-b")},
    )
    assert b.returncode == 0, b.stderr[-4000:]
    assert _digest(b.stdout) == digest_a
    made_b, of_b, shared_b = _made(b.stderr)
    assert (made_b, shared_b) == (0, of_b), b.stderr  # every layer from the shared cache, none compressed
    assert "downloading " not in b.stderr and "building the project" not in b.stderr, b.stderr
    requests = _log_since(reg, offset)
    uploads = [r for r in requests if r.startswith("PUT ") and "/blobs/uploads/" in r]
    mounts = [r for r in requests if r.startswith("POST ") and "mount=" in r and f"from={CACHE}" in r]
    config = json.loads(_manifest(reg, "apps/greet-b", "b", env))["config"]["digest"]
    # the only blob B sent is its image config; every layer was mounted from the cache repository
    assert all(r.endswith(config.replace(":", "%3A")) for r in uploads), uploads
    assert len(mounts) == of_b, requests


def test_a_fresh_runner_needs_no_debian_archive_for_an_assembled_base(project: Path, tmp_path: Path) -> None:
    """The Debian base's pin and layers come from the shared cache: no archive, no compression."""
    with registry(tmp_path / "reg", auth="htpasswd") as reg:
        env = _auth(tmp_path, reg)
        flags = ["--to", f"oci:{tmp_path / 'out'}:x", "--cache-repo", f"{reg.host}/{CACHE}", "-v"]
        a = slimline(
            "build", str(project), *flags, env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-a")}
        )
        assert "assembling base" in a.stderr, a.stderr
        b = _offline(
            reg, ["build", str(project), *flags], env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-b")}
        )
    assert b.returncode == 0, b.stderr[-4000:]
    assert _digest(b.stdout) == _digest(a.stdout)
    assert "pin from the shared cache" in b.stderr and "assembling base" not in b.stderr, b.stderr
    made, of, shared = _made(b.stderr)
    assert (made, shared) == (0, of), b.stderr


def _offline(reg: Registry, args: list[str], *, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``slimline ARGS --cache-repo ...`` in a network namespace with loopback only, ``reg``
    restarted inside it on the same storage and port: neither index nor archive is reachable."""
    script = (
        "ip link set lo up\n"
        # (the registry would read REGISTRY_AUTH_FILE as its own auth.file setting)
        f'env -u REGISTRY_AUTH_FILE {REGISTRY_BIN} serve "$1" >>"$2" 2>&1 &\n'
        "pid=$!\n"
        f"for i in $(seq 150); do (exec 3<>/dev/tcp/{reg.host.replace(':', '/')}) 2>/dev/null && break\n"
        "sleep 0.1; done\n"
        'shift 2; "$@"; rc=$?\n'
        'kill "$pid"; wait "$pid"; exit $rc\n'
    )
    cache = ["--cache-repo", f"{reg.host}/{CACHE}", "-v"] if "--cache-repo" not in args else []
    with reg.stopped():
        return run(
            [
                tool("unshare"),
                "-n",
                "bash",
                "-c",
                script,
                "runner",
                str(reg.config),
                str(reg.log),
                tool("slimline"),
                *args,
                *cache,
            ],
            env=env,
            check=False,
        )


def test_digests_are_the_same_without_the_shared_cache(
    project: Path, tmp_path: Path, runner_a: tuple[Registry, dict[str, str], str, str, str]
) -> None:
    reg, env, base, digest_a, _ = runner_a
    plain = slimline(
        "build",
        str(project),
        "--base",
        base,
        "--to",
        f"docker://{reg.host}/apps/greet:plain",
        env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-plain")},
    )
    assert _digest(plain.stdout) == digest_a


def test_a_corrupt_record_and_a_corrupt_blob_are_ignored(
    project: Path, tmp_path: Path, runner_a: tuple[Registry, dict[str, str], str, str, str]
) -> None:
    reg, env, base, digest_a, _ = runner_a
    layer_tags = sorted(t for t in _tags(reg, env) if t.startswith("layer-"))
    assert len(layer_tags) >= 2, layer_tags
    blob_of = [json.loads(_manifest(reg, CACHE, t, env)) for t in layer_tags[:2]]
    _flip(reg, blob_of[0]["layers"][0]["digest"])  # a layer's bytes changed in the registry's storage
    _flip(reg, blob_of[1]["config"]["digest"])  # a record's bytes changed
    out = tmp_path / "out"
    e = slimline(
        "build",
        str(project),
        "--base",
        base,
        "--to",
        f"oci:{out}:e",
        "--cache-repo",
        f"{reg.host}/{CACHE}",
        "-v",
        env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-e")},
    )
    assert _digest(e.stdout) == digest_a
    assert e.stderr.count("warning: shared cache record") == 2, e.stderr
    made, of, shared = _made(e.stderr)
    assert made == 2 and shared == of - 2, e.stderr  # the two made again here, the others shared


def test_a_read_only_cache_is_never_written(
    project: Path, tmp_path: Path, runner_a: tuple[Registry, dict[str, str], str, str, str]
) -> None:
    reg, env, base, digest_a, _ = runner_a
    offset = reg.log.stat().st_size
    ro = slimline(
        "build",
        str(project),
        "--base",
        base,
        "--to",
        f"oci:{tmp_path / 'out'}:ro",
        "--cache-repo",
        f"{reg.host}/team/other-cache",
        "--cache-repo-readonly",
        "-v",
        env={**env, "SLIMLINE_CACHE_DIR": str(tmp_path / "cache-ro")},
    )
    assert _digest(ro.stdout) == digest_a
    requests = _log_since(reg, offset)
    assert any("/v2/team/other-cache/manifests/" in r for r in requests), requests  # it was asked
    assert not [r for r in requests if r.split()[0] in ("PUT", "POST", "PATCH", "DELETE")], requests
    assert "0 stored" in ro.stderr and "(read-only)" in ro.stderr


# -- the registry, read directly --------------------------------------------------------------------


def _open(reg: Registry, path: str, env: dict[str, str], accept: str = "") -> bytes:
    auth = json.loads(Path(env["REGISTRY_AUTH_FILE"]).read_text())["auths"][reg.host]["auth"]
    req = urllib.request.Request(f"http://{reg.host}{path}", headers={"Authorization": f"Basic {auth}"})
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return bytes(resp.read())


def _manifest(reg: Registry, repo: str, reference: str, env: dict[str, str]) -> bytes:
    return _open(reg, f"/v2/{repo}/manifests/{reference}", env, "application/vnd.oci.image.manifest.v1+json")


def _tags(reg: Registry, env: dict[str, str]) -> list[str]:
    return [str(t) for t in json.loads(_open(reg, f"/v2/{CACHE}/tags/list?n=1000", env))["tags"]]


def _flip(reg: Registry, digest: str) -> None:
    """Change one byte of a blob in the registry's storage (its size stays)."""
    hexdigest = digest.removeprefix("sha256:")
    data = reg.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
