"""Hash-verified downloads from the real index, and refusing tampered bytes from the cache or an index."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from slimline.artifacts.buildenv import BuildEnvs
from slimline.artifacts.fetch import _prepare_all, fetch
from slimline.artifacts.origins import Build, Origins
from slimline.artifacts.sources import default_index_url
from slimline.artifacts.targetbuild import TargetBuilds
from slimline.base.builder import Builder
from slimline.cache.store import Cache, sha256_file
from slimline.context import Context
from slimline.errors import HashMismatch
from slimline.http import Http
from slimline.oci.image import Platform
from slimline.plan.model import Plan
from slimline.project.lockfile import Artifact
from slimline.target import Target
from tests.artifacts.helpers import IDNA_WHEEL, SIX_WHEEL, LocalIndex, index_pkg, plan_of, serve, sha256
from tests.e2e_projects import sdist_bytes
from tests.support import cache_dir

DEAD_INDEX = "http://127.0.0.1:9/simple"  # nothing listens there: any request would fail


def _run(plan: Plan, cache: Cache, index_url: str) -> dict[str, Path]:
    envs = BuildEnvs(cache=cache, index_url=index_url)
    ctx = Context(cache, given_http=Http(retries=0))
    return fetch(plan, ctx=ctx, default_index=index_url, build_env=envs, project_root=cache.root)


@pytest.fixture(scope="module")
def shared() -> Cache:
    return Cache(cache_dir())


@pytest.fixture(scope="module")
def six_wheel(shared: Cache) -> Path:
    """The real six wheel, downloaded from the configured index once (then cached)."""
    index = default_index_url()
    return _run(plan_of(index_pkg("six", "1.17.0", SIX_WHEEL, url=index)), shared, index)["six"]


@pytest.mark.network
def test_real_download_is_verified_and_named(shared: Cache) -> None:
    index = default_index_url()
    plan = plan_of(
        index_pkg("six", "1.17.0", SIX_WHEEL, url=index),
        index_pkg("idna", "3.10", IDNA_WHEEL, url=index),
    )
    wheels = _run(plan, shared, index)
    assert wheels["six"].name == SIX_WHEEL.filename and sha256_file(wheels["six"]) == SIX_WHEEL.sha256
    assert wheels["idna"].name == IDNA_WHEEL.filename and sha256_file(wheels["idna"]) == IDNA_WHEEL.sha256
    # Warm: found by hash, no request at all (the origin now points where nothing listens).
    offline = plan_of(
        index_pkg("six", "1.17.0", SIX_WHEEL, url=DEAD_INDEX),
        index_pkg("idna", "3.10", IDNA_WHEEL, url=DEAD_INDEX),
    )
    assert _run(offline, shared, DEAD_INDEX) == wheels


@pytest.mark.network
def test_tampered_cache_blob_is_refused(six_wheel: Path, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    blob = cache.blob_path(SIX_WHEEL.sha256)
    blob.parent.mkdir(parents=True)
    data = bytearray(six_wheel.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(HashMismatch) as info:
        _run(plan_of(index_pkg("six", "1.17.0", SIX_WHEEL, url=DEAD_INDEX)), cache, DEAD_INDEX)
    err = info.value
    assert (err.package, err.file) == ("six", SIX_WHEEL.filename)
    assert err.expected == f"sha256:{SIX_WHEEL.sha256}" and err.actual == f"sha256:{sha256(bytes(data))}"
    assert SIX_WHEEL.filename in str(err) and SIX_WHEEL.sha256 in str(err) and sha256(bytes(data)) in str(err)


@pytest.mark.network
def test_tampered_named_wheel_in_cache_is_refused(six_wheel: Path, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    blob = cache.blob_path(SIX_WHEEL.sha256)
    blob.parent.mkdir(parents=True)
    shutil.copyfile(six_wheel, blob)
    plan = plan_of(index_pkg("six", "1.17.0", SIX_WHEEL, url=DEAD_INDEX))
    path = _run(plan, cache, DEAD_INDEX)["six"]
    with path.open("r+b") as f:  # change the file the build would use, in place
        f.seek(10)
        f.write(b"\0\0\0\0")
    with pytest.raises(HashMismatch) as info:
        _run(plan, cache, DEAD_INDEX)
    assert info.value.package == "six" and info.value.expected == f"sha256:{SIX_WHEEL.sha256}"


@pytest.mark.network
@pytest.mark.parametrize("mode", ["json", "html-only"])
def test_tampered_download_from_index_is_refused(six_wheel: Path, tmp_path: Path, mode: str) -> None:
    tampered = six_wheel.read_bytes().replace(b"six", b"sx6", 1)
    assert tampered != six_wheel.read_bytes()
    local = LocalIndex(files={"six": {SIX_WHEEL.filename: tampered}}, mode=mode)  # type: ignore[arg-type]
    cache = Cache(tmp_path / "cache")
    with serve(local) as idx, pytest.raises(HashMismatch) as info:
        _run(plan_of(index_pkg("six", "1.17.0", SIX_WHEEL, url=idx.url, source="mirror")), cache, idx.url)
    err = info.value
    assert (err.package, err.file) == ("six", SIX_WHEEL.filename)
    assert err.expected == f"sha256:{SIX_WHEEL.sha256}" and err.actual == f"sha256:{sha256(tampered)}"
    message = str(err)
    assert "six" in message and SIX_WHEEL.sha256 in message and sha256(tampered) in message
    # nothing was kept: neither under the locked hash nor under the bytes' own hash
    assert not cache.has_blob(SIX_WHEEL.sha256) and not cache.has_blob(sha256(tampered))
    assert not (cache.root / "wheels").exists()


def test_builds_start_largest_source_first_then_the_rest_in_the_plans_order(tmp_path: Path) -> None:
    from slimline.artifacts.fetch import _longest_first
    from slimline.artifacts.origins import Build, Ready, Unusable

    wheel = Ready(tmp_path / "a-1-py3-none-any.whl", built_here=False)
    prepared: dict[str, Ready | Build | Unusable] = {
        "alpha": wheel,
        "small": Build(key="s", size=90_000),
        "gone": Unusable("gone", "1", "no wheel"),
        "large": Build(key="l", size=370_000),
        "tree": Build(tree=tmp_path),
        "mid": Build(key="m", size=120_000),
    }
    assert _longest_first(prepared) == ["large", "mid", "small", "tree", "alpha", "gone"]


@pytest.mark.parametrize(("source", "begun"), [("ext.c", True), ("pure.py", False)])
def test_a_downloaded_sdist_with_code_to_compile_begins_writing_the_builder(
    tmp_path: Path, source: str, begun: bool
) -> None:
    """Before any build: the builder's files are written while the other downloads finish."""
    sdist = sdist_bytes("probe", "1.0", {"setup.py": "", f"probe/{source}": ""})
    written = threading.Event()

    def write() -> Path:
        written.set()
        return tmp_path

    def assemble() -> Builder:
        target = Target(Platform("amd64"), (3, 11, 2), "/usr/bin/python3.11", "glibc", (2, 36))
        return Builder("id", target, target.interpreter, (), False, write)

    cache = Cache(tmp_path / "cache")
    ctx = Context(cache, given_http=Http(retries=0))
    builds = TargetBuilds(assemble, ctx=ctx, index_url=DEAD_INDEX, index_auth=None)
    with serve(LocalIndex(files={"probe": {"probe-1.0.tar.gz": sdist}})) as index:
        artifact = Artifact("probe-1.0.tar.gz", sha256(sdist), "sdist")
        plan = plan_of(index_pkg("probe", "1.0", artifact, url=index.url))
        origins = Origins(plan=plan, ctx=ctx, default_index=index.url, project_root=tmp_path)
        prepared = _prepare_all(plan, origins, jobs=2, report=ctx.report, target=builds)
    assert isinstance(prepared["probe"], Build)
    assert written.wait(timeout=10 if begun else 0.5) is begun
